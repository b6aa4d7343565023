//! The simulated network between the cores. Every ordered pair of agents is
//! one TCP-like connection with its link's delay, jitter, rate and loss from
//! the link profile, released by the same schedule the userspace emulator
//! runs (`qmec_linkem::schedule`), here on virtual time: a connection never
//! reorders, and a lost chunk costs a retransmission. A partition holds an
//! agent's traffic until it heals, as TCP does for an outage shorter than
//! its give-up time. The device links are metered as the userspace
//! emulator meters them (`qmec_linkem::fidelity`), on virtual time. A
//! profile that follows the modelled channel gives each device's link to
//! each server a live rate, which the device sets each slot as the real
//! agent does ([`Network::followed_links`]).

use qmec_device_agent::{FollowedLinks, LinkRate};
use qmec_linkem::fidelity::{ConnectionMeter, DirectionMeter, LinkMeasurement};
use qmec_linkem::follow::LiveRate;
use qmec_linkem::schedule::{DirectionChange, Schedule};
use qmec_linkem::{Direction, LinkProfile};
use std::collections::BTreeMap;
use std::time::Duration;

/// An agent of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    Controller,
    Server(usize),
    Device(usize),
}

/// One `T` per agent, found without a search (every event looks up its
/// agent's life and timer, and every message its connection).
#[derive(Debug)]
pub struct PerAgent<T> {
    controller: T,
    servers: Vec<T>,
    devices: Vec<T>,
}

impl<T> PerAgent<T> {
    /// Every agent's `T` made by `make`.
    pub fn new(servers: usize, devices: usize, make: impl Fn() -> T) -> PerAgent<T> {
        PerAgent { controller: make(), servers: (0..servers).map(|_| make()).collect(), devices: (0..devices).map(|_| make()).collect() }
    }

    pub fn get(&self, who: Endpoint) -> Option<&T> {
        match who {
            Endpoint::Controller => Some(&self.controller),
            Endpoint::Server(s) => self.servers.get(s),
            Endpoint::Device(d) => self.devices.get(d),
        }
    }

    pub fn get_mut(&mut self, who: Endpoint) -> Option<&mut T> {
        match who {
            Endpoint::Controller => Some(&mut self.controller),
            Endpoint::Server(s) => self.servers.get_mut(s),
            Endpoint::Device(d) => self.devices.get_mut(d),
        }
    }
}

/// A span of virtual time in which an agent is cut off.
#[derive(Debug, Clone, Copy)]
struct Cut {
    from: Duration,
    until: Duration,
}

/// One connection's direction.
#[derive(Debug)]
struct Link {
    schedule: Schedule<Duration>,
    has_rate: bool,
    meter: ConnectionMeter<Duration>,
}

#[derive(Debug)]
pub struct Network {
    profile: LinkProfile,
    servers: usize,
    /// Per sender, its connections by receiver's [`Network::slot`], made
    /// on first use (a device's table stops at the servers): every message
    /// looks its connection up.
    links: PerAgent<Vec<Option<Link>>>,
    cuts: BTreeMap<Endpoint, Vec<Cut>>,
    /// The device links' fidelity sums, by link and direction (see
    /// [`fidelity_key`]; named only when asked for, not per message); kept
    /// only when a profile emulates something (else a run without emulation
    /// would show a fidelity that tells nothing).
    meters: BTreeMap<FidelityKey, DirectionMeter>,
    /// A profile emulates something: without one every link delivers at
    /// once, and a message needs no connection, draw or meter.
    emulated: bool,
    /// Following the channel: by device, its up rate to each server.
    followed: Vec<Vec<LiveRate>>,
}

impl Network {
    /// For `servers` servers and `devices` devices; no profile: every
    /// link delivers at once.
    pub fn new(profile: Option<LinkProfile>, servers: usize, devices: usize) -> Network {
        let profile = profile.unwrap_or_else(LinkProfile::with_defaults);
        let emulated = !profile.is_noop();
        let links = PerAgent::new(servers, devices, Vec::new);
        let followed = match profile.follow_channel {
            Some(_) => (0..devices).map(|_| (0..servers).map(|_| LiveRate::new()).collect()).collect(),
            None => Vec::new(),
        };
        Network { profile, servers, links, cuts: BTreeMap::new(), meters: BTreeMap::new(), emulated, followed }
    }

    /// Device `device`'s links up to the servers, when they follow the
    /// modelled channel (its fragments are `payload_scale` times fewer
    /// bytes than bits / 8).
    pub fn followed_links(&self, device: usize, payload_scale: f64) -> Option<FollowedLinks> {
        let follow = self.profile.follow_channel?;
        let rates = self.followed.get(device)?.iter().cloned().map(|live| Some(LinkRate::Live(live))).collect();
        Some(FollowedLinks::new(follow, payload_scale, rates))
    }

