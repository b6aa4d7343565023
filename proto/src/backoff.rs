//! Jittered exponential backoff. tonic's `Channel` reconnects without backoff
//! and never resumes a broken stream, so every agent wraps its
//! stream-opening loop in this; the jitter keeps a thousand agents that lost
//! the controller at once from reconnecting in lock step.

use rand::Rng;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Starts at `base`, doubles per attempt, never beyond `max`.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff { base, max, attempt: 0 }
    }

    /// The next delay: uniform in [d/2, d] for d = min(base · 2^attempt, max).
    pub fn next_delay(&mut self) -> Duration {
        self.next_delay_with(&mut rand::rng())
    }

    /// [`Backoff::next_delay`] drawing its jitter from `rng` (a seeded one
    /// replays: the virtual testbed).
    pub fn next_delay_with(&mut self, rng: &mut impl Rng) -> Duration {
        let factor = 1u32 << self.attempt.min(20);
        self.attempt = self.attempt.saturating_add(1);
        let full = self.base.saturating_mul(factor).min(self.max);
        let half = full / 2;
        half + full.saturating_sub(half).mul_f64(rng.random::<f64>())
    }

    /// Back to `base` after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

impl Default for Backoff {
    /// 50 ms doubling to 2 s: quick on loopback, gentle on a dead controller.
    fn default() -> Backoff {
        Backoff::new(Duration::from_millis(50), Duration::from_secs(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_stay_jittered_and_capped() {
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(5) && delays[0] <= Duration::from_millis(10));
        assert!(delays[3] >= Duration::from_millis(40) && delays[3] <= Duration::from_millis(80));
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(100)));
        assert!(delays[7] >= Duration::from_millis(50));
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(10));
    }
}
