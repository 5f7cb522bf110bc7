//! The agent's clock: where every `observed_at` the agent stamps itself comes from (ZMQ receipt
//! times, RPC polls, `gap` events, debug.log lines that carry no time of their own). Events
//! extracted from debug.log lines keep the line's own time and never pass through here.
//!
//! In production the clock is the host's wall clock ([`Clock::wall`]). As a simulation and
//! testing aid, the optional `[clock]` section maps the wall clock onto a faster (or slower)
//! simulated clock, so the agent's times agree with a simulated fleet's block header and
//! debug.log times (bmon-simnet's `time_scale`):
//!
//! ```text
//! observed_at = origin_us + (wall_us - origin_us) * scale
//! ```
//!
//! `origin_us` is the wall time (µs since the epoch) at which both clocks agree. The mapping is
//! computed exactly in integers (the `f64` scale is split into its mantissa and power of two),
//! so it neither overflows nor drifts, and saturates at the ends of `i64` for absurd values.
//! Production agents never set it. Timers (poll intervals, retries, waits) stay in wall time.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use schema::UnixMicros;

/// The host's wall clock, µs since the epoch: the only place the agent reads the system time.
pub fn wall_now() -> UnixMicros {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    UnixMicros(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// A `[clock]` scale that is not a positive finite number.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("clock scale {0} is not a positive finite number")]
pub struct InvalidScale(pub f64);

/// The clock the agent stamps events with: the wall clock, or the wall clock mapped onto a
/// simulated one (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    scaled: Option<Scaled>,
}

/// `origin + (wall - origin) * mantissa * 2^exp`, with `mantissa * 2^exp` exactly the
/// configured `f64` scale.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scaled {
    origin: i64,
    scale: f64,
    mantissa: i128,
    exp: i32,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::wall()
    }
}

impl Clock {
    /// The host's wall clock (what production agents use).
    pub fn wall() -> Clock {
        Clock { scaled: None }
    }

    /// A simulated clock equal to the wall clock at `origin` and running `scale` times as fast.
    pub fn scaled(origin: UnixMicros, scale: f64) -> Result<Clock, InvalidScale> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(InvalidScale(scale));
        }
        let (mantissa, exp) = decompose(scale);
        Ok(Clock {
            scaled: Some(Scaled {
                origin: origin.0,
                scale,
                mantissa,
                exp,
            }),
        })
    }

    /// Whether this is a simulated clock (a `[clock]` section was configured).
    pub fn is_scaled(&self) -> bool {
        self.scaled.is_some()
    }

    /// The wall time at which both clocks agree, for a simulated clock.
    pub fn origin(&self) -> Option<UnixMicros> {
        self.scaled.map(|s| UnixMicros(s.origin))
    }

    /// Simulated seconds per wall second (1 for the wall clock).
    pub fn scale(&self) -> f64 {
        self.scaled.map_or(1.0, |s| s.scale)
    }

    /// The time to stamp an event observed now.
    pub fn now(&self) -> UnixMicros {
        self.at(wall_now())
    }

    /// The time to stamp an event observed at wall time `wall`.
    pub fn at(&self, wall: UnixMicros) -> UnixMicros {
        let Some(s) = self.scaled else { return wall };
        // |elapsed| < 2^64 and mantissa < 2^53: the product fits an i128.
        let elapsed = i128::from(wall.0) - i128::from(s.origin);
        let t = i128::from(s.origin).saturating_add(times_pow2(elapsed * s.mantissa, s.exp));
        UnixMicros(t.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }
}

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scaled {
            None => f.write_str("wall clock"),
            Some(s) => write!(
                f,
                "simulated clock: origin_us + (wall_us - origin_us) * {} with origin_us = {}",
                s.scale, s.origin
            ),
        }
    }
}

/// A finite positive `f64` as `mantissa * 2^exp`, exactly.
fn decompose(x: f64) -> (i128, i32) {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = i128::from(bits & ((1u64 << 52) - 1));
    if biased == 0 {
        (fraction, -1074) // subnormal
    } else {
        (fraction | (1i128 << 52), biased - 1075)
    }
}

