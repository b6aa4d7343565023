//! Link fidelity: did the emulator deliver the link it was asked for?
//! Measured from the run's own traffic at the emulator's boundary: each
//! chunk's real entry and exit times (the clock the emulator sleeps on),
//! set against the link values that were in effect for it, so that a
//! mis-set or mis-behaving emulator shows as a failed verdict instead of
//! going unnoticed (Fogify #8: 100 Mbit/s configured, 750 measured).
//!
//! What is measured, per link direction (running sums, nothing per chunk):
//! - **delay**: the mean one-way time of chunks that found the link empty
//!   (nothing ahead of them to queue behind or be held by) and were not
//!   retransmitted, less their serialisation at the configured rate;
//! - **jitter**: the same chunks' spread around their mean delay, as the
//!   half-width of a uniform draw with their standard deviation
//!   (`√3 · σ`), comparable to the profile's `± jitter`. A host too loaded
//!   to wake the emulator on time shows here first (one wake-up 100 ms
//!   late among 60 chunks adds about 20 ms): that is the emulator missing
//!   its link, and the verdict says so;
//! - **rate**: bytes over busy time, over runs of back-to-back chunks (each
//!   one waited for the wire): the run's bytes after its first chunk over
//!   the time between the first and last chunk's exits, measured to its
//!   last chunk that left when planned (not held behind the one ahead) and
//!   before any retransmission, in spans of at least max(20 × jitter,
//!   20 ms) of serialisation; a run that starts held is left out. Only a backlogged link shows its rate: with too little busy
//!   time the rate is "not measured", never a pass;
//! - **loss**: chunks the emulator retransmitted over chunks sent.
//!
//! The verdict's tolerances are [`Tolerance::STATED`].

use crate::profile::Direction;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How the emulator planned a chunk (from its own schedule state).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkPlan {
    /// The link values in effect for the chunk.
    pub configured: Direction,
    /// No earlier chunk was still on the link when it entered.
    pub link_empty: bool,
    /// It waited for the chunk ahead to finish serialising.
    pub wire_busy: bool,
    /// Its release was held back to the chunk ahead's (order kept).
    pub held: bool,
    pub retransmitted: bool,
}

/// Running sums of one link direction's chunks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectionMeter {
    pub chunks: u64,
    /// Chunks that crossed with a rate limit in effect.
    pub rate_limited_chunks: u64,
    pub retransmitted: u64,
    /// Σ configured loss, and Σ p(1−p): the binomial mean and variance.
    pub loss_expected: f64,
    pub loss_variance: f64,
    pub delay_samples: u64,
    /// Σ achieved delay, Σ configured delay, Σ (achieved − configured)².
    pub delay_sum_s: f64,
    pub configured_delay_sum_s: f64,
    pub delay_error_sq_sum: f64,
    pub configured_jitter_sum_s: f64,
    /// Bytes and busy seconds of the clean back-to-back runs, and what
    /// those bytes take at the configured rates.
    pub rate_bytes: u64,
    pub rate_busy_s: f64,
    pub configured_serialise_s: f64,
}

/// Serialisation of `len` bytes at the direction's rate.
fn serialise_s(direction: &Direction, len: usize) -> f64 {
    direction.rate_bps.map_or(0.0, |rate| len as f64 * 8.0 / rate)
}

/// Each chunk's exit carries its own jitter, so a measured span is off by
/// up to twice the jitter (and by the timer's millisecond): a span counts
/// toward the rate only once its bytes take this long to serialise at the
/// configured rate, which keeps that error to a few percent. (Small
/// messages back to back are spaced by their jitter, not by the rate.)
fn span_floor_s(configured: &Direction) -> f64 {
    (SPAN_OVER_JITTER * configured.jitter.as_secs_f64()).max(MIN_SPAN.as_secs_f64())
}

const SPAN_OVER_JITTER: f64 = 20.0;
const MIN_SPAN: Duration = Duration::from_millis(20);