    /// Where a receiver's connection sits in a sender's table.
    fn slot(&self, to: Endpoint) -> usize {
        match to {
            Endpoint::Controller => 0,
            Endpoint::Server(s) => 1 + s,
            Endpoint::Device(d) => 1 + self.servers + d,
        }
    }

    /// When a message of `len()` bytes that `from` sends to `to` at `now`
    /// arrives (the length is asked only of links with a rate).
    pub fn arrival(&mut self, now: Duration, from: Endpoint, to: Endpoint, len: impl FnOnce() -> usize) -> Duration {
        if !self.emulated {
            return self.healed(to, self.healed(from, now));
        }
        let slot = self.slot(to);
        let (profile, followed) = (&self.profile, &self.followed);
        let Some(links) = self.links.get_mut(from) else { return now };
        if links.len() <= slot {
            links.resize_with(slot + 1, || None);
        }
        let link = links[slot].get_or_insert_with(|| {
            let first = direction(profile, from, to);
            let seed = pair_seed(profile.seed, from, to);
            // The profile's schedule, on virtual time from the run's start.
            let changes = changes(profile, from, to);
            let live = match (from, to) {
                (Endpoint::Device(d), Endpoint::Server(s)) => followed.get(d).and_then(|rates| rates.get(s)).cloned(),
                _ => None,
            };
            let has_rate =
                first.rate_bps.is_some() || changes.iter().any(|c| c.direction.rate_bps.is_some()) || live.is_some();
            let meter = ConnectionMeter::default();
            let schedule = Schedule::new(first, profile.retransmit, seed).with_changes(changes).with_live_rate(live);
            Link { has_rate, schedule, meter }
        });
        let len = if link.has_rate { len() } else { 0 };
        let (release, plan) = link.schedule.plan(now, len);
        if let Some(key) = fidelity_key(from, to) {
            link.meter.record(self.meters.entry(key).or_default(), &plan, len, now, release);
        }
        // What would arrive while either end is cut off gets through when
        // the cut heals; later traffic is later still, so order holds.
        self.healed(to, self.healed(from, release))
    }

    /// What the device links achieved, per link kind and direction (cuts
    /// are faults, not the link: they are left out).
    pub fn link_measurements(&self) -> Vec<LinkMeasurement> {
        let name = |(link, direction): &FidelityKey| format!("{link} {direction}");
        self.meters.iter().map(|(key, meter)| LinkMeasurement { link: name(key), meter: meter.clone() }).collect()
    }

    /// Cuts `who` off from every other agent over [from, until).
    pub fn cut(&mut self, who: Endpoint, from: Duration, until: Duration) {
        self.cuts.entry(who).or_default().push(Cut { from, until });
    }

    /// `at`, or the end of the cut of `who` that holds it.
    fn healed(&self, who: Endpoint, at: Duration) -> Duration {
        if self.cuts.is_empty() {
            return at;
        }
        let cuts = self.cuts.get(&who).map_or(&[][..], Vec::as_slice);
        cuts.iter().filter(|cut| cut.from <= at && at < cut.until).map(|cut| cut.until).fold(at, Duration::max)
    }

    /// The one-way delay of the link `from` → `to` without jitter: what a
    /// device agent would measure to the controller.
    pub fn base_delay(&self, from: Endpoint, to: Endpoint) -> Duration {
        direction(&self.profile, from, to).delay
    }
}

/// The direction of the profile that traffic `from` → `to` crosses: device
/// links as the userspace emulator applies them, and the server's link
/// between a server and the controller as netem applies it.
fn direction(profile: &LinkProfile, from: Endpoint, to: Endpoint) -> Direction {
    use Endpoint::{Controller, Device, Server};
    match (from, to) {
        (Device(_), Controller) => profile.device_to_controller().up,
        (Controller, Device(_)) => profile.device_to_controller().down,
        (Device(_), Server(_)) => profile.device_to_server().up,
        (Server(_), Device(_)) => profile.device_to_server().down,
        (Server(_), Controller) => profile.server.up,
        (Controller, Server(_)) => profile.server.down,
        _ => Direction::default(),
    }
}

/// A metered link and direction: `("device→controller", "up")` is named
/// `device→controller up`, as the userspace emulator names it (and sorts
/// in the same order as that name).
type FidelityKey = (&'static str, &'static str);

/// The device link and direction `from` → `to` crosses (none for the
/// server's link: the agents do not meter it).
fn fidelity_key(from: Endpoint, to: Endpoint) -> Option<FidelityKey> {
    use Endpoint::{Controller, Device, Server};
    use qmec_linkem::fidelity::{CONTROLLER_LINK, SERVER_LINK};
    let (link, direction) = match (from, to) {
        (Device(_), Controller) => (CONTROLLER_LINK, "up"),
        (Controller, Device(_)) => (CONTROLLER_LINK, "down"),
        (Device(_), Server(_)) => (SERVER_LINK, "up"),
        (Server(_), Device(_)) => (SERVER_LINK, "down"),
        _ => return None,
    };
    Some((link, direction))
}

