//! The retry policy of the leased queues (deliveries and notification mails):
//! exponential back-off, when a row is given up, and how long a claim's lease
//! runs. Plain rules with no service behind them, so both the delivery engine
//! (`crate::queue`) and the notification rules (`crate::notify`) use them.

use std::time::Duration;

use crate::clock::millis;

/// Exponential back-off: `base × 2^(attempts-1)`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackOff {
    pub base: Duration,
    pub max: Duration,
}

impl BackOff {
    /// The wait before the attempt after `attempts` failed ones.
    pub fn delay(&self, attempts: i64) -> Duration {
        let exp = u32::try_from(attempts.clamp(1, 30) - 1).unwrap_or(0);
        self.base
            .checked_mul(1u32 << exp.min(20))
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// When the next attempt is due after `attempts` failed ones at `now`
    /// (Unix milliseconds), or `None` when the row is given up.
    pub fn next_attempt(&self, attempts: i64, now: i64, give_up: GiveUp) -> Option<i64> {
        let next = now.saturating_add(millis(self.delay(attempts)));
        match give_up {
            GiveUp::AfterAttempts(max) => (attempts < max).then_some(next),
            // Never scheduled past the deadline, and nothing after it.
            GiveUp::At(deadline) => (now < deadline).then_some(next.min(deadline)),
        }
    }
}

/// When a queue stops retrying a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// Once this many attempts have failed.
    AfterAttempts(i64),
    /// At this time (Unix milliseconds).
    At(i64),
}

/// The end of a lease taken at `now` (Unix milliseconds) for `lease`: after a
/// crash the row is claimed again once this has passed.
pub fn lease_until(now: i64, lease: Duration) -> i64 {
    now.saturating_add(millis(lease))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn give_up_by_count_or_by_deadline() {
        let b = BackOff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        };
        assert_eq!(
            b.next_attempt(1, 1000, GiveUp::AfterAttempts(3)),
            Some(2000)
        );
        assert_eq!(b.next_attempt(3, 1000, GiveUp::AfterAttempts(3)), None);
        assert_eq!(b.next_attempt(2, 1000, GiveUp::At(2500)), Some(2500));
        assert_eq!(b.next_attempt(2, 2500, GiveUp::At(2500)), None);
        assert_eq!(lease_until(5, Duration::from_millis(10)), 15);
    }
}
