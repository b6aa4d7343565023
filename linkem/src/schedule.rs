//! When each chunk of a byte stream leaves an emulated link direction.
//!
//! The model, per direction:
//! - **rate**: a serial link: one chunk is on the wire at a time, taking
//!   `len · 8 / rate` seconds (a token bucket whose burst is one chunk);
//! - **delay + jitter**: after serialisation the chunk propagates for
//!   `delay ± U(jitter)` (clamped at zero), as netem draws it;
//! - **order**: a TCP byte stream cannot reorder, so a chunk never leaves
//!   before the one ahead of it: `release = max(previous release, …)`;
//! - **loss**: TCP hides a lost segment from the application and pays for
//!   it in time, so with probability `loss` per chunk the chunk is held one
//!   retransmission penalty longer (and, by the order rule, everything
//!   behind it too) — head-of-line blocking, as on a real TCP connection.
//!   This is a model of loss's cost, not a packet-level simulation.
//! - **changes**: a direction may switch to other values at times into the
//!   run (the link profile's schedule): a chunk entering at or after a
//!   change's time is scheduled with the new values.
//! - **a live rate**: a direction that follows the modelled channel
//!   ([`crate::follow`]) takes the rate set on its [`LiveRate`] when a
//!   chunk enters (capped by the direction's own rate, if any), and
//!   reports it as the rate configured for that chunk.
//!
//! The schedule is generic over its time axis: the userspace emulator runs
//! it on tokio's clock, the virtual testbed on its own virtual time.

use crate::fidelity::ChunkPlan;
use crate::follow::LiveRate;
use crate::profile::Direction;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::ops::Add;
use std::time::Duration;

/// A direction's values from a time on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DirectionChange<T> {
    pub from: T,
    pub direction: Direction,
}

#[derive(Debug)]
pub struct Schedule<T> {
    direction: Direction,
    /// Changes still to come, in time order.
    changes: VecDeque<DirectionChange<T>>,
    retransmit: Duration,
    /// Set at run time: the rate chunks enter at, over `direction`'s.
    live: Option<LiveRate>,
    rng: ChaCha8Rng,
    /// When the wire is free for the next chunk.
    wire_free: Option<T>,
    last_release: Option<T>,
}

impl<T: Copy + Ord + Add<Duration, Output = T>> Schedule<T> {
    pub fn new(direction: Direction, retransmit: Duration, seed: u64) -> Schedule<T> {
        Schedule {
            direction,
            changes: VecDeque::new(),
            retransmit,
            live: None,
            rng: ChaCha8Rng::seed_from_u64(seed),
            wire_free: None,
            last_release: None,
        }
    }

    /// The same, switching to each change's values at its time (changes in
    /// time order).
    pub fn with_changes(mut self, changes: impl IntoIterator<Item = DirectionChange<T>>) -> Schedule<T> {
        self.changes = changes.into_iter().collect();
        self
    }

    /// The same, its rate set at run time on `live` (once set; until then
    /// the direction's own).
    pub fn with_live_rate(mut self, live: Option<LiveRate>) -> Schedule<T> {
        self.live = live;
        self
    }

    /// The values in effect now, the live rate applied.
    pub fn direction(&self) -> Direction {
        let mut direction = self.direction;
        if let Some(rate) = self.live.as_ref().and_then(LiveRate::get) {
            direction.rate_bps = Some(direction.rate_bps.map_or(rate, |own| own.min(rate)));
        }
        direction
    }

    /// When `len` bytes that entered the link at `now` leave it.
    pub fn release(&mut self, now: T, len: usize) -> T {
        self.plan(now, len).0
    }

