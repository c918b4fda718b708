//! The spool reader: a segment's bytes, and a whole spool directory read back after a restart.

use std::fs;
use std::path::Path;

use ops_core::__private::fuzz;

/// What every segment file starts with (`record.rs`).
const SEGMENT_MAGIC: &[u8] = b"OPSSPL2\n";
/// What every record starts with, then its length and checksum (`record.rs`).
const RECORD_MAGIC: [u8; 4] = [0xF5, b'o', b'p', 0xF7];
/// Bytes before a record's payload.
const RECORD_HEADER: usize = 12;
/// Splits the fuzzer's bytes into the segment and its acks file.
const ACKS_SEPARATOR: &[u8] = b"\n#acks\n";
/// The segment numbers a file is given (chosen by the flags byte), edges included.
const SEGMENT_NUMBERS: [u64; 8] = [0, 0, 1, 7, 41, 1 << 32, u64::MAX - 1, u64::MAX];

/// Decodes `data` as a segment, with and without the header: never panics, and finds no more
/// records than fit in the bytes.
pub fn spool_decode(data: &[u8]) {
    let n = fuzz::spool_decode(data);
    assert!(
        n * RECORD_HEADER <= data.len(),
        "{n} records in {} bytes",
        data.len()
    );
    let mut with_header = SEGMENT_MAGIC.to_vec();
    with_header.extend_from_slice(data);
    let m = fuzz::spool_decode(&with_header);
    assert!(
        m * RECORD_HEADER <= data.len(),
        "{m} records in {} bytes",
        data.len()
    );
}

/// Writes a spool directory from `data` and reads it back as a restart would.
///
/// `data` is a flags byte, a stop count, then the segment's records (with the header put in
/// front unless the flags' low nibble is `0xF`) and, after `"\n#acks\n"`, its acks file. Flag
/// `0x10` rewrites every framed record's checksum so mutated payloads get past it; the top
/// three bits pick the segment's number.
///
/// Asserts, besides never panicking: a restart that stops after `k` resolved records (as a
/// crash would) and a second restart read back, between them, exactly the records that one
/// uninterrupted restart reads. Nothing resolved is read again, nothing unresolved is lost.
pub fn spool_replay(data: &[u8]) {
    let [flags, stop, rest @ ..] = data else {
        return;
    };
    let (log, acks) = match find(rest, ACKS_SEPARATOR) {
        Some(at) => (&rest[..at], Some(&rest[at + ACKS_SEPARATOR.len()..])),
        None => (rest, None),
    };
    let mut segment = Vec::with_capacity(SEGMENT_MAGIC.len() + log.len());
    if flags & 0x0F != 0x0F {
        segment.extend_from_slice(SEGMENT_MAGIC);
    }
    let body = segment.len();
    segment.extend_from_slice(log);
    if flags & 0x10 != 0 {
        fix_checksums(&mut segment[body..]);
    }
    let number = SEGMENT_NUMBERS[usize::from(flags >> 5)];

    let whole = tempfile::tempdir().expect("a temp dir");
    write_spool(whole.path(), number, &segment, acks);
    let Ok(all) = fuzz::spool_replay(whole.path()) else {
        return;
    };
    assert!(
        all <= fuzz::spool_decode(&segment),
        "read back {all} records from a segment that holds fewer"
    );

    let crashed = tempfile::tempdir().expect("a temp dir");
    write_spool(crashed.path(), number, &segment, acks);
    let stop = usize::from(*stop);
    let first = fuzz::spool_replay_at_most(crashed.path(), stop).expect("the spool opened once");
    assert!(
        first <= stop.min(all),
        "stopped after {first} of {all} (at most {stop})"
    );
    let second = fuzz::spool_replay(crashed.path()).expect("the spool reopens");
    assert_eq!(
        first + second,
        all,
        "a restart after {first} resolved records read back {second} of {all}: resolved \
         records were read again, or unresolved ones lost"
    );
}

fn write_spool(dir: &Path, number: u64, segment: &[u8], acks: Option<&[u8]>) {
    let name = format!("segment-{number:020}");
    fs::write(dir.join(format!("{name}.log")), segment).expect("the segment is written");
    if let Some(acks) = acks {
        fs::write(dir.join(format!("{name}.acks")), acks).expect("the acks are written");
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Rewrites the checksum of every record whose magic, length and payload are all there.
fn fix_checksums(bytes: &mut [u8]) {
    let mut at = 0;
    while at + RECORD_HEADER <= bytes.len() {
        if bytes[at..at + 4] != RECORD_MAGIC {
            at += 1;
            continue;
        }
        let len_bytes = [bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]];
        let len = u32::from_le_bytes(len_bytes) as usize;
        let Some(end) = (at + RECORD_HEADER)
            .checked_add(len)
            .filter(|end| *end <= bytes.len())
        else {
            at += 1;
            continue;
        };
        let mut crc = crc32fast::Hasher::new();
        crc.update(&len_bytes);
        crc.update(&bytes[at + RECORD_HEADER..end]);
        bytes[at + 8..at + 12].copy_from_slice(&crc.finalize().to_le_bytes());
        at = end;
    }
}