/// A run of back-to-back chunks being measured: measured up to its last
/// chunk that left when planned (not held behind the one ahead); the bytes
/// after it wait for the next such chunk.
#[derive(Debug, Clone, Copy)]
struct BusyRun<T> {
    measured_to: T,
    pending_bytes: u64,
    pending_serialise_s: f64,
    /// No retransmission so far and it began with a chunk that left when
    /// planned.
    clean: bool,
}

/// One connection direction's run in progress (runs belong to a
/// connection: chunks of different connections do not queue behind each
/// other); its sums go to a [`DirectionMeter`] that the link's connections
/// share.
#[derive(Debug, Clone)]
pub struct ConnectionMeter<T> {
    run: Option<BusyRun<T>>,
}

impl<T> Default for ConnectionMeter<T> {
    fn default() -> Self {
        ConnectionMeter { run: None }
    }
}

impl<T: Copy + Ord + std::ops::Sub<T, Output = Duration>> ConnectionMeter<T> {
    /// A chunk of `len` bytes planned as `plan` entered at `entry` and left
    /// at `exit` (real times of the emulator's clock).
    pub fn record(&mut self, sums: &mut DirectionMeter, plan: &ChunkPlan, len: usize, entry: T, exit: T) {
        let configured = &plan.configured;
        sums.chunks += 1;
        sums.rate_limited_chunks += u64::from(configured.rate_bps.is_some());
        sums.retransmitted += u64::from(plan.retransmitted);
        let p = configured.loss.clamp(0.0, 1.0);
        sums.loss_expected += p;
        sums.loss_variance += p * (1.0 - p);
        if plan.link_empty && !plan.retransmitted {
            let delay = (exit - entry).as_secs_f64() - serialise_s(configured, len);
            let error = delay - configured.delay.as_secs_f64();
            sums.delay_samples += 1;
            sums.delay_sum_s += delay;
            sums.configured_delay_sum_s += configured.delay.as_secs_f64();
            sums.delay_error_sq_sum += error * error;
            sums.configured_jitter_sum_s += configured.jitter.as_secs_f64();
        }
        match (&mut self.run, plan.wire_busy) {
            (Some(run), true) => {
                run.pending_bytes += len as u64;
                run.pending_serialise_s += serialise_s(configured, len);
                run.clean &= !plan.retransmitted && configured.rate_bps.is_some();
                if run.clean && !plan.held && run.pending_serialise_s >= span_floor_s(configured) {
                    sums.rate_bytes += run.pending_bytes;
                    sums.rate_busy_s += (exit - run.measured_to).as_secs_f64();
                    sums.configured_serialise_s += run.pending_serialise_s;
                    *run = BusyRun { measured_to: exit, pending_bytes: 0, pending_serialise_s: 0.0, clean: true };
                }
            }
            _ => {
                let clean = !plan.retransmitted && !plan.held;
                self.run = Some(BusyRun { measured_to: exit, pending_bytes: 0, pending_serialise_s: 0.0, clean });
            }
        }
    }
}

impl DirectionMeter {
    /// Adds another connection's (or device's) sums.
    pub fn merge(&mut self, other: &DirectionMeter) {
        self.chunks += other.chunks;
        self.rate_limited_chunks += other.rate_limited_chunks;
        self.retransmitted += other.retransmitted;
        self.loss_expected += other.loss_expected;
        self.loss_variance += other.loss_variance;
        self.delay_samples += other.delay_samples;
        self.delay_sum_s += other.delay_sum_s;
        self.configured_delay_sum_s += other.configured_delay_sum_s;
        self.delay_error_sq_sum += other.delay_error_sq_sum;
        self.configured_jitter_sum_s += other.configured_jitter_sum_s;
        self.rate_bytes += other.rate_bytes;
        self.rate_busy_s += other.rate_busy_s;
        self.configured_serialise_s += other.configured_serialise_s;
    }
}

