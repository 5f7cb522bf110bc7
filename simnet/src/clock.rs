//! The simulated clock. With `time_scale = 1` (the default) it is the wall clock. With
//! `time_scale = N` it starts at the wall clock when the fleet starts and then runs N times
//! faster:
//!
//! ```text
//! sim_us(wall_us) = start_us + (wall_us - start_us) * N
//! ```
//!
//! Everything simnet stamps uses it: block header times (so `mediantime`, `time`, `getblock`'s
//! times), `getblocktemplate`'s `curtime`, mempool entry times, `getpeerinfo` times, `uptime`,
//! debug.log timestamps and the truth file's `t_us`. Every `*_ms` of a scenario is simulated
//! time, and the simulation sleeps `ms / N` of wall time between steps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Wall-clock microseconds since the Unix epoch.
pub fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A clock that maps wall time to simulated time (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimClock {
    /// Wall clock (µs since the epoch) at which simulated and wall time were equal: the fleet
    /// start.
    pub start_us: u64,
    /// How many simulated seconds pass per wall second (≥ 1).
    pub time_scale: f64,
}

impl SimClock {
    /// The wall clock itself (`time_scale` 1).
    pub fn wall() -> SimClock {
        SimClock {
            start_us: wall_us(),
            time_scale: 1.0,
        }
    }

    /// A clock starting now and running `time_scale` times faster than the wall clock.
    pub fn starting_now(time_scale: f64) -> SimClock {
        SimClock {
            start_us: wall_us(),
            time_scale: if time_scale.is_finite() && time_scale >= 1.0 {
                time_scale
            } else {
                1.0
            },
        }
    }

    /// Whether simulated time runs faster than wall time.
    pub fn accelerated(&self) -> bool {
        self.time_scale > 1.0
    }

    /// Simulated time at wall time `wall`, µs since the epoch.
    pub fn sim_at(&self, wall: u64) -> u64 {
        if !self.accelerated() {
            return wall;
        }
        let elapsed = wall.saturating_sub(self.start_us) as f64;
        self.start_us + (elapsed * self.time_scale) as u64
    }

    /// Simulated time now, µs since the epoch.
    pub fn now_us(&self) -> u64 {
        self.sim_at(wall_us())
    }

    /// Simulated time now, seconds since the epoch.
    pub fn now_secs(&self) -> u64 {
        self.now_us() / 1_000_000
    }

    /// The wall-clock duration of `sim_ms` simulated milliseconds.
    pub fn wall_duration(&self, sim_ms: u64) -> Duration {
        Duration::from_secs_f64(sim_ms as f64 / 1000.0 / self.time_scale)
    }

    /// Simulated seconds in a wall-clock duration.
    pub fn sim_secs(&self, wall: Duration) -> u64 {
        (wall.as_secs_f64() * self.time_scale) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accelerated_clock_starts_at_the_wall_clock_and_runs_faster() {
        let c = SimClock {
            start_us: 1_000_000_000,
            time_scale: 600.0,
        };
        assert_eq!(c.sim_at(1_000_000_000), 1_000_000_000);
        // One wall second later, ten simulated minutes have passed.
        assert_eq!(c.sim_at(1_001_000_000), 1_000_000_000 + 600_000_000);
        assert_eq!(c.wall_duration(600_000), Duration::from_secs(1));
        assert_eq!(c.sim_secs(Duration::from_millis(500)), 300);
    }

    #[test]
    fn unit_scale_is_the_wall_clock() {
        let c = SimClock::starting_now(1.0);
        assert!(!c.accelerated());
        assert_eq!(c.sim_at(42), 42);
        assert_eq!(SimClock::starting_now(f64::NAN).time_scale, 1.0);
    }
}
