//! Sampling: which traces are recorded, decided once per trace at its root.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The fraction of traces to record, from 0.0 to 1.0 (default 1.0: every trace).
/// [`set_sample_rate`] beats it.
pub const SAMPLE_RATE_ENV: &str = "OPS_TRACE_SAMPLE_RATE";

/// Not yet read from the environment.
const UNSET: u64 = u64::MAX;
static RATE: AtomicU64 = AtomicU64::new(UNSET);

/// A sample rate outside 0.0..=1.0.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error(
    "invalid sample rate {0}: it must be a number from 0.0 (record nothing) to 1.0 (record every trace); 0.25 records one trace in four"
)]
pub struct InvalidSampleRate(pub f64);

/// Sets the fraction of traces recorded, for the whole process; it beats
/// `OPS_TRACE_SAMPLE_RATE`. The decision is made when a trace's root starts and every
/// observation of the trace inherits it; a call in an unsampled trace costs what a call with
/// tracing off costs. `#[traced(sample_rate = ..)]` overrides it for the roots of one function.
pub fn set_sample_rate(rate: f64) -> Result<(), InvalidSampleRate> {
    if !(0.0..=1.0).contains(&rate) {
        return Err(InvalidSampleRate(rate));
    }
    RATE.store(rate.to_bits(), Relaxed);
    Ok(())
}

/// The fraction of traces recorded: the one set with [`set_sample_rate`], else
/// `OPS_TRACE_SAMPLE_RATE`, else 1.0. An invalid environment value is refused by
/// [`crate::init`] (and [`crate::builder_from_env`]); read here, it is reported once (a
/// `tracing` warning naming the variable and its range) and read as 1.0.
pub fn sample_rate() -> f64 {
    match RATE.load(Relaxed) {
        UNSET => {
            let rate = match sample_rate_from_env() {
                Ok(rate) => rate.unwrap_or(1.0),
                Err(e) => {
                    tracing::warn!("ops: {e}; recording every trace");
                    1.0
                }
            };
            // Another thread may have set a rate meanwhile: keep that one.
            let _ = RATE.compare_exchange(UNSET, rate.to_bits(), Relaxed, Relaxed);
            f64::from_bits(RATE.load(Relaxed))
        }
        bits => f64::from_bits(bits),
    }
}

/// `OPS_TRACE_SAMPLE_RATE`: `Ok(None)` when unset or blank; an error naming the variable when
/// it is not UTF-8 or not a number from 0.0 to 1.0 (`NaN` and infinities included).
fn sample_rate_from_env() -> Result<Option<f64>, crate::env::EnvError> {
    crate::env::parse_var(SAMPLE_RATE_ENV, crate::env::fraction)
}

/// Draws whether a new trace is recorded at `rate`. A rate outside 0..=1 (or NaN) counts as 1.
pub(crate) fn sampled(rate: f64) -> bool {
    if rate >= 1.0 || rate.is_nan() || rate < 0.0 {
        true
    } else if rate == 0.0 {
        false
    } else {
        super::ids::unit() < rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_rates_are_rejected_with_a_hint() {
        let err = set_sample_rate(1.5).unwrap_err();
        assert!(err.to_string().contains("from 0.0"), "{err}");
        assert!(set_sample_rate(f64::NAN).is_err());
    }

    #[test]
    fn draws_follow_the_rate() {
        assert!(sampled(1.0));
        assert!(!sampled(0.0));
        let kept = (0..10_000).filter(|_| sampled(0.25)).count();
        assert!((2_000..3_000).contains(&kept), "{kept}");
    }
}
