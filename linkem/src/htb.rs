//! Links that follow the channel, shaped by the kernel with HTB: the
//! decisions and command lines, with no I/O ([`crate::kernel`] carries them
//! out through one `tc -batch` child).
//!
//! A device process's interface gets an HTB root whose default class
//! passes everything unshaped (the controller's traffic), and one class per
//! (device, server) link, selected by a u32 filter on the server's address
//! and the source port of the device's own connection to it: the process
//! binds each such connection to a port of its own ([`KernelLink`]), so the
//! kernel can tell one device's link from another's. Each slot a link's
//! class takes the slot's rate (`class change`, only when the rate
//! changed: [`RateBook`]). HTB exists on kernels without netem; where netem
//! exists too, a netem leaf under each class adds the profile's delay,
//! jitter and loss.
//!
//! Fidelity ([`KernelMeter`]) is measured from the run's own traffic: the
//! classes' counters (`tc -s class show`) are read every few milliseconds
//! and just before each change, and a link's bytes between two readings
//! are judged against the rate in force between them when the first
//! reading found at least as many bytes queued in its class as that rate
//! carries in the interval (and in [`QUEUE_MARGIN`]): then the class never
//! ran empty in it (the rate bound it throughout). Bytes that entered the
//! class within a netem leaf's delay and jitter may still be held by it,
//! so they do not count as queued for the rate. Readings that merely both find packets queued
//! would count idle gaps between them (a sender that did not refill the
//! queue in time), measured as a link ~10 % too slow on a loaded host.
//! HTB counts frames with their
//! Ethernet header, so the rate is the frames', not the payload's.

use crate::fidelity::{DirectionMeter, LinkMeasurement};
use crate::profile::Direction;
use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::Duration;

/// Links get source ports from here up: below Linux's default ephemeral
/// range (32768–60999), so no port the kernel picks for another connection
/// of the namespace is one of theirs.
pub const FIRST_SOURCE_PORT: u16 = 20_000;
/// At most this many links on one interface (their ports stay below the
/// ephemeral range, their class minors below 0xffff).
pub const MAX_LINKS: u16 = 10_000;
/// The class of everything no filter picks (the controller's traffic).
const DEFAULT_MINOR: u16 = 1;
/// Link i's class is 1:(FIRST_LINK_MINOR + i).
const FIRST_LINK_MINOR: u16 = 0x10;
/// The default class's rate, and a link's before its first slot: faster
/// than a veth carries, so not shaped.
pub const UNSHAPED_BPS: u64 = 10_000_000_000;
/// HTB's own default bucket at low rates, given so that a rate change does
/// not re-derive it: a bigger bucket lets a link idle and then run above
/// its rate.
const BURST: &str = "1600b";
/// Only sibling classes borrowing from each other use the quantum, and with
/// ceil = rate none does; fixed so that HTB does not warn of the default it
/// derives from a high rate.
const QUANTUM: &str = "1514";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HtbError {
    #[error("interface `{0}` is not a Linux interface name (1–15 characters, no spaces or `/`)")]
    Interface(String),
    #[error("more than {MAX_LINKS} links on one interface")]
    TooManyLinks,
}

/// One (device, server) link's class and the source port its connection
/// must be bound to for the class's filter to pick it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelLink {
    pub minor: u16,
    pub source_port: u16,
}

/// The tc batch lines of one interface's HTB tree.
#[derive(Debug, Clone)]
pub struct HtbPlan {
    iface: String,
    /// The netem leaf's delay, jitter and loss, where netem exists.
    leaf: Option<Direction>,
    links: u16,
}

impl HtbPlan {
    pub fn new(iface: &str, leaf: Option<Direction>) -> Result<HtbPlan, HtbError> {
        let valid = !iface.is_empty() && iface.len() <= 15 && !iface.contains(|c: char| c.is_whitespace() || c == '/');
        if !valid {
            return Err(HtbError::Interface(iface.to_string()));
        }
        Ok(HtbPlan { iface: iface.to_string(), leaf, links: 0 })
    }

