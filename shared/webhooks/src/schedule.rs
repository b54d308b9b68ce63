//! When attempts happen (CONTRACT "Webhooks"): at 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h
//! after the previous one, each delay ±20 % jitter; `Retry-After` on a 429 or 503 is honoured
//! within [delay, 2 × delay]. `LINKCRM_WEBHOOK_RETRY_SCHEDULE` (seconds, comma-separated, the
//! delays after the first attempt) replaces the schedule for tests and self-hosting.

use std::time::Duration;

/// The delays before attempts 2..=8, in seconds.
pub const DEFAULT_DELAYS: [u64; 7] = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
pub const SCHEDULE_ENV: &str = "LINKCRM_WEBHOOK_RETRY_SCHEDULE";

/// The retry schedule in force.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// Delay before attempt `i + 2`.
    pub delays: Vec<Duration>,
    /// ±jitter as a fraction of each delay.
    pub jitter: f64,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule { delays: DEFAULT_DELAYS.iter().map(|s| Duration::from_secs(*s)).collect(), jitter: 0.2 }
    }
}

impl Schedule {
    /// From `LINKCRM_WEBHOOK_RETRY_SCHEDULE` when set (no jitter then: tests count on it), else
    /// the default.
    pub fn from_env() -> Self {
        match std::env::var(SCHEDULE_ENV) {
            Ok(v) if !v.trim().is_empty() => match parse(&v) {
                Some(delays) => Schedule { delays, jitter: 0.0 },
                None => {
                    tracing::error!(value = %v, "{SCHEDULE_ENV} is not a list of seconds; using the default schedule");
                    Schedule::default()
                }
            },
            _ => Schedule::default(),
        }
    }

    /// Attempts in all (the first plus one per delay).
    pub fn attempts(&self) -> u32 {
        self.delays.len() as u32 + 1
    }

    /// The delay before attempt `next` (2-based), given a jitter draw in [0, 1) and the
    /// receiver's `Retry-After`; `None` when attempt `next` is past the last.
    pub fn delay_before(&self, next: u32, draw: f64, retry_after: Option<Duration>) -> Option<Duration> {
        let base = *self.delays.get(next.checked_sub(2)? as usize)?;
        let factor = 1.0 + self.jitter * (2.0 * draw - 1.0);
        let jittered = base.mul_f64(factor.max(0.0));
        Some(match retry_after {
            Some(asked) => asked.clamp(base, base * 2),
            None => jittered,
        })
    }
}

fn parse(v: &str) -> Option<Vec<Duration>> {
    v.split(',').map(|p| p.trim().parse::<f64>().ok().filter(|s| *s >= 0.0).map(Duration::from_secs_f64)).collect()
}

/// A uniform draw in [0, 1) for jitter.
pub fn draw() -> f64 {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).expect("the OS provides randomness");
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_schedule_with_jitter_bounds() {
        let s = Schedule::default();
        assert_eq!(s.attempts(), 8);
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
        assert_eq!(secs(s.delay_before(2, 0.5, None)), Some(5.0));
        assert_eq!(secs(s.delay_before(3, 0.5, None)), Some(300.0));
        assert_eq!(secs(s.delay_before(8, 0.5, None)), Some(36_000.0));
        assert_eq!(s.delay_before(9, 0.5, None), None, "eight attempts, then dead-lettered");
        assert_eq!(s.delay_before(1, 0.5, None), None);
        // ±20 %.
        assert_eq!(secs(s.delay_before(4, 0.0, None)), Some(1_440.0));
        assert!((secs(s.delay_before(4, 0.999_999, None)).unwrap() - 2_160.0).abs() < 0.01);
    }

    #[test]
    fn retry_after_is_clamped_to_one_to_two_delays() {
        let s = Schedule::default();
        let d = |n| Some(Duration::from_secs(n));
        assert_eq!(s.delay_before(3, 0.5, d(10)), d(300), "too soon: the schedule's delay");
        assert_eq!(s.delay_before(3, 0.5, d(450)), d(450));
        assert_eq!(s.delay_before(3, 0.5, d(100_000)), d(600), "too late: twice the delay");
    }

    #[test]
    fn env_schedule_parses() {
        assert_eq!(parse("1, 2.5,0"), Some(vec![Duration::from_secs(1), Duration::from_millis(2500), Duration::ZERO]));
        assert_eq!(parse("1,x"), None);
        assert_eq!(parse("-1"), None);
    }
}