/// What the direction `from` → `to` changes to over the run, as the
/// profile's schedule says.
fn changes(profile: &LinkProfile, from: Endpoint, to: Endpoint) -> Vec<DirectionChange<Duration>> {
    profile
        .change_times()
        .into_iter()
        .map(|at| DirectionChange { from: at, direction: direction(&profile.at(at), from, to) })
        .collect()
}

/// A seed of its own for every connection, from the profile's.
fn pair_seed(seed: u64, from: Endpoint, to: Endpoint) -> u64 {
    let code = |e: Endpoint| match e {
        Endpoint::Controller => 0u64,
        Endpoint::Server(s) => 1 + 2 * s as u64,
        Endpoint::Device(d) => 2 + 2 * d as u64,
    };
    let mut x = seed ^ code(from).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ code(to).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    // splitmix64's finaliser: nearby pairs get unrelated streams.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn links_follow_the_profile_and_partitions_hold_traffic_until_they_heal() {
        let mut network = Network::new(Some(LinkProfile::device_delay(ms(20))), 1, 1);
        let (device, controller, server) = (Endpoint::Device(0), Endpoint::Controller, Endpoint::Server(0));
        assert_eq!(network.arrival(ms(0), device, controller, || 100), ms(20));
        assert_eq!(network.arrival(ms(0), controller, server, || 100), ms(0), "server links are untouched");
        assert_eq!(network.base_delay(controller, device), ms(20));
        network.cut(server, ms(100), ms(300));
        assert_eq!(network.arrival(ms(150), controller, server, || 100), ms(300));
        assert_eq!(network.arrival(ms(160), server, controller, || 100), ms(300));
        assert_eq!(network.arrival(ms(300), controller, server, || 100), ms(300));
        // A device's traffic to the server crosses the cut too.
        assert_eq!(network.arrival(ms(90), device, server, || 100), ms(300));
    }

    #[test]
    fn a_scheduled_change_applies_from_its_time_on_virtual_time() {
        let profile = LinkProfile::parse(
            "[device]\ndelay_ms = 10\n[[device.schedule]]\nat_s = 1\ndelay_ms = 40\nrate_mbit = 0.008\n",
        )
        .expect("a valid profile");
        let mut network = Network::new(Some(profile), 1, 1);
        let (device, controller, server) = (Endpoint::Device(0), Endpoint::Controller, Endpoint::Server(0));
        // Before 1 s: 10 ms and no rate limit.
        assert_eq!(network.arrival(ms(500), device, server, || 100), ms(510));
        assert_eq!(network.arrival(ms(999), controller, device, || 100), ms(1009));
        // From 1 s: 8 kbit/s (100 bytes take 100 ms) and 40 ms.
        assert_eq!(network.arrival(ms(1000), device, server, || 100), ms(1140));
        assert_eq!(network.arrival(ms(2000), controller, device, || 100), ms(2140));
    }

    #[test]
    fn a_followed_link_runs_at_each_batchs_rate_to_its_server() {
        let profile = LinkProfile::parse("[device]\ndelay_ms = 10\n[device.follow_channel]\nscale = 1\n").expect("a valid profile");
        let mut network = Network::new(Some(profile), 2, 2);
        let (device, server) = (Endpoint::Device(1), Endpoint::Server(0));
        let links = network.followed_links(1, 1000.0).expect("the links follow the channel");
        assert!(Network::new(None, 2, 2).followed_links(1, 1000.0).is_none());
        // Before the first batch: unlimited.
        assert_eq!(network.arrival(ms(0), device, server, || 1000), ms(10));
        // Slot 0 at 8 kbit/s to server 0 (1000 bytes: 1 s), 80 kbit/s to server 1.
        let batch = |slot, rates_bps| qmec_device_agent::Batch { slot, sends: Vec::new(), rates_bps, wall_per_modelled: 0.5 };
        links.set(&batch(0, vec![8000.0, 80_000.0]));
        assert_eq!(network.arrival(ms(100), device, server, || 1000), ms(1110));
        assert_eq!(network.arrival(ms(100), device, Endpoint::Server(1), || 1000), ms(210));
        // Device 0 and the way down are not device 1's up link.
        assert_eq!(network.arrival(ms(100), Endpoint::Device(0), server, || 1000), ms(110));
        assert_eq!(network.arrival(ms(100), server, device, || 1000), ms(110));
        // Slot 1 at 16 kbit/s: what enters now, behind what is on the wire.
        links.set(&batch(1, vec![16_000.0, 80_000.0]));
        assert_eq!(network.arrival(ms(200), device, server, || 1000), ms(1610));
    }
}