/// The names of the device links, as the fidelity figures show them.
pub const CONTROLLER_LINK: &str = "device→controller";
pub const SERVER_LINK: &str = "device→server";

/// A link direction's meter with its name, as the agents record it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkMeasurement {
    /// e.g. `device→controller up`.
    pub link: String,
    pub meter: DirectionMeter,
}

/// `measurements` with the same link direction summed into one, in the
/// order each link first appears: a process's connections, or a run's
/// processes, add up to one row per link direction.
pub fn merge_by_link(measurements: impl IntoIterator<Item = LinkMeasurement>) -> Vec<LinkMeasurement> {
    let mut merged: Vec<LinkMeasurement> = Vec::new();
    for measurement in measurements {
        match merged.iter_mut().find(|m| m.link == measurement.link) {
            Some(m) => m.meter.merge(&measurement.meter),
            None => merged.push(measurement),
        }
    }
    merged
}

/// How far achieved may be from configured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    /// Delay: within max(`delay_abs`, `delay_rel` · configured). The
    /// absolute floor covers the timer: tokio sleeps to a 1 ms wheel and
    /// a loaded host wakes late.
    pub delay_abs: Duration,
    pub delay_rel: f64,
    pub jitter_abs: Duration,
    pub jitter_rel: f64,
    pub rate_rel: f64,
    /// Loss: retransmitted chunks within this many binomial standard
    /// deviations (plus one chunk) of the expected count.
    pub loss_sigmas: f64,
    /// Fewer delay samples than this: delay and jitter not measured.
    pub min_delay_samples: u64,
    /// Less busy time than this: rate not measured.
    pub min_busy: Duration,
}

impl Tolerance {
    pub const STATED: Tolerance = Tolerance {
        delay_abs: Duration::from_millis(2),
        delay_rel: 0.10,
        jitter_abs: Duration::from_millis(2),
        jitter_rel: 0.25,
        rate_rel: 0.10,
        loss_sigmas: 3.0,
        min_delay_samples: 20,
        min_busy: Duration::from_millis(100),
    };

    /// The tolerance in words, for the summary.
    pub fn describe(&self) -> String {
        format!(
            "delay within max({} ms, {:.0} %), jitter within max({} ms, {:.0} %), rate within {:.0} %, loss within {} σ (binomial) + 1 chunk",
            self.delay_abs.as_millis(),
            self.delay_rel * 100.0,
            self.jitter_abs.as_millis(),
            self.jitter_rel * 100.0,
            self.rate_rel * 100.0,
            self.loss_sigmas
        )
    }
}

/// A direction's values; `None`: not measured (too little traffic of the
/// kind it needs) or, configured, not limited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkFigures {
    pub delay_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub rate_mbit: Option<f64>,
    pub loss: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FidelityVerdict {
    pub link: String,
    pub chunks: u64,
    pub configured: LinkFigures,
    pub achieved: LinkFigures,
    pub ok: bool,
    /// What failed, or what was not measured and why.
    pub reason: String,
}

/// A check's outcome.
enum Check {
    Pass,
    Fail(String),
    NotMeasured(String),
}

/// The verdict on `measurement` against `tolerance`.
pub fn verdict(measurement: &LinkMeasurement, tolerance: &Tolerance) -> FidelityVerdict {
    let m = &measurement.meter;
    let (configured, achieved, checks) = figures_and_checks(m, tolerance);
    let failures: Vec<String> = checks.iter().filter_map(|c| if let Check::Fail(why) = c { Some(why.clone()) } else { None }).collect();
    let unmeasured: Vec<String> =
        checks.iter().filter_map(|c| if let Check::NotMeasured(why) = c { Some(why.clone()) } else { None }).collect();
    let reason = match (failures.is_empty(), unmeasured.is_empty()) {
        (true, true) => "within tolerance".to_string(),
        (true, false) => format!("within tolerance where measured; {}", unmeasured.join("; ")),
        (false, _) => failures.join("; "),
    };
    FidelityVerdict { link: measurement.link.clone(), chunks: m.chunks, configured, achieved, ok: failures.is_empty(), reason }
}

