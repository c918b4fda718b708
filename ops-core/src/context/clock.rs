//! The clock traced calls read: the CPU's time-stamp counter where it is invariant (through
//! `quanta`, a few nanoseconds a read), the OS's monotonic clock elsewhere. A trace reads the
//! wall clock once, when its root starts, and places every observation from there: times in a
//! trace never go backwards, even if the system clock is stepped while it runs.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static CLOCK: LazyLock<quanta::Clock> = LazyLock::new(quanta::Clock::new);

/// A reading of the monotonic clock, in its own units (ticks).
#[inline]
pub(crate) fn ticks() -> u64 {
    CLOCK.raw()
}

/// Calibrates the clock now, off the first traced call's path (calibration takes about a
/// millisecond).
pub(crate) fn warm_up() {
    LazyLock::force(&CLOCK);
}

/// A wall-clock time and the tick count read at that time: converts later tick counts to wall
/// time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anchor {
    wall: SystemTime,
    unix_nanos: u64,
    ticks: u64,
}

impl Anchor {
    /// Reads both clocks now.
    pub(crate) fn now() -> Self {
        let wall = SystemTime::now();
        let ticks = ticks();
        let unix_nanos = wall
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Self {
            wall,
            unix_nanos,
            ticks,
        }
    }

    /// The tick count read with the wall time.
    pub(crate) fn ticks(&self) -> u64 {
        self.ticks
    }

    /// The wall time of a later reading. A reading from before the anchor (another core's
    /// counter a few ticks behind) maps to the anchor itself.
    pub(crate) fn time(&self, ticks: u64) -> SystemTime {
        self.wall + Duration::from_nanos(CLOCK.delta_as_nanos(self.ticks, ticks))
    }

    /// The Unix time of a later reading, in milliseconds (for UUIDv7 ids).
    #[inline]
    pub(crate) fn unix_millis(&self, ticks: u64) -> u64 {
        (self.unix_nanos + CLOCK.delta_as_nanos(self.ticks, ticks)) / 1_000_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_map_to_the_wall_clock() {
        let anchor = Anchor::now();
        std::thread::sleep(Duration::from_millis(20));
        let later = ticks();
        let wall = SystemTime::now();
        let mapped = anchor.time(later);
        let gap = wall.duration_since(mapped).unwrap_or_else(|e| e.duration());
        assert!(
            gap < Duration::from_millis(5),
            "mapped {mapped:?}, wall {wall:?}"
        );
        let elapsed = mapped.duration_since(anchor.time(anchor.ticks())).unwrap();
        assert!(elapsed >= Duration::from_millis(19), "{elapsed:?}");
        let millis = anchor.unix_millis(later);
        let wall_millis = mapped.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        assert!(
            millis.abs_diff(wall_millis) <= 1,
            "{millis} vs {wall_millis}"
        );
    }

    #[test]
    fn a_reading_before_the_anchor_maps_to_the_anchor() {
        let anchor = Anchor::now();
        assert_eq!(
            anchor.time(anchor.ticks().saturating_sub(1000)),
            anchor.wall
        );
    }
}