    /// The root and its default class (replacing whatever root was there).
    pub fn setup(&self) -> Vec<String> {
        let mut lines = vec![format!("qdisc replace dev {} root handle 1: htb default {DEFAULT_MINOR:x}", self.iface)];
        lines.push(self.class_line("add", DEFAULT_MINOR, UNSHAPED_BPS));
        lines.extend(self.leaf_line(DEFAULT_MINOR));
        lines
    }

    /// A new link to `server`: its class (unshaped until its first rate),
    /// leaf and filter.
    pub fn add_link(&mut self, server: Ipv4Addr) -> Result<(KernelLink, Vec<String>), HtbError> {
        if self.links >= MAX_LINKS {
            return Err(HtbError::TooManyLinks);
        }
        let link = KernelLink { minor: FIRST_LINK_MINOR + self.links, source_port: FIRST_SOURCE_PORT + self.links };
        self.links += 1;
        let mut lines = vec![self.class_line("add", link.minor, UNSHAPED_BPS)];
        lines.extend(self.leaf_line(link.minor));
        lines.push(format!(
            "filter add dev {} parent 1: protocol ip prio 1 u32 match ip dst {server}/32 match ip sport {} 0xffff flowid 1:{:x}",
            self.iface, link.source_port, link.minor
        ));
        Ok((link, lines))
    }

    /// `link` at `bps` from now on.
    pub fn change(&self, link: KernelLink, bps: u64) -> String {
        self.class_line("change", link.minor, bps)
    }

    /// Every class's counters.
    pub fn show(&self) -> String {
        format!("class show dev {}", self.iface)
    }

    /// How many HTB classes [`HtbPlan::show`] lists.
    pub fn classes(&self) -> usize {
        1 + usize::from(self.links)
    }

    pub fn links(&self) -> u16 {
        self.links
    }

    fn class_line(&self, verb: &str, minor: u16, bps: u64) -> String {
        let iface = &self.iface;
        format!("class {verb} dev {iface} parent 1: classid 1:{minor:x} htb rate {bps}bit ceil {bps}bit burst {BURST} cburst {BURST} quantum {QUANTUM}")
    }

    /// The netem leaf under class `minor`, its handle one above the minor
    /// (never the root's 1:).
    fn leaf_line(&self, minor: u16) -> Option<String> {
        let leaf = self.leaf.as_ref()?;
        let (parent, handle) = (format!("1:{minor:x}"), format!("{:x}:", minor + 1));
        Some(crate::netem::leaf_args(&self.iface, &parent, &handle, leaf).join(" "))
    }
}

/// The rate each link's class was last given, so that a slot writes only
/// the rates that changed.
#[derive(Debug, Default)]
pub struct RateBook {
    written: HashMap<KernelLink, u64>,
}

impl RateBook {
    /// The changes to write for `wanted` (each link's rate now, in bit/s):
    /// those whose whole bit/s differ from what the class has, now counted
    /// as written. A rate that is not a positive finite number changes
    /// nothing (the one in force stays).
    pub fn changes(&mut self, wanted: impl IntoIterator<Item = (KernelLink, f64)>) -> Vec<(KernelLink, u64)> {
        let mut changes = Vec::new();
        for (link, bps) in wanted {
            if !(bps.is_finite() && bps >= 1.0) {
                continue;
            }
            let bps = bps.round() as u64;
            if self.written.insert(link, bps) != Some(bps) {
                changes.push((link, bps));
            }
        }
        changes.sort_by_key(|(link, _)| link.minor);
        changes
    }
}

/// One HTB class's counters from `tc -s class show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassStats {
    pub minor: u16,
    pub bytes: u64,
    pub packets: u64,
    /// Bytes queued in the class when read.
    pub backlog_bytes: u64,
}

/// Reads `tc -s class show` output a line at a time; a class's block ends
/// at its `backlog` line. Blocks of other kinds of class are skipped.
#[derive(Debug, Default)]
pub struct StatsParser {
    block: Option<ClassStats>,
}