/// Configured and achieved figures, and each quantity's check.
fn figures_and_checks(m: &DirectionMeter, tolerance: &Tolerance) -> (LinkFigures, LinkFigures, Vec<Check>) {
    let mut configured = LinkFigures::default();
    let mut achieved = LinkFigures::default();
    let mut checks = Vec::new();
    if m.delay_samples >= tolerance.min_delay_samples.max(1) {
        let n = m.delay_samples as f64;
        let (want, got) = (m.configured_delay_sum_s / n, m.delay_sum_s / n);
        let mean_error = got - want;
        let spread = (m.delay_error_sq_sum / n - mean_error * mean_error).max(0.0).sqrt() * 3f64.sqrt();
        let want_jitter = m.configured_jitter_sum_s / n;
        (configured.delay_ms, achieved.delay_ms) = (Some(want * 1e3), Some(got * 1e3));
        (configured.jitter_ms, achieved.jitter_ms) = (Some(want_jitter * 1e3), Some(spread * 1e3));
        checks.push(within("delay", got, want, tolerance.delay_abs.as_secs_f64().max(tolerance.delay_rel * want), 1e3, "ms"));
        let jitter_band = tolerance.jitter_abs.as_secs_f64().max(tolerance.jitter_rel * want_jitter);
        checks.push(within("jitter", spread, want_jitter, jitter_band, 1e3, "ms"));
    } else {
        checks.push(Check::NotMeasured(format!("delay and jitter not measured ({} chunks found the link empty)", m.delay_samples)));
    }
    if m.rate_limited_chunks == 0 {
        // An unlimited link: no rate to check.
    } else if m.configured_serialise_s > 0.0 && m.rate_busy_s >= tolerance.min_busy.as_secs_f64() {
        let bits = m.rate_bytes as f64 * 8.0;
        let (want, got) = (bits / m.configured_serialise_s, bits / m.rate_busy_s);
        (configured.rate_mbit, achieved.rate_mbit) = (Some(want / 1e6), Some(got / 1e6));
        checks.push(within("rate", got, want, tolerance.rate_rel * want, 1e-6, "Mbit/s"));
    } else {
        let busy_ms = m.rate_busy_s * 1e3;
        checks.push(Check::NotMeasured(format!("rate not measured (backlogged for {busy_ms:.0} ms only)")));
    }
    if m.chunks > 0 {
        let n = m.chunks as f64;
        (configured.loss, achieved.loss) = (Some(m.loss_expected / n), Some(m.retransmitted as f64 / n));
        let band = tolerance.loss_sigmas * m.loss_variance.sqrt() + 1.0;
        let off = (m.retransmitted as f64 - m.loss_expected).abs();
        checks.push(if off <= band {
            Check::Pass
        } else {
            Check::Fail(format!("loss {} of {} chunks, expected {:.1} ± {band:.1}", m.retransmitted, m.chunks, m.loss_expected))
        });
    }
    (configured, achieved, checks)
}

