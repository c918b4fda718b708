//! Fast observation ids and sampling draws: a per-thread SplitMix64, so no call on the hot path
//! asks the OS for randomness.

use std::cell::RefCell;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

/// A SplitMix64 generator, seeded on first use.
#[derive(Debug)]
pub(crate) struct Rng {
    state: u64,
    seeded: bool,
}

impl Rng {
    pub(crate) const fn new() -> Self {
        Self {
            state: 0,
            seeded: false,
        }
    }

    /// The next value.
    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        if !self.seeded {
            self.state = seed();
            self.seeded = true;
        }
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A UUIDv7 whose timestamp is `millis` since the Unix epoch. Built as one integer
    /// (RFC 9562 §5.7: 48 bits of milliseconds, version 7, 12 random bits, variant 0b10, 62
    /// random bits) rather than byte by byte: this runs on every traced call.
    #[inline]
    pub(crate) fn uuid_v7(&mut self, millis: u64) -> Uuid {
        let rand_a = u128::from(self.next_u64() >> 52);
        let rand_b = u128::from(self.next_u64() >> 2);
        let value = (u128::from(millis & 0xFFFF_FFFF_FFFF) << 80)
            | (0x7 << 76)
            | (rand_a << 64)
            | (0b10 << 62)
            | rand_b;
        Uuid::from_u128(value)
    }
}

thread_local! {
    static STATE: RefCell<Rng> = const { RefCell::new(Rng::new()) };
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

fn with_rng<R>(f: impl Fn(&mut Rng) -> R) -> R {
    STATE
        .try_with(|r| r.try_borrow_mut().ok().map(|mut r| f(&mut r)))
        .ok()
        .flatten()
        .unwrap_or_else(|| f(&mut Rng::new()))
}

/// The next value of this thread's generator.
pub(crate) fn next_u64() -> u64 {
    with_rng(Rng::next_u64)
}

/// A uniform draw from `[0, 1)`.
pub(crate) fn unit() -> f64 {
    (next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A UUIDv7 whose timestamp is `millis` since the Unix epoch.
pub(crate) fn uuid_v7_millis(millis: u64) -> Uuid {
    with_rng(|r| r.uuid_v7(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_v7_unique_and_carry_the_time() {
        let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let a = uuid_v7_millis(at.as_millis() as u64);
        let b = uuid_v7_millis(at.as_millis() as u64);
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 7);
        let (secs, _) = a.get_timestamp().unwrap().to_unix();
        assert_eq!(secs, at.as_secs());
    }

    #[test]
    fn ids_match_the_uuid_crates_layout() {
        let millis = 1_763_700_000_123;
        let mut rng = Rng::new();
        for _ in 0..1000 {
            let id = rng.uuid_v7(millis);
            assert_eq!(id.get_version(), Some(uuid::Version::SortRand));
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
            assert_eq!(secs * 1000 + u64::from(nanos) / 1_000_000, millis);
        }
        let a = rng.uuid_v7(millis);
        let b = rng.uuid_v7(millis);
        assert_ne!(a, b);
    }

    #[test]
    fn unit_draws_stay_in_range_and_spread() {
        let draws: Vec<f64> = (0..10_000).map(|_| unit()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        let below = draws.iter().filter(|d| **d < 0.5).count();
        assert!((4_000..6_000).contains(&below), "{below}");
    }
}