impl StatsParser {
    /// The class whose block `line` completes, if it does.
    pub fn line(&mut self, line: &str) -> Option<ClassStats> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["class", "htb", id, ..] => {
                let minor = id.split_once(':').and_then(|(_, minor)| u16::from_str_radix(minor, 16).ok());
                self.block = minor.map(|minor| ClassStats { minor, ..ClassStats::default() });
            }
            ["class", ..] => self.block = None,
            ["Sent", bytes, "bytes", packets, "pkt", ..] => {
                if let (Some(block), Ok(bytes), Ok(packets)) = (&mut self.block, bytes.parse(), packets.parse()) {
                    (block.bytes, block.packets) = (bytes, packets);
                }
            }
            ["backlog", bytes, ..] => {
                if let (Some(mut block), Some(bytes)) = (self.block.take(), size(bytes)) {
                    block.backlog_bytes = bytes;
                    return Some(block);
                }
            }
            _ => {}
        }
        None
    }
}

/// A size as tc prints it: `3028b`, or whole `Kb` / `Mb` (of 1024).
fn size(text: &str) -> Option<u64> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit() && c != '.')?);
    let scale = match unit {
        "b" => 1.0,
        "Kb" => 1024.0,
        "Mb" => 1024.0 * 1024.0,
        _ => return None,
    };
    number.parse::<f64>().ok().map(|n| (n * scale).round() as u64)
}

/// An interval counts toward a link's rate when the queue ready at its
/// start lasts at least this long at the configured rate (or the whole
/// interval, when longer): a few readings' worth at the 2 ms cadence.
const QUEUE_MARGIN: Duration = Duration::from_millis(5);

/// One link's rates and its last reading.
#[derive(Debug, Default)]
struct ClassTrack {
    /// (from, bit/s), in time order: the rates in force since the last
    /// reading (the one in force then first).
    rates: Vec<(Duration, f64)>,
    /// The last reading and how many of its queued bytes were ready to go.
    last: Option<(Duration, ClassStats, u64)>,
    /// (read at, bytes that ever entered the class), back to the last
    /// reading at least a hold ago.
    arrivals: VecDeque<(Duration, u64)>,
    sums: DirectionMeter,
}

impl ClassTrack {
    /// Bits the configured rates carry from `from` to `to`; none when no
    /// rate was in force at `from`.
    fn bits_between(&self, from: Duration, to: Duration) -> Option<f64> {
        if self.rates.first().is_none_or(|&(at, _)| at > from) {
            return None;
        }
        let mut bits = 0.0;
        for (i, &(at, bps)) in self.rates.iter().enumerate() {
            let end = self.rates.get(i + 1).map_or(to, |&(next, _)| next).min(to);
            let start = at.max(from);
            if end > start {
                bits += bps * (end - start).as_secs_f64();
            }
        }
        Some(bits)
    }

    /// The bytes queued at reading `stats` that wait for the rate alone: the
    /// backlog less what entered the class within the last `hold` (a netem
    /// leaf may still hold those for their delay, which the rate is not to
    /// blame for). Without a reading a hold old, none (it cannot be told).
    fn ready_bytes(&mut self, at: Duration, stats: &ClassStats, hold: Duration) -> u64 {
        if hold.is_zero() {
            return stats.backlog_bytes;
        }
        self.arrivals.push_back((at, stats.bytes + stats.backlog_bytes));
        let Some(horizon) = at.checked_sub(hold) else { return 0 };
        while self.arrivals.get(1).is_some_and(|&(t, _)| t <= horizon) {
            self.arrivals.pop_front();
        }
        match self.arrivals.front() {
            Some(&(t, before)) if t <= horizon => {
                let held = (stats.bytes + stats.backlog_bytes).saturating_sub(before);
                stats.backlog_bytes.saturating_sub(held)
            }
            _ => 0,
        }
    }

    /// Forgets the rates before the one in force at `at`.
    fn forget_before(&mut self, at: Duration) {
        let in_force = self.rates.iter().rposition(|&(from, _)| from <= at).unwrap_or(0);
        self.rates.drain(..in_force);
    }
}