/// `v * 2^exp`, rounded to the nearest integer (halves up), saturating at the ends of `i128`.
fn times_pow2(v: i128, exp: i32) -> i128 {
    if exp >= 0 {
        let e = exp.unsigned_abs();
        if v == 0 {
            return 0;
        }
        if e >= 127 || v.unsigned_abs() > (i128::MAX >> e).unsigned_abs() {
            return if v > 0 { i128::MAX } else { i128::MIN };
        }
        v << e
    } else {
        let e = exp.unsigned_abs();
        if e >= 126 {
            // |v| < 2^117: the result rounds to 0.
            return 0;
        }
        // Arithmetic shift floors; adding half first rounds to the nearest.
        (v + (1i128 << (e - 1))) >> e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

    fn scaled(scale: f64) -> Clock {
        Clock::scaled(UnixMicros(ORIGIN), scale).unwrap()
    }

    #[test]
    fn the_wall_clock_is_the_identity() {
        let c = Clock::wall();
        assert!(!c.is_scaled());
        assert_eq!(c.at(UnixMicros(ORIGIN + 123)), UnixMicros(ORIGIN + 123));
        assert_eq!(c.scale(), 1.0);
        assert_eq!(c.origin(), None);
        assert_eq!(Clock::default(), c);
    }

    #[test]
    fn the_wall_clock_now_is_the_system_time() {
        let before = wall_now();
        let now = Clock::wall().now();
        let after = wall_now();
        assert!(before <= now && now <= after);
    }

    #[test]
    fn a_scaled_clock_agrees_with_the_wall_clock_at_its_origin() {
        for scale in [0.5, 1.0, 20.0, 1200.0] {
            assert_eq!(scaled(scale).at(UnixMicros(ORIGIN)), UnixMicros(ORIGIN));
        }
    }

    #[test]
    fn a_scaled_clock_runs_scale_times_as_fast() {
        let c = scaled(20.0);
        // One wall second after the origin, twenty simulated seconds have passed.
        assert_eq!(
            c.at(UnixMicros(ORIGIN + 1_000_000)),
            UnixMicros(ORIGIN + 20_000_000)
        );
        assert_eq!(
            c.at(UnixMicros(ORIGIN + 50_001)),
            UnixMicros(ORIGIN + 1_000_020)
        );
        let slow = scaled(0.5);
        assert_eq!(slow.at(UnixMicros(ORIGIN + 3)), UnixMicros(ORIGIN + 2)); // 1.5 rounds up
        let odd = scaled(2.5);
        assert_eq!(
            odd.at(UnixMicros(ORIGIN + 1_000_000)),
            UnixMicros(ORIGIN + 2_500_000)
        );
    }

    #[test]
    fn a_scaled_clock_maps_times_before_its_origin_backwards() {
        let c = scaled(20.0);
        assert_eq!(
            c.at(UnixMicros(ORIGIN - 1_000_000)),
            UnixMicros(ORIGIN - 20_000_000)
        );
    }

    #[test]
    fn an_inexact_scale_does_not_drift() {
        // 1/3 is not exact in f64, but three wall seconds still make one simulated second.
        let c = scaled(1.0 / 3.0);
        assert_eq!(
            c.at(UnixMicros(ORIGIN + 3_000_000)),
            UnixMicros(ORIGIN + 1_000_000)
        );
        // 1.1 over ten years of wall time: within a microsecond of the exact product.
        let c = scaled(1.1);
        let ten_years = 10 * 365 * 86_400 * 1_000_000i64;
        assert_eq!(
            c.at(UnixMicros(ORIGIN + ten_years)),
            UnixMicros(ORIGIN + ten_years + ten_years / 10)
        );
    }

    #[test]
    fn long_runs_at_high_scales_do_not_overflow() {
        // Ten years of wall time at 1200x: ~3.8e17 µs, well inside i64.
        let c = scaled(1200.0);
        let ten_years = 10 * 365 * 86_400 * 1_000_000i64;
        assert_eq!(
            c.at(UnixMicros(ORIGIN + ten_years)),
            UnixMicros(ORIGIN + ten_years * 1200)
        );
    }

    #[test]
    fn absurd_values_saturate_instead_of_overflowing() {
        assert_eq!(
            scaled(1e300).at(UnixMicros(ORIGIN + 1)),
            UnixMicros(i64::MAX)
        );
        assert_eq!(
            scaled(1e300).at(UnixMicros(ORIGIN - 1)),
            UnixMicros(i64::MIN)
        );
        assert_eq!(scaled(1e-300).at(UnixMicros(i64::MAX)), UnixMicros(ORIGIN));
        assert_eq!(
            scaled(f64::MAX).at(UnixMicros(i64::MAX)),
            UnixMicros(i64::MAX)
        );
        assert_eq!(
            scaled(f64::MIN_POSITIVE / 4.0).at(UnixMicros(i64::MIN)),
            UnixMicros(ORIGIN)
        );
    }

    #[test]
    fn only_positive_finite_scales_are_accepted() {
        for bad in [0.0, -1.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(
                Clock::scaled(UnixMicros(ORIGIN), bad).is_err(),
                "{bad} accepted"
            );
        }
        assert!(Clock::scaled(UnixMicros(ORIGIN), 1e-6).is_ok());
    }

    #[test]
    fn a_scaled_clock_matches_simnets_clock() {
        for scale in [1.5, 20.0, 600.0, 1200.0] {
            let sim = simnet::SimClock {
                start_us: ORIGIN as u64,
                time_scale: scale,
            };
            let c = scaled(scale);
            for wall in [0u64, 1, 999_999, 17_000_001, 3_600_000_000] {
                let ours = c.at(UnixMicros(ORIGIN + wall as i64)).0;
                let theirs = sim.sim_at(ORIGIN as u64 + wall) as i64;
                assert!(
                    (ours - theirs).abs() <= 1,
                    "{scale} {wall}: {ours} vs {theirs}"
                );
            }
        }
    }

    #[test]
    fn the_display_names_the_mapping() {
        assert_eq!(Clock::wall().to_string(), "wall clock");
        let s = scaled(20.0).to_string();
        assert!(s.contains("20") && s.contains(&ORIGIN.to_string()), "{s}");
    }
}
