//! How long to wait between attempts of one provider call.

use std::time::Duration;

/// Bounded exponential backoff. Delays are fields rather than constants so tests can run the same
/// retry paths in milliseconds.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Total tries, the first included (1 disables retrying).
    pub max_attempts: u32,
    /// Wait before the second try; doubled for each further try.
    pub base_delay: Duration,
    /// Longest single wait. A `Retry-After` longer than this is not slept through: the call fails with
    /// `RateLimited` carrying the hint, because holding a worker for minutes is worse than rescheduling.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`, given the provider's `Retry-After` hint if any.
    /// Returns `None` when the hint asks for more than `max_delay`.
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let exp = self.base_delay.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let backoff = exp.min(self.max_delay) + jitter(exp.min(self.max_delay) / 4);
        match retry_after {
            Some(hint) if hint > self.max_delay => None,
            // Never sooner than the provider asked; a `Retry-After: 0` still gets our backoff so a
            // busy provider is not hammered.
            Some(hint) => Some(hint.max(backoff)),
            None => Some(backoff),
        }
    }
}

/// Up to `max` of spread so that several workers throttled together do not retry in lockstep. The clock's
/// sub-second part is random enough for that and saves a dependency.
fn jitter(max: Duration) -> Duration {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let max_nanos = max.as_nanos().min(u128::from(u32::MAX)) as u64;
    if max_nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(u64::from(nanos) % max_nanos)
}

/// A `Retry-After` header in whole seconds (the providers send no dates).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        };
        let d1 = p.delay(1, None).unwrap();
        let d2 = p.delay(2, None).unwrap();
        let d5 = p.delay(5, None).unwrap();
        assert!(d1 >= Duration::from_millis(100) && d1 < Duration::from_millis(125), "{d1:?}");
        assert!(d2 >= Duration::from_millis(200) && d2 < Duration::from_millis(250), "{d2:?}");
        assert!(d5 >= Duration::from_millis(300) && d5 < Duration::from_millis(375), "{d5:?}");
    }

    #[test]
    fn retry_after_is_a_floor_and_too_long_a_hint_gives_up() {
        let p =
            RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(10), max_delay: Duration::from_secs(5) };
        assert!(p.delay(1, Some(Duration::from_secs(2))).unwrap() >= Duration::from_secs(2));
        assert_eq!(p.delay(1, Some(Duration::from_secs(60))), None);
    }
}
