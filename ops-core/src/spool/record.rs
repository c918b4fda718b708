//! The on-disk record format: `[len: u32 LE][crc32 of payload: u32 LE][payload]`.

/// Bytes before each payload.
pub(crate) const HEADER: usize = 8;
/// The largest payload accepted (a bigger length in a header means corruption).
pub(crate) const MAX_RECORD: usize = 64 << 20;

/// Appends one framed record to `out`.
pub(crate) fn encode(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("records are capped well below 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// What reading a segment found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Decoded<'a> {
    /// The intact records, in order.
    pub(crate) records: Vec<&'a [u8]>,
    /// Bytes after the last intact record that could not be read (a torn or corrupt tail).
    pub(crate) torn_bytes: usize,
}

/// Reads framed records until the bytes end or stop making sense. Never panics: a short
/// header, a length past the end, an absurd length or a checksum mismatch ends the read, and
/// what is left is reported as torn.
pub(crate) fn decode(bytes: &[u8]) -> Decoded<'_> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + HEADER) else {
            break;
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_RECORD {
            break;
        }
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        records.push(payload);
        at += HEADER + len;
    }
    Decoded {
        records,
        torn_bytes: bytes.len() - at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode(p, &mut out);
        }
        out
    }

    #[test]
    fn round_trip() {
        let bytes = framed(&[b"one", b"", b"three"]);
        let d = decode(&bytes);
        assert_eq!(d.records, vec![&b"one"[..], b"", b"three"]);
        assert_eq!(d.torn_bytes, 0);
    }

    #[test]
    fn a_torn_tail_keeps_every_intact_record() {
        let bytes = framed(&[b"one", b"two"]);
        for cut in 1..bytes.len() {
            let d = decode(&bytes[..cut]);
            let whole = if cut >= 2 * HEADER + 6 {
                2
            } else if cut >= HEADER + 3 {
                1
            } else {
                0
            };
            assert_eq!(d.records.len(), whole, "cut at {cut}");
            assert_eq!(
                d.torn_bytes + d.records.iter().map(|r| r.len() + HEADER).sum::<usize>(),
                cut
            );
        }
    }

    #[test]
    fn a_flipped_bit_stops_the_read_there() {
        let mut bytes = framed(&[b"one", b"two", b"six"]);
        bytes[HEADER + 3 + HEADER] ^= 1;
        let d = decode(&bytes);
        assert_eq!(d.records, vec![&b"one"[..]]);
        assert_eq!(d.torn_bytes, 2 * (HEADER + 3));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let d = decode(&bytes);
            prop_assert!(d.torn_bytes <= bytes.len());
        }

        #[test]
        fn intact_prefixes_survive_any_garbage_suffix(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
            garbage in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            let mut bytes = framed(&refs);
            bytes.extend_from_slice(&garbage);
            let d = decode(&bytes);
            prop_assert!(d.records.len() >= payloads.len());
            for (got, want) in d.records.iter().zip(&payloads) {
                prop_assert_eq!(*got, want.as_slice());
            }
        }
    }
}