    /// The same, and how the chunk met the link (for the fidelity meter).
    pub fn plan(&mut self, now: T, len: usize) -> (T, ChunkPlan) {
        while let Some(change) = self.changes.front().filter(|c| c.from <= now) {
            self.direction = change.direction;
            self.changes.pop_front();
        }
        let direction = self.direction();
        let wire_busy = self.wire_free.is_some_and(|free| free > now);
        let link_empty = self.last_release.is_none_or(|last| last <= now);
        let start = self.wire_free.map_or(now, |free| free.max(now));
        let serialise = match direction.rate_bps {
            Some(rate) => Duration::from_secs_f64(len as f64 * 8.0 / rate),
            None => Duration::ZERO,
        };
        let sent = start + serialise;
        self.wire_free = Some(sent);
        let mut propagate = direction.delay.as_secs_f64();
        let jitter = direction.jitter.as_secs_f64();
        if jitter > 0.0 {
            propagate = (propagate + self.rng.random_range(-jitter..=jitter)).max(0.0);
        }
        let retransmitted = direction.loss > 0.0 && self.rng.random_bool(direction.loss.min(1.0));
        if retransmitted {
            propagate += self.retransmit.as_secs_f64();
        }
        let natural = sent + Duration::from_secs_f64(propagate);
        let release = self.last_release.map_or(natural, |last| last.max(natural));
        self.last_release = Some(release);
        (release, ChunkPlan { configured: direction, link_empty, wire_busy, held: release > natural, retransmitted })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn delay_shifts_every_chunk() {
        let t0 = Instant::now();
        let mut s = Schedule::new(Direction { delay: ms(20), ..Default::default() }, ms(200), 1);
        assert_eq!(s.release(t0, 100), t0 + ms(20));
        assert_eq!(s.release(t0 + ms(5), 100), t0 + ms(25));
    }

    #[test]
    fn rate_serialises_back_to_back_chunks() {
        let t0 = Instant::now();
        // 8 kbit/s: 1000 bytes take one second.
        let mut s = Schedule::new(Direction { rate_bps: Some(8000.0), ..Default::default() }, ms(200), 1);
        assert_eq!(s.release(t0, 1000), t0 + Duration::from_secs(1));
        assert_eq!(s.release(t0, 500), t0 + ms(1500));
        // An idle wire starts afresh.
        assert_eq!(s.release(t0 + Duration::from_secs(10), 1000), t0 + Duration::from_secs(11));
    }

    #[test]
    fn changes_apply_to_chunks_entering_from_their_time_on() {
        let t0 = Instant::now();
        let fast = Direction { rate_bps: Some(8000.0), ..Default::default() };
        let slow = Direction { rate_bps: Some(800.0), delay: ms(50), ..Default::default() };
        let mut s = Schedule::new(fast, ms(200), 1).with_changes([DirectionChange { from: t0 + ms(5000), direction: slow }]);
        // 100 bytes: 0.1 s at 8 kbit/s, 1 s at 800 bit/s (+ 50 ms delay).
        assert_eq!(s.release(t0, 100), t0 + ms(100));
        assert_eq!(s.release(t0 + ms(4999), 100), t0 + ms(5099));
        assert_eq!(s.direction(), fast);
        assert_eq!(s.release(t0 + ms(6000), 100), t0 + ms(7050));
        assert_eq!(s.direction(), slow);
    }

    #[test]
    fn a_live_rate_applies_to_chunks_entering_after_it_is_set() {
        let t0 = Instant::now();
        let live = LiveRate::new();
        let capped = Direction { rate_bps: Some(16_000.0), delay: ms(10), ..Default::default() };
        let mut s = Schedule::new(capped, ms(200), 1).with_live_rate(Some(live.clone()));
        // Unset: the direction's own 16 kbit/s (100 bytes: 50 ms).
        assert_eq!(s.release(t0, 100), t0 + ms(60));
        live.set(8000.0);
        // 100 bytes at 8 kbit/s: 100 ms, behind the first on the wire.
        let (release, plan) = s.plan(t0 + ms(20), 100);
        assert_eq!(release, t0 + ms(160));
        assert_eq!(plan.configured.rate_bps, Some(8000.0), "the rate in force when it entered");
        // A faster channel is capped by the direction's own rate.
        live.set(1e9);
        let (release, plan) = s.plan(t0 + ms(1000), 100);
        assert_eq!((release, plan.configured.rate_bps), (t0 + ms(1060), Some(16_000.0)));
        // The chunk already on the wire keeps the rate it entered at.
        live.set(800.0);
        let (release, plan) = s.plan(t0 + ms(1001), 10);
        assert_eq!((release, plan.configured.rate_bps), (t0 + ms(1160), Some(800.0)));
    }

    #[test]
    fn jitter_never_reorders_and_stays_in_bounds() {
        let t0 = Instant::now();
        let mut s = Schedule::new(Direction { delay: ms(10), jitter: ms(8), ..Default::default() }, ms(200), 3);
        let mut last = t0;
        let mut spread = (Duration::MAX, Duration::ZERO);
        for i in 0..2000u64 {
            let now = t0 + Duration::from_micros(i * 100);
            let release = s.release(now, 10);
            assert!(release >= last, "chunk {i} overtook the one before it");
            let wait = release - now;
            assert!(wait >= ms(2), "chunk {i} waited {wait:?}");
            spread = (spread.0.min(wait), spread.1.max(wait));
            last = release;
        }
        assert!(spread.1 > ms(15), "jitter never drew a long delay: {spread:?}");
    }

    #[test]
    fn loss_costs_a_retransmission_in_proportion() {
        let t0 = Instant::now();
        let mut s = Schedule::new(Direction { loss: 0.1, ..Default::default() }, ms(200), 9);
        let mut penalised = 0;
        // Chunks far apart, so head-of-line blocking does not mix them up.
        for i in 0..4000u64 {
            let now = t0 + Duration::from_secs(i);
            if s.release(now, 10) - now >= ms(200) {
                penalised += 1;
            }
        }
        assert!((300..500).contains(&penalised), "{penalised} of 4000 chunks penalised at 10 %");
    }
}
