//! The on-disk format of a segment: a file header, then framed records.
//!
//! - File header: [`SEGMENT_MAGIC`] (8 bytes, names the format and its version).
//! - Record: `[RECORD_MAGIC: 4][len: u32 LE][crc32: u32 LE][payload: len bytes]`, where the
//!   checksum covers the length field and the payload.
//!
//! The payload is a task as JSON, so it is UTF-8 and can never contain the bytes `0xF5` or
//! `0xF7` that open and close [`RECORD_MAGIC`]. That makes the magic a sync marker: after a
//! damaged record the reader scans forward to the next magic that starts a record whose
//! checksum holds, so damage costs only the records it touches.

/// The first bytes of every segment file: the format and its version.
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"OPSSPL2\n";
/// The bytes that open every record.
pub(crate) const RECORD_MAGIC: [u8; 4] = [0xF5, b'o', b'p', 0xF7];
/// Bytes before each payload.
pub(crate) const HEADER: usize = 12;
/// The largest payload written or read (a bigger length in a header means corruption).
pub(crate) const MAX_RECORD: usize = 1 << 30;

/// Appends one framed record to `out`. `payload` must be at most [`MAX_RECORD`] bytes.
pub(crate) fn encode(payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(payload.len() <= MAX_RECORD);
    let len = (payload.len() as u32).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(payload);
    out.extend_from_slice(&RECORD_MAGIC);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(payload);
}

/// The payload of the record at the start of `bytes`, when a whole, intact record is there.
pub(crate) fn record_at(bytes: &[u8]) -> Option<&[u8]> {
    let header = bytes.get(..HEADER)?;
    if header[..4] != RECORD_MAGIC {
        return None;
    }
    let len_bytes = [header[4], header[5], header[6], header[7]];
    let len = u32::from_le_bytes(len_bytes) as usize;
    let crc = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if len > MAX_RECORD {
        return None;
    }
    let payload = bytes.get(HEADER..HEADER + len)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(payload);
    (hasher.finalize() == crc).then_some(payload)
}

/// A stretch of a segment that holds no intact record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Damage {
    /// Where it starts in the file.
    pub(crate) offset: u64,
    /// How long it is.
    pub(crate) bytes: u64,
    /// How many records it held, as far as can be told: the record markers found in it, at
    /// least one.
    pub(crate) records: u64,
    /// Whether it runs to the end of the file (a write cut short by a crash, most likely)
    /// rather than sitting between intact records (corruption).
    pub(crate) tail: bool,
}

/// What reading a segment found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Decoded<'a> {
    /// The intact records, in order, with their offsets in the file.
    pub(crate) records: Vec<(u64, &'a [u8])>,
    /// The damaged stretches, in order.
    pub(crate) damage: Vec<Damage>,
    /// Whether the file starts with [`SEGMENT_MAGIC`].
    pub(crate) has_header: bool,
}

impl Decoded<'_> {
    /// Damaged records between intact ones, and the bytes they took.
    pub(crate) fn corrupt(&self) -> (u64, u64) {
        self.damage
            .iter()
            .filter(|d| !d.tail)
            .fold((0, 0), |(r, b), d| (r + d.records, b + d.bytes))
    }

    /// Bytes of a torn tail.
    pub(crate) fn torn_bytes(&self) -> u64 {
        self.damage.iter().filter(|d| d.tail).map(|d| d.bytes).sum()
    }
}

/// Reads every intact record of a segment file. Never panics: a damaged record is skipped up
/// to the next intact one, and every skipped byte is reported in [`Decoded::damage`].
pub(crate) fn decode(bytes: &[u8]) -> Decoded<'_> {
    let has_header = bytes.starts_with(SEGMENT_MAGIC);
    let mut at = if has_header { SEGMENT_MAGIC.len() } else { 0 };
    let mut decoded = Decoded {
        has_header,
        ..Decoded::default()
    };
    while at < bytes.len() {
        if let Some(payload) = record_at(&bytes[at..]) {
            decoded.records.push((at as u64, payload));
            at += HEADER + payload.len();
            continue;
        }
        let next = next_record(bytes, at + 1);
        let end = next.unwrap_or(bytes.len());
        let markers = count_markers(&bytes[at..end]);
        decoded.damage.push(Damage {
            offset: at as u64,
            bytes: (end - at) as u64,
            records: markers.max(1),
            tail: next.is_none(),
        });
        at = end;
    }
    decoded
}