/// The links' fidelity from their classes' counters: each reading is
/// written to tc at a known time (in order), its classes come back in
/// order, and the rates set are known; see the module's words.
#[derive(Debug, Default)]
pub struct KernelMeter {
    /// How long a netem leaf may hold a packet (its delay and jitter; zero
    /// without one).
    hold: Duration,
    /// When each reading not yet back was asked for, and how many classes it lists.
    asked: VecDeque<(Duration, usize)>,
    reading: Vec<ClassStats>,
    links: HashMap<u16, ClassTrack>,
    asked_count: u64,
    done_count: u64,
}

impl KernelMeter {
    /// A meter for classes whose netem leaf holds packets up to `hold`.
    pub fn new(hold: Duration) -> KernelMeter {
        KernelMeter { hold, ..KernelMeter::default() }
    }

    /// `link` runs at `bps` from `at` (the rate meant, which is what the
    /// link is judged against).
    pub fn rate_set(&mut self, link: KernelLink, at: Duration, bps: f64) {
        self.links.entry(link.minor).or_default().rates.push((at, bps));
    }

    /// A reading of `classes` classes was asked for at `at`.
    pub fn reading_asked(&mut self, at: Duration, classes: usize) {
        self.asked.push_back((at, classes));
        self.asked_count += 1;
    }

    /// Whether a periodic reading would tell anything: some link has a
    /// rate, and no reading is still to come back (tc keeps up).
    pub fn wants_reading(&self) -> bool {
        self.asked.is_empty() && !self.links.is_empty()
    }

    /// Readings asked for so far, and come back so far.
    pub fn readings_asked(&self) -> u64 {
        self.asked_count
    }

    pub fn readings_done(&self) -> u64 {
        self.done_count
    }

    /// A class of the oldest reading outstanding came back.
    pub fn class_read(&mut self, stats: ClassStats) {
        self.reading.push(stats);
        let Some(&(at, classes)) = self.asked.front() else {
            self.reading.clear();
            return;
        };
        if self.reading.len() >= classes {
            self.asked.pop_front();
            self.done_count += 1;
            let reading = std::mem::take(&mut self.reading);
            self.read(at, &reading);
        }
    }

    fn read(&mut self, at: Duration, reading: &[ClassStats]) {
        for &stats in reading {
            let Some(track) = self.links.get_mut(&stats.minor) else { continue };
            let ready = track.ready_bytes(at, &stats, self.hold);
            if let Some((then, before, ready_before)) = track.last.replace((at, stats, ready)) {
                let packets = stats.packets.saturating_sub(before.packets);
                let sums = &mut track.sums;
                sums.chunks += packets;
                sums.rate_limited_chunks += packets;
                // The queue ready at the first reading outlasts the interval,
                // and at least QUEUE_MARGIN: which short intervals count then
                // does not hang on their measured length, whose error (when
                // tc ran each reading) would bias the rate.
                let needed = track.bits_between(then, at.max(then + QUEUE_MARGIN)).unwrap_or(f64::INFINITY);
                let bound = at > then && ready_before as f64 * 8.0 >= needed;
                if let Some(bits) = track.bits_between(then, at).filter(|&bits| bound && bits > 0.0) {
                    let (bytes, busy_s) = (stats.bytes.saturating_sub(before.bytes), (at - then).as_secs_f64());
                    track.sums.rate_bytes += bytes;
                    track.sums.rate_busy_s += busy_s;
                    track.sums.configured_serialise_s += bytes as f64 * 8.0 * busy_s / bits;
                }
            }
            track.forget_before(at);
        }
    }

    /// Every link's sums together, named `{name} up`.
    pub fn measurement(&self, name: &str) -> LinkMeasurement {
        let mut meter = DirectionMeter::default();
        for track in self.links.values() {
            meter.merge(&track.sums);
        }
        LinkMeasurement { link: format!("{name} up"), meter }
    }

