//! Fast observation ids and sampling draws: a per-thread SplitMix64, so no call on the hot path
//! asks the OS for randomness.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    // RandomState is keyed from the OS once per thread; mixing in the time and thread keeps
    // threads apart even where those keys are derived from one another.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    std::hash::Hash::hash(&std::thread::current().id(), &mut h);
    h.finish()
}

/// The next value of this thread's SplitMix64.
pub(crate) fn next_u64() -> u64 {
    STATE
        .try_with(|s| {
            let x = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            s.set(x);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
        .unwrap_or_else(|_| seed())
}

/// A uniform draw from `[0, 1)`.
pub(crate) fn unit() -> f64 {
    (next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A UUIDv7 whose timestamp is `at`.
pub(crate) fn uuid_v7(at: SystemTime) -> Uuid {
    let millis = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let a = next_u64().to_le_bytes();
    let b = next_u64().to_le_bytes();
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&a);
    random[8..].copy_from_slice(&b[..2]);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_v7_unique_and_carry_the_time() {
        let at = SystemTime::now();
        let a = uuid_v7(at);
        let b = uuid_v7(at);
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 7);
        let (secs, _) = a.get_timestamp().unwrap().to_unix();
        let expected = at.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, expected);
    }

    #[test]
    fn unit_draws_stay_in_range_and_spread() {
        let draws: Vec<f64> = (0..10_000).map(|_| unit()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        let below = draws.iter().filter(|d| **d < 0.5).count();
        assert!((4_000..6_000).contains(&below), "{below}");
    }
}
