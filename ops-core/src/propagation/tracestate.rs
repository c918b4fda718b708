//! The `tracestate` header (W3C Trace Context §3.3): other vendors' entries, validated and
//! passed on unchanged.

use std::fmt;

use super::InvalidHeader;
use super::traceparent::trim;

/// The most list-members a `tracestate` may have; more is invalid (spec §3.3.1.1).
pub const TRACESTATE_MAX_MEMBERS: usize = 32;
/// The longest `tracestate` propagated: past it, members longer than 128 characters are
/// dropped first, then members from the end (spec §3.3.1.5), each drop counted.
pub const TRACESTATE_MAX_LEN: usize = 512;
/// The longest raw `tracestate` read (all its header lines together): longer is invalid
/// without being parsed.
const MAX_RAW_LEN: usize = 8192;
/// Members longer than this are the first dropped when the list is too long.
const LONG_MEMBER: usize = 128;

/// A validated `tracestate`: its list-members in order, passed on as received (at most
/// [`TRACESTATE_MAX_MEMBERS`] of them, at most [`TRACESTATE_MAX_LEN`] characters). `ops`
/// adds no entry of its own.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct TraceState {
    members: Vec<Box<str>>,
}

impl TraceState {
    /// Parses the `tracestate` header lines (combined as one comma-separated list). Empty
    /// members are skipped, as the spec allows. Returns the state and how many members were
    /// dropped to fit [`TRACESTATE_MAX_LEN`]. Invalid: a key or value outside the spec's
    /// grammar, a key seen twice, more than [`TRACESTATE_MAX_MEMBERS`] members, or text that
    /// is not ASCII.
    pub fn parse<'a>(
        lines: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(Self, usize), InvalidHeader> {
        let bad = |reason| Err(InvalidHeader::new(super::TRACESTATE, reason));
        let mut members: Vec<Box<str>> = Vec::new();
        let mut raw_len = 0usize;
        for line in lines {
            raw_len += line.len() + 1;
            if raw_len > MAX_RAW_LEN {
                return bad("longer than 8192 bytes");
            }
            for member in line.split(|b| *b == b',') {
                let member = trim(member);
                if member.is_empty() {
                    continue;
                }
                let Some(eq) = member.iter().position(|b| *b == b'=') else {
                    return bad("a member has no '='");
                };
                let (key, value) = (&member[..eq], &member[eq + 1..]);
                if !valid_key(key) {
                    return bad("a key is outside the spec's grammar");
                }
                if !valid_value(value) {
                    return bad("a value is outside the spec's grammar");
                }
                if members.len() == TRACESTATE_MAX_MEMBERS {
                    return bad("more than 32 members");
                }
                if members
                    .iter()
                    .any(|m| m.as_bytes().get(..=key.len()) == Some(&member[..=key.len()]))
                {
                    return bad("a key appears twice");
                }
                // Checked above: every byte is printable ASCII.
                let Ok(text) = std::str::from_utf8(member) else {
                    return bad("not ASCII");
                };
                members.push(text.into());
            }
        }
        let mut state = Self { members };
        let dropped = state.fit();
        Ok((state, dropped))
    }

    /// Drops members until the list fits [`TRACESTATE_MAX_LEN`]: long ones first, then from
    /// the end. Returns how many were dropped.
    fn fit(&mut self) -> usize {
        let before = self.members.len();
        while self.len() > TRACESTATE_MAX_LEN {
            match self.members.iter().rposition(|m| m.len() > LONG_MEMBER) {
                Some(at) => {
                    self.members.remove(at);
                }
                None => {
                    self.members.pop();
                }
            }
        }
        before - self.members.len()
    }

    /// The header value's length.
    pub fn len(&self) -> usize {
        self.members.iter().map(|m| m.len()).sum::<usize>() + self.members.len().saturating_sub(1)
    }

    /// Whether it has no member (then no `tracestate` is sent).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The list-members, as `key=value`.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| &**m)
    }

    /// The value of `key`, if the list has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members()
            .find_map(|m| m.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }
}

impl fmt::Display for TraceState {
    /// The header value: the members joined by `,`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(m)?;
        }
        Ok(())
    }
}

impl fmt::Debug for TraceState {
    /// Vendors' values may be opaque tokens: only their keys are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.members
                    .iter()
                    .map(|m| m.split_once('=').map_or(&**m, |(k, _)| k)),
            )
            .finish()
    }
}

/// `simple-key` (`lcalpha 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/")`) or
/// `tenant-id "@" system-id`.
fn valid_key(key: &[u8]) -> bool {
    let rest_ok = |s: &[u8]| {
        s.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'*' | b'/')
        })
    };
    match key.iter().position(|b| *b == b'@') {
        None => {
            matches!(key.first(), Some(c) if c.is_ascii_lowercase())
                && key.len() <= 256
                && rest_ok(key)
        }
        Some(at) => {
            let (tenant, system) = (&key[..at], &key[at + 1..]);
            matches!(tenant.first(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
                && tenant.len() <= 241
                && rest_ok(tenant)
                && matches!(system.first(), Some(c) if c.is_ascii_lowercase())
                && system.len() <= 14
                && rest_ok(system)
        }
    }
}

/// `0*255(chr) nblk-chr`: 1 to 256 printable ASCII characters other than `,` and `=`, the
/// last not a space.
fn valid_value(value: &[u8]) -> bool {
    (1..=256).contains(&value.len())
        && value.last() != Some(&b' ')
        && value
            .iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
}