    /// One link's sums (none before its first rate).
    pub fn link_meter(&self, link: KernelLink) -> Option<DirectionMeter> {
        self.links.get(&link.minor).map(|track| track.sums.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fidelity::{Tolerance, verdict};

    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

    #[test]
    fn the_tree_has_a_default_class_and_a_filtered_class_per_link() {
        let mut plan = HtbPlan::new("eth0", None).unwrap();
        assert_eq!(
            plan.setup(),
            [
                "qdisc replace dev eth0 root handle 1: htb default 1",
                "class add dev eth0 parent 1: classid 1:1 htb rate 10000000000bit ceil 10000000000bit burst 1600b cburst 1600b quantum 1514",
            ]
        );
        let (first, _) = plan.add_link(SERVER).unwrap();
        let (second, lines) = plan.add_link(Ipv4Addr::new(10, 77, 0, 3)).unwrap();
        assert_eq!(first, KernelLink { minor: 0x10, source_port: 20_000 });
        assert_eq!(second, KernelLink { minor: 0x11, source_port: 20_001 });
        assert_eq!(lines.len(), 2, "a class and a filter, no leaf without netem");
        assert!(lines[0].starts_with("class add dev eth0 parent 1: classid 1:11 htb rate 10000000000bit"), "{lines:?}");
        assert_eq!(lines[1], "filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst 10.77.0.3/32 match ip sport 20001 0xffff flowid 1:11");
        assert_eq!(
            plan.change(second, 2_500_000),
            "class change dev eth0 parent 1: classid 1:11 htb rate 2500000bit ceil 2500000bit burst 1600b cburst 1600b quantum 1514"
        );
        assert_eq!((plan.show().as_str(), plan.classes()), ("class show dev eth0", 3));
    }

    #[test]
    fn with_netem_each_class_gets_a_leaf_with_the_delay_jitter_and_loss() {
        let up = Direction { delay: Duration::from_millis(5), loss: 0.01, rate_bps: Some(1e6), ..Direction::default() };
        let mut plan = HtbPlan::new("eth0", Some(up)).unwrap();
        assert_eq!(plan.setup()[2], "qdisc add dev eth0 parent 1:1 handle 2: netem limit 100000 delay 5000us loss 1%");
        let (_, lines) = plan.add_link(SERVER).unwrap();
        assert_eq!(lines[1], "qdisc add dev eth0 parent 1:10 handle 11: netem limit 100000 delay 5000us loss 1%");
    }

    #[test]
    fn bad_interfaces_and_too_many_links_are_refused() {
        for bad in ["", "eth0 root", "a/b", "sixteen_chars_xx"] {
            assert_eq!(HtbPlan::new(bad, None).unwrap_err(), HtbError::Interface(bad.into()), "{bad:?}");
        }
        let mut plan = HtbPlan::new("eth0", None).unwrap();
        for _ in 0..MAX_LINKS {
            plan.add_link(SERVER).unwrap();
        }
        assert_eq!(plan.add_link(SERVER).unwrap_err(), HtbError::TooManyLinks);
        let last = KernelLink { minor: FIRST_LINK_MINOR + MAX_LINKS - 1, source_port: FIRST_SOURCE_PORT + MAX_LINKS - 1 };
        assert!(last.source_port < 32_768, "below the ephemeral ports");
    }

    #[test]
    fn a_slot_writes_only_the_rates_that_changed() {
        let (a, b) = (KernelLink { minor: 0x10, source_port: 20_000 }, KernelLink { minor: 0x11, source_port: 20_001 });
        let mut book = RateBook::default();
        assert_eq!(book.changes([(b, 2e6), (a, 1e6)]), [(a, 1_000_000), (b, 2_000_000)]);
        assert_eq!(book.changes([(a, 1e6 + 0.2), (b, 3e6)]), [(b, 3_000_000)], "a rate within half a bit/s is the same");
        assert_eq!(book.changes([(a, f64::NAN), (b, 0.0), (a, -1.0)]), [], "not a rate");
        assert_eq!(book.changes([(a, 1e6)]), []);
    }

    #[test]
    fn class_blocks_are_read_from_tc_output() {
        let text = "class htb 1:1 root leaf 2: prio 0 rate 10Gbit ceil 10Gbit burst 1600b cburst 1600b \n Sent 980 bytes 7 pkt (dropped 0, overlimits 0 requeues 0) \n backlog 0b 0p requeues 0\n lended: 7 borrowed: 0 giants: 0\n tokens: 20 ctokens: 20\n\nclass netem 2:1 parent 2: \n Sent 1 bytes 1 pkt (dropped 0, overlimits 0 requeues 0) \n backlog 0b 0p requeues 0\nclass htb 1:1a root prio 0 rate 20Mbit ceil 20Mbit burst 1600b cburst 1600b \n Sent 123456 bytes 99 pkt (dropped 0, overlimits 40 requeues 0) \n backlog 3028b 2p requeues 0\n";
        let mut parser = StatsParser::default();
        let blocks: Vec<ClassStats> = text.lines().filter_map(|line| parser.line(line)).collect();
        assert_eq!(
            blocks,
            [
                ClassStats { minor: 1, bytes: 980, packets: 7, backlog_bytes: 0 },
                ClassStats { minor: 0x1a, bytes: 123_456, packets: 99, backlog_bytes: 3028 },
            ]
        );
    }

    /// Readings every 100 ms of a link backlogged throughout whose rate
    /// changes every reading (1, 2, 3, 1, 2, 3 … Mbit/s), delivering
    /// `delivered` of each interval's rate.
    fn followed(delivered: f64) -> (crate::fidelity::FidelityVerdict, KernelMeter) {
        let link = KernelLink { minor: 0x10, source_port: 20_000 };
        let mut meter = KernelMeter::default();
        // 3 Mbit/s carries 37 500 bytes in 100 ms.
        let mut stats = ClassStats { minor: 0x10, bytes: 0, packets: 0, backlog_bytes: 40_000 };
        for i in 0..40u32 {
            let at = Duration::from_millis(100 * u64::from(i));
            meter.reading_asked(at, 2);
            meter.class_read(ClassStats { minor: 1, ..ClassStats::default() });
            meter.class_read(stats);
            let bps = 1e6 * f64::from(1 + i % 3);
            meter.rate_set(link, at, bps);
            stats.bytes += (bps * 0.1 / 8.0 * delivered) as u64;
            stats.packets += 10;
        }
        (verdict(&meter.measurement("device→server"), &Tolerance::STATED), meter)
    }

    #[test]
    fn a_link_is_judged_against_the_rate_in_force_in_each_interval() {
        let (exact, _) = followed(1.0);
        assert!(exact.ok, "{exact:?}");
        assert!((exact.achieved.rate_mbit.unwrap() - exact.configured.rate_mbit.unwrap()).abs() < 1e-3, "{exact:?}");
        assert_eq!(exact.chunks, 380, "counted from the first reading after the first rate");
        // A class given half the rate it was meant to have fails.
        let (half, meter) = followed(0.5);
        let link = meter.link_meter(KernelLink { minor: 0x10, source_port: 20_000 }).unwrap();
        assert_eq!(link, meter.measurement("x").meter, "one link: its own sums are the whole");
        assert!(!half.ok && half.reason.starts_with("rate"), "{half:?}");
    }

    #[test]
    fn intervals_whose_queue_could_run_dry_or_had_no_rate_are_not_judged() {
        let link = KernelLink { minor: 0x10, source_port: 20_000 };
        let mut meter = KernelMeter::default();
        let read = |meter: &mut KernelMeter, ms: u64, bytes: u64, backlog_bytes: u64| {
            meter.reading_asked(Duration::from_millis(ms), 1);
            meter.class_read(ClassStats { minor: 0x10, bytes, packets: 0, backlog_bytes });
        };
        read(&mut meter, 0, 0, 50_000); // before any rate: unshaped
        // 1 Mbit/s: 12 500 bytes in each 100 ms.
        meter.rate_set(link, Duration::from_millis(100), 1e6);
        read(&mut meter, 100, 1_000_000, 12_499); // one byte short of the interval
        read(&mut meter, 200, 1_005_000, 12_500);
        let sums = meter.measurement("x").meter;
        assert_eq!((sums.rate_bytes, sums.rate_busy_s), (0, 0.0), "{sums:?}");
        read(&mut meter, 300, 1_017_500, 0);
        let sums = meter.measurement("x").meter;
        assert_eq!(sums.rate_bytes, 12_500);
        assert!((sums.configured_serialise_s - 0.1).abs() < 1e-9, "{sums:?}");
    }

    #[test]
    fn bytes_a_netem_leaf_may_still_hold_do_not_count_as_queued_for_the_rate() {
        let link = KernelLink { minor: 0x10, source_port: 20_000 };
        let mut meter = KernelMeter::new(Duration::from_millis(20));
        let read = |meter: &mut KernelMeter, ms: u64, bytes: u64, backlog_bytes: u64| {
            meter.reading_asked(Duration::from_millis(ms), 1);
            meter.class_read(ClassStats { minor: 0x10, bytes, packets: 0, backlog_bytes });
        };
        // 1 Mbit/s: 1250 bytes each 10 ms.
        meter.rate_set(link, Duration::ZERO, 1e6);
        read(&mut meter, 0, 0, 0);
        read(&mut meter, 10, 0, 3000); // no reading a hold old yet: none ready
        read(&mut meter, 20, 0, 3000); // all 3000 entered within the hold
        read(&mut meter, 30, 1250, 1750);
        assert_eq!(meter.measurement("x").meter.rate_bytes, 0, "queued, but held by the leaf");
        // At 30 ms, 3000 bytes entered by 10 ms (a hold before): all ready.
        read(&mut meter, 40, 2500, 500);
        let sums = meter.measurement("x").meter;
        assert_eq!(sums.rate_bytes, 1250, "{sums:?}");
    }

    #[test]
    fn a_short_interval_counts_only_when_the_queue_outlasts_the_margin() {
        let link = KernelLink { minor: 0x10, source_port: 20_000 };
        let mut meter = KernelMeter::default();
        let read = |meter: &mut KernelMeter, ms: u64, bytes: u64, backlog_bytes: u64| {
            meter.reading_asked(Duration::from_millis(ms), 1);
            meter.class_read(ClassStats { minor: 0x10, bytes, packets: 0, backlog_bytes });
        };
        // 8 Mbit/s: 2000 bytes in a 2 ms interval, 5000 in the margin.
        meter.rate_set(link, Duration::ZERO, 8e6);
        read(&mut meter, 0, 0, 4999);
        read(&mut meter, 2, 2000, 5000);
        assert_eq!(meter.measurement("x").meter.rate_bytes, 0, "the queue covered the interval, not the margin");
        read(&mut meter, 4, 4000, 0);
        assert_eq!(meter.measurement("x").meter.rate_bytes, 2000);
    }

    #[test]
    fn sizes_read_as_tc_prints_them() {
        assert_eq!((size("3028b"), size("30Kb"), size("2Mb"), size("0b")), (Some(3028), Some(30_720), Some(2_097_152), Some(0)));
        assert_eq!((size("12"), size("1Gx")), (None, None));
    }

    #[test]
    fn rates_changed_between_readings_are_integrated() {
        let rates = vec![(Duration::from_millis(0), 1e6), (Duration::from_millis(50), 3e6)];
        let mut track = ClassTrack { rates, ..ClassTrack::default() };
        let bits = track.bits_between(Duration::from_millis(10), Duration::from_millis(100)).unwrap();
        assert!((bits - (1e6 * 0.04 + 3e6 * 0.05)).abs() < 1e-6, "{bits}");
        assert_eq!(ClassTrack::default().bits_between(Duration::ZERO, Duration::from_millis(1)), None);
        track.forget_before(Duration::from_millis(60));
        assert_eq!(track.rates, [(Duration::from_millis(50), 3e6)]);
    }
}
