//! The `traceparent` header (W3C Trace Context, version 00): parsed strictly, formatted as
//! version 00.

use std::fmt;

use super::InvalidHeader;

/// The `sampled` bit of `trace-flags`.
const SAMPLED: u8 = 0x01;
/// The `random` bit of `trace-flags` (Trace Context Level 2): the trace id's low 7 bytes
/// are random. Kept when propagating; the other bits are unknown and cleared.
const RANDOM: u8 = 0x02;

/// The length of a version 00 `traceparent`: `00-` + 32 + `-` + 16 + `-` + 2.
const LEN: usize = 55;

/// A W3C `traceparent`: the trace id, the id of the caller's span (the parent of what this
/// service does), and the trace flags (`sampled`). What [`super::extract`] reads and
/// [`super::inject`] writes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl TraceParent {
    /// A `traceparent` for the given ids; `None` when either is all zeros, which W3C
    /// forbids.
    pub fn new(trace_id: [u8; 16], parent_id: [u8; 8], sampled: bool) -> Option<Self> {
        (trace_id != [0; 16] && parent_id != [0; 8]).then_some(Self {
            trace_id,
            parent_id,
            flags: if sampled { SAMPLED } else { 0 },
        })
    }

    /// Parses a `traceparent` header value (surrounding spaces and tabs allowed).
    ///
    /// Version 00 must be exactly `00-<32 hex>-<16 hex>-<2 hex>`, in lowercase hex (the
    /// spec's `HEXDIGLC`: uppercase is invalid), with neither id all zeros. A later version
    /// (not `ff`, which is invalid) is read as version 00 is, and anything after the flags
    /// must start with `-` (forward compatibility, spec §3.2.4); its unknown flags are
    /// dropped.
    pub fn parse(value: &[u8]) -> Result<Self, InvalidHeader> {
        let value = trim(value);
        let bad = |reason| Err(InvalidHeader::new(super::TRACEPARENT, reason));
        if value.len() < LEN {
            return bad("shorter than 55 characters");
        }
        let Some(version) = hex_byte(&value[0..2]) else {
            return bad("the version is not two lowercase hex digits");
        };
        if version == 0xff {
            return bad("version ff is invalid");
        }
        if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return bad("a field is not followed by '-' where expected");
        }
        if version == 0 && value.len() != LEN {
            return bad("version 00 is longer than 55 characters");
        }
        if value.len() > LEN && value[LEN] != b'-' {
            return bad("the flags are followed by something other than '-'");
        }
        let mut trace_id = [0u8; 16];
        let mut parent_id = [0u8; 8];
        if !hex_into(&value[3..35], &mut trace_id) {
            return bad("the trace id is not 32 lowercase hex digits");
        }
        if !hex_into(&value[36..52], &mut parent_id) {
            return bad("the parent id is not 16 lowercase hex digits");
        }
        let Some(flags) = hex_byte(&value[53..55]) else {
            return bad("the flags are not two lowercase hex digits");
        };
        if trace_id == [0; 16] {
            return bad("the trace id is all zeros");
        }
        if parent_id == [0; 8] {
            return bad("the parent id is all zeros");
        }
        Ok(Self {
            trace_id,
            parent_id,
            flags: flags & (SAMPLED | RANDOM),
        })
    }

    /// The 16-byte trace id.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The 8-byte id of the caller's span.
    pub fn parent_id(&self) -> [u8; 8] {
        self.parent_id
    }

    /// The trace flags as propagated (`sampled`, and Level 2's `random`).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the caller recorded the trace: `ops` records it too when set, and records
    /// nothing of it when not.
    pub fn is_sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The parent id as 16 lowercase hex digits.
    pub fn parent_id_hex(&self) -> String {
        hex(&self.parent_id)
    }

    /// The same trace with another parent span (what an outgoing call carries).
    pub(crate) fn with_parent(self, parent_id: [u8; 8]) -> Self {
        Self { parent_id, ..self }
    }
}

impl fmt::Display for TraceParent {
    /// The header value, always version 00.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id_hex(),
            self.parent_id_hex(),
            self.flags
        )
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

/// `value` without leading and trailing spaces and tabs (HTTP's optional whitespace).
pub(super) fn trim(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |e| e + 1);
    &value[start..end]
}

fn lower_hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    match two {
        [hi, lo] => Some(lower_hex_digit(*hi)? << 4 | lower_hex_digit(*lo)?),
        _ => None,
    }
}

/// Decodes lowercase hex into `out` (exactly twice its length); false on any other digit.
fn hex_into(digits: &[u8], out: &mut [u8]) -> bool {
    digits.len() == out.len() * 2
        && digits
            .chunks_exact(2)
            .zip(out.iter_mut())
            .all(|(pair, byte)| hex_byte(pair).map(|b| *byte = b).is_some())
}

pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}