/// The offset of the first intact record at or after `from`.
fn next_record(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at < bytes.len() {
        let found = bytes[at..].iter().position(|b| *b == RECORD_MAGIC[0])?;
        at += found;
        if record_at(&bytes[at..]).is_some() {
            return Some(at);
        }
        at += 1;
    }
    None
}

fn count_markers(bytes: &[u8]) -> u64 {
    bytes
        .windows(RECORD_MAGIC.len())
        .filter(|w| *w == RECORD_MAGIC)
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn segment(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = SEGMENT_MAGIC.to_vec();
        for p in payloads {
            encode(p, &mut out);
        }
        out
    }

    fn payloads<'a>(d: &'a Decoded<'_>) -> Vec<&'a [u8]> {
        d.records.iter().map(|(_, p)| *p).collect()
    }

    #[test]
    fn round_trip_with_offsets() {
        let bytes = segment(&[b"one", b"", b"three"]);
        let d = decode(&bytes);
        assert!(d.has_header);
        assert_eq!(payloads(&d), vec![&b"one"[..], b"", b"three"]);
        assert_eq!(d.records[0].0, 8);
        assert_eq!(d.records[1].0, 8 + 12 + 3);
        assert!(d.damage.is_empty());
        for (offset, payload) in &d.records {
            assert_eq!(record_at(&bytes[*offset as usize..]), Some(*payload));
        }
    }

    #[test]
    fn a_torn_tail_keeps_every_intact_record() {
        let bytes = segment(&[b"one", b"two"]);
        for cut in 8..bytes.len() {
            let d = decode(&bytes[..cut]);
            let whole = if cut >= 8 + 2 * (HEADER + 3) {
                2
            } else if cut >= 8 + HEADER + 3 {
                1
            } else {
                0
            };
            assert_eq!(d.records.len(), whole, "cut at {cut}");
            assert!(d.damage.iter().all(|d| d.tail), "cut at {cut}");
            assert_eq!(
                8 + d.torn_bytes() as usize
                    + d.records.iter().map(|r| r.1.len() + HEADER).sum::<usize>(),
                cut
            );
        }
    }

    #[test]
    fn a_flipped_byte_costs_only_its_record() {
        let mut bytes = segment(&[b"one", b"two", b"six"]);
        bytes[8 + HEADER + 3 + HEADER + 1] ^= 0x20;
        let d = decode(&bytes);
        assert_eq!(payloads(&d), vec![&b"one"[..], b"six"]);
        assert_eq!(d.corrupt(), (1, (HEADER + 3) as u64));
        assert_eq!(d.torn_bytes(), 0);
    }

    #[test]
    fn a_damaged_length_or_marker_resynchronises() {
        for at in [0, 4, 5, 8] {
            let mut bytes = segment(&[b"one", b"two", b"six"]);
            bytes[8 + HEADER + 3 + at] ^= 0xFF;
            let d = decode(&bytes);
            assert_eq!(payloads(&d), vec![&b"one"[..], b"six"], "byte {at}");
        }
    }

    #[test]
    fn no_payload_byte_can_open_a_record() {
        let json =
            serde_json::to_vec(&serde_json::json!({"s": "\u{10FFFF}\u{7FF}\u{FFFF}é"})).unwrap();
        assert!(!json.contains(&RECORD_MAGIC[0]) && !json.contains(&RECORD_MAGIC[3]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let d = decode(&bytes);
            let damaged: u64 = d.damage.iter().map(|d| d.bytes).sum();
            prop_assert!(damaged as usize <= bytes.len());
        }

        #[test]
        fn every_record_no_flip_touched_survives(
            payloads in proptest::collection::vec("[a-z{}\":,0-9]{0,40}", 1..12),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        ) {
            let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_bytes()).collect();
            let clean = segment(&refs);
            let mut bytes = clean.clone();
            let mut hit = std::collections::HashSet::new();
            let spans: Vec<(usize, usize)> = decode(&clean).records.iter()
                .map(|(o, p)| (*o as usize, *o as usize + HEADER + p.len())).collect();
            for (index, mask) in &flips {
                let at = 8 + index.index(bytes.len() - 8);
                bytes[at] ^= mask;
                if let Some(i) = spans.iter().position(|(s, e)| (*s..*e).contains(&at)) {
                    hit.insert(i);
                }
            }
            let d = decode(&bytes);
            let got: Vec<&[u8]> = d.records.iter().map(|(_, p)| *p).collect();
            for (i, p) in refs.iter().enumerate() {
                if !hit.contains(&i) {
                    prop_assert!(got.contains(p), "record {} lost", i);
                }
            }
        }
    }
}