/// `got` within `band` of `want` (shown scaled by `scale` in `unit`).
fn within(what: &str, got: f64, want: f64, band: f64, scale: f64, unit: &str) -> Check {
    if (got - want).abs() <= band {
        Check::Pass
    } else {
        Check::Fail(format!("{what} {:.2} {unit} against {:.2} ± {:.2}", got * scale, want * scale, band * scale))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ms(v: f64) -> Duration {
        Duration::from_secs_f64(v / 1e3)
    }

    fn plan(configured: Direction) -> ChunkPlan {
        ChunkPlan { configured, link_empty: true, wire_busy: false, held: false, retransmitted: false }
    }

    /// `n` chunks of 1000 bytes on an idle link, each taking `one_way(i)`.
    fn idle_chunks(configured: Direction, n: usize, one_way: impl Fn(usize) -> Duration) -> LinkMeasurement {
        let (mut meter, mut sums) = (ConnectionMeter::<Duration>::default(), DirectionMeter::default());
        for i in 0..n {
            let entry = Duration::from_secs(i as u64);
            meter.record(&mut sums, &plan(configured), 1000, entry, entry + one_way(i));
        }
        LinkMeasurement { link: "test up".into(), meter: sums }
    }

    #[test]
    fn delay_and_jitter_are_measured_from_chunk_times() {
        let configured = Direction { delay: ms(20.0), jitter: ms(5.0), rate_bps: Some(8e6), ..Default::default() };
        // 1 ms of serialisation (1000 bytes at 8 Mbit/s), then 20 ms ± a
        // uniform-looking spread from -5 to +5 ms.
        let m = idle_chunks(configured, 101, |i| ms(1.0 + 20.0 + (i as f64 / 10.0 - 5.0)));
        let v = verdict(&m, &Tolerance::STATED);
        assert!(v.ok, "{v:?}");
        assert!((v.achieved.delay_ms.unwrap() - 20.0).abs() < 1e-6);
        let jitter = v.achieved.jitter_ms.unwrap();
        assert!((jitter - 5.0).abs() < 0.2, "jitter {jitter}");
        assert!(v.reason.contains("rate not measured"), "{}", v.reason);
    }

    #[test]
    fn delay_passes_at_the_tolerance_edge_and_fails_past_it() {
        // 40 ms configured: the band is max(2 ms, 4 ms) = 4 ms.
        let configured = Direction { delay: ms(40.0), ..Default::default() };
        let at_edge = verdict(&idle_chunks(configured, 30, |_| ms(43.9)), &Tolerance::STATED);
        assert!(at_edge.ok, "{at_edge:?}");
        let past = verdict(&idle_chunks(configured, 30, |_| ms(44.1)), &Tolerance::STATED);
        assert!(!past.ok && past.reason.contains("delay 44.10 ms against 40.00 ± 4.00"), "{past:?}");
        let too_few = verdict(&idle_chunks(configured, 5, |_| ms(80.0)), &Tolerance::STATED);
        assert!(too_few.ok && too_few.achieved.delay_ms.is_none() && too_few.reason.contains("not measured"), "{too_few:?}");
    }

    #[test]
    fn rate_is_bytes_over_busy_time_of_back_to_back_runs() {
        let configured = Direction { rate_bps: Some(8e6), ..Default::default() };
        let run = |spacing_ms: f64| {
            let (mut meter, mut sums) = (ConnectionMeter::<Duration>::default(), DirectionMeter::default());
            // 200 chunks of 1000 bytes queued at once; each leaves
            // `spacing` after the one before.
            for i in 0..200 {
                let busy = ChunkPlan { wire_busy: i > 0, link_empty: i == 0, ..plan(configured) };
                meter.record(&mut sums, &busy, 1000, Duration::ZERO, ms(spacing_ms * (i + 1) as f64));
            }
                verdict(&LinkMeasurement { link: "up".into(), meter: sums }, &Tolerance::STATED)
        };
        // 1000 bytes at 8 Mbit/s: 1 ms each.
        let exact = run(1.0);
        assert!(exact.ok && (exact.achieved.rate_mbit.unwrap() - 8.0).abs() < 1e-9, "{exact:?}");
        assert!(run(1.105).ok, "9.5 % slow is inside 10 %");
        let slow = run(1.2);
        assert!(!slow.ok && slow.reason.starts_with("rate"), "{slow:?}");
    }

    #[test]
    fn a_rate_that_changes_mid_run_is_judged_against_each_chunks_own() {
        // 100 chunks of 1000 bytes at 8 Mbit/s (1 ms each), then 100 at
        // 4 Mbit/s (2 ms each), back to back: a link following the channel.
        let run = |second_half_ms: f64| {
            let (mut meter, mut sums) = (ConnectionMeter::<Duration>::default(), DirectionMeter::default());
            let mut exit = 0.0;
            for i in 0..200 {
                let rate = if i < 100 { 8e6 } else { 4e6 };
                exit += if i < 100 { 1.0 } else { second_half_ms };
                let configured = Direction { rate_bps: Some(rate), ..Default::default() };
                let busy = ChunkPlan { wire_busy: i > 0, link_empty: i == 0, ..plan(configured) };
                meter.record(&mut sums, &busy, 1000, Duration::ZERO, ms(exit));
            }
            verdict(&LinkMeasurement { link: "device→server up".into(), meter: sums }, &Tolerance::STATED)
        };
        let followed = run(2.0);
        assert!(followed.ok, "{followed:?}");
        // Configured: the bytes over their serialisation at the rate in
        // force for each, between the two rates.
        let configured = followed.configured.rate_mbit.unwrap();
        assert!(configured > 4.0 && configured < 8.0, "{followed:?}");
        assert!((followed.achieved.rate_mbit.unwrap() - configured).abs() < 0.1, "{followed:?}");
        // An emulator that kept the first rate fails, as does one slower
        // than asked.
        let kept = run(1.0);
        assert!(!kept.ok && kept.reason.starts_with("rate"), "{kept:?}");
        let slow = run(2.6);
        assert!(!slow.ok && slow.reason.starts_with("rate"), "{slow:?}");
    }

    #[test]
    fn a_run_is_measured_up_to_its_retransmission() {
        let configured = Direction { rate_bps: Some(8e6), loss: 0.5, ..Default::default() };
        let (mut meter, mut sums) = (ConnectionMeter::<Duration>::default(), DirectionMeter::default());
        for i in 0..200 {
            let lost = ChunkPlan { wire_busy: i > 0, link_empty: i == 0, retransmitted: i == 100, ..plan(configured) };
            meter.record(&mut sums, &lost, 1000, Duration::ZERO, ms((i + 1) as f64));
        }
        // Spans of 20 chunks (20 ms) after the first, up to chunk 80;
        // nothing from the lost one on.
        assert_eq!((sums.rate_bytes, sums.retransmitted), (80_000, 1));
        assert!((sums.rate_busy_s - 0.080).abs() < 1e-9);
    }

    #[test]
    fn loss_is_judged_in_a_binomial_band() {
        let configured = Direction { loss: 0.01, ..Default::default() };
        let with_lost = |lost: usize| {
            let (mut meter, mut sums) = (ConnectionMeter::<Duration>::default(), DirectionMeter::default());
            for i in 0..10_000 {
                let p = ChunkPlan { retransmitted: i < lost, ..plan(configured) };
                meter.record(&mut sums, &p, 10, Duration::from_secs(i as u64), Duration::from_secs(i as u64));
            }
            verdict(&LinkMeasurement { link: "up".into(), meter: sums }, &Tolerance::STATED)
        };
        // Expected 100, σ = √99 ≈ 9.95: the band is 100 ± 30.8.
        assert!(with_lost(130).ok && with_lost(70).ok);
        let doubled = with_lost(200);
        assert!(!doubled.ok && doubled.reason.starts_with("loss 200 of 10000"), "{doubled:?}");
        assert_eq!(doubled.achieved.loss, Some(0.02));
    }

    #[test]
    fn merged_meters_add_up() {
        let configured = Direction { delay: ms(10.0), ..Default::default() };
        let a = idle_chunks(configured, 10, |_| ms(10.0));
        let mut sum = a.meter.clone();
        sum.merge(&a.meter);
        assert_eq!(sum.delay_samples, 20);
        assert!(verdict(&LinkMeasurement { link: "x".into(), meter: sum }, &Tolerance::STATED).achieved.delay_ms.is_some());
    }
}
