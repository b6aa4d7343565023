//! The link-profile file: what each class of link in a testbed does to its
//! traffic. A profile names the device links (every device agent's access
//! link: device ↔ controller and device ↔ servers) and the server links;
//! each link has two directions, `up` (leaving the agent) and `down`
//! (arriving at it), given once for both or apart:
//!
//! ```toml
//! [device]             # every device agent's link
//! delay_ms = 20.0      # one-way delay, each direction
//! jitter_ms = 2.0      # uniform ± around the delay
//! loss_percent = 0.5   # per packet (netem) or per chunk (userspace)
//! rate_mbit = 50.0     # absent: no limit
//!
//! [device.down]        # optional: only the direction toward the device
//! delay_ms = 5.0
//!
//! [server]             # every server agent's link; absent: untouched
//! delay_ms = 1.0
//!
//! [[device.schedule]]  # optional: from 5 s into the run on, both
//! at_s = 5.0           # directions of the device link run at 10 Mbit/s
//! rate_mbit = 10.0     # (and/or `delay_ms`); later entries, later times
//!
//! [device.follow_channel]  # optional: each device's link up to each server
//! scale = "paced"          # runs at its modelled rate r_ms(t), slot by slot
//! ```
//!
//! `scale` says how a modelled rate becomes the link's ([`crate::follow`]):
//! `"paced"` (the default) at the rate the device agents pace their payload
//! bytes, or a positive number of link bit/s per modelled bit/s. The
//! channel then sets the device→server up rate in place of the device
//! link's `rate_mbit` (which still applies toward the controller and down);
//! a server link's rate still caps it.
//!
//! Parsing never panics; every error names the field (`device.down.delay_ms`).

use crate::follow::{FollowChannel, RateScale};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest delay, jitter or retransmission penalty accepted: a minute is
/// already far beyond any link a testbed means to model.
pub const MAX_MS: f64 = 60_000.0;

/// The userspace emulator's cost of a lost chunk when the file names none:
/// Linux's minimum TCP retransmission timeout (`TCP_RTO_MIN`).
pub const DEFAULT_RETRANSMIT_MS: f64 = 200.0;

/// One direction of a link.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Direction {
    pub delay: Duration,
    /// Uniform ± around `delay` (clamped at zero delay).
    pub jitter: Duration,
    /// Probability in [0, 1] that a packet (netem) or chunk (userspace) is lost.
    pub loss: f64,
    /// Bits per second; `None`: no limit.
    pub rate_bps: Option<f64>,
}

impl Direction {
    /// Leaves every byte as it is.
    pub fn is_noop(&self) -> bool {
        self.delay.is_zero() && self.jitter.is_zero() && self.loss == 0.0 && self.rate_bps.is_none()
    }

    /// Crossing `self` and then `next` (two links in series): delays and
    /// jitters add, losses compound, the slower rate binds.
    pub fn then(&self, next: &Direction) -> Direction {
        Direction {
            delay: self.delay + next.delay,
            jitter: self.jitter + next.jitter,
            loss: 1.0 - (1.0 - self.loss) * (1.0 - next.loss),
            rate_bps: match (self.rate_bps, next.rate_bps) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

/// Both directions of one link, seen from the agent at its end.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Link {
    /// Leaving the agent.
    pub up: Direction,
    /// Arriving at the agent.
    pub down: Direction,
}

impl Link {
    pub fn is_noop(&self) -> bool {
        self.up.is_noop() && self.down.is_noop()
    }

    /// `self` then `next` in series, e.g. a device's link then a server's:
    /// what leaves the device (`self.up`) arrives at the server (`next.down`).
    pub fn then(&self, next: &Link) -> Link {
        Link { up: self.up.then(&next.down), down: next.up.then(&self.down) }
    }
}

/// A change to both directions of a link at a time into the run: what it
/// sets replaces the link's value until the next change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkChange {
    pub at: Duration,
    pub rate_bps: Option<f64>,
    pub delay: Option<Duration>,
}

impl LinkChange {
    fn apply(&self, link: &mut Link) {
        for direction in [&mut link.up, &mut link.down] {
            if let Some(rate) = self.rate_bps {
                direction.rate_bps = Some(rate);
            }
            if let Some(delay) = self.delay {
                direction.delay = delay;
            }
        }
    }
}

/// A path's links from some time on: what a connection switches to then.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimedLink {
    pub from: Duration,
    pub link: Link,
}

/// A whole testbed's links.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LinkProfile {
    pub device: Link,
    pub server: Link,
    /// Changes to the device link over the run, in time order.
    pub device_schedule: Vec<LinkChange>,
    /// Changes to the server link over the run, in time order.
    pub server_schedule: Vec<LinkChange>,
    /// The device links' rate up to the servers follows the modelled
    /// channel (set at run time, slot by slot).
    pub follow_channel: Option<FollowChannel>,
    /// Userspace only: what a lost chunk costs (a TCP retransmission).
    pub retransmit: Duration,
    /// Seeds the jitter and loss draws of the userspace emulator.
    pub seed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("reading link profile {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("parsing link profile: {0}")]
    Parse(String),
    #[error("link profile `{field}`: {reason}")]
    Invalid { field: String, reason: String },
}

/// A direction as written in the file; absent fields inherit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jitter_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    loss_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate_mbit: Option<f64>,
}

/// A link as written in the file: fields for both directions (serde's
/// `flatten` would lose `deny_unknown_fields`, so they are spelled out).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jitter_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    loss_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate_mbit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    up: Option<RawDirection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    down: Option<RawDirection>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    schedule: Vec<RawChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    follow_channel: Option<RawFollow>,
}

/// `[device.follow_channel]` as written: `scale` is `"paced"` or a number,
/// read as any TOML value so that a wrong one is named by its field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFollow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scale: Option<toml::Value>,
}

/// One `[[link.schedule]]` entry as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChange {
    at_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate_mbit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay_ms: Option<f64>,
}

impl RawLink {
    fn both(&self) -> RawDirection {
        RawDirection {
            delay_ms: self.delay_ms,
            jitter_ms: self.jitter_ms,
            loss_percent: self.loss_percent,
            rate_mbit: self.rate_mbit,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retransmit_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device: Option<RawLink>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server: Option<RawLink>,
}

fn invalid(field: &str, reason: impl Into<String>) -> ProfileError {
    ProfileError::Invalid { field: field.to_string(), reason: reason.into() }
}

fn millis(field: &str, value: Option<f64>) -> Result<Duration, ProfileError> {
    match value {
        None => Ok(Duration::ZERO),
        Some(ms) if ms.is_finite() && (0.0..=MAX_MS).contains(&ms) => Ok(Duration::from_secs_f64(ms / 1e3)),
        Some(ms) => Err(invalid(field, format!("must be a number of milliseconds in [0, {MAX_MS}], got {ms}"))),
    }
}

fn direction(link: &str, dir: &str, both: &RawDirection, own: Option<&RawDirection>) -> Result<Direction, ProfileError> {
    // A value from the direction's own table is named `link.dir.key`, an
    // inherited one `link.key`.
    let pick = |key: &str, f: fn(&RawDirection) -> Option<f64>| match own.and_then(f) {
        Some(v) => (Some(v), format!("{link}.{dir}.{key}")),
        None => (f(both), format!("{link}.{key}")),
    };
    let (delay, delay_field) = pick("delay_ms", |d| d.delay_ms);
    let (jitter, jitter_field) = pick("jitter_ms", |d| d.jitter_ms);
    let (loss, loss_field) = pick("loss_percent", |d| d.loss_percent);
    let (rate, rate_field) = pick("rate_mbit", |d| d.rate_mbit);
    let delay = millis(&delay_field, delay)?;
    let jitter = millis(&jitter_field, jitter)?;
    let loss = match loss {
        None => 0.0,
        Some(p) if p.is_finite() && (0.0..100.0).contains(&p) => p / 100.0,
        Some(p) => return Err(invalid(&loss_field, format!("must be a percentage in [0, 100), got {p}"))),
    };
    let rate_bps = rate_bits(&rate_field, rate)?;
    Ok(Direction { delay, jitter, loss, rate_bps })
}

fn rate_bits(field: &str, mbit: Option<f64>) -> Result<Option<f64>, ProfileError> {
    match mbit {
        None => Ok(None),
        Some(r) if r.is_finite() && r > 0.0 && r <= 1e6 => Ok(Some(r * 1e6)),
        Some(r) => Err(invalid(field, format!("must be in (0, 1e6] Mbit/s, got {r}"))),
    }
}

/// A link's `[[NAME.schedule]]`: times rising, each entry changing something.
fn schedule(name: &str, raw: Option<&RawLink>) -> Result<Vec<LinkChange>, ProfileError> {
    let Some(raw) = raw else { return Ok(Vec::new()) };
    let mut changes: Vec<LinkChange> = Vec::new();
    for (i, entry) in raw.schedule.iter().enumerate() {
        let field = |key: &str| format!("{name}.schedule[{i}].{key}");
        let at = entry.at_s;
        if !at.is_finite() || !(0.0..=1e7).contains(&at) {
            return Err(invalid(&field("at_s"), format!("must be a time in [0, 1e7] s into the run, got {at}")));
        }
        if let Some(before) = changes.last().filter(|c| c.at.as_secs_f64() >= at) {
            let before = before.at.as_secs_f64();
            return Err(invalid(&field("at_s"), format!("must be later than the entry before it ({before} s), got {at}")));
        }
        if entry.rate_mbit.is_none() && entry.delay_ms.is_none() {
            return Err(invalid(&format!("{name}.schedule[{i}]"), "changes nothing: give rate_mbit, delay_ms or both"));
        }
        changes.push(LinkChange {
            at: Duration::from_secs_f64(at),
            rate_bps: rate_bits(&field("rate_mbit"), entry.rate_mbit)?,
            delay: entry.delay_ms.map(|ms| millis(&field("delay_ms"), Some(ms))).transpose()?,
        });
    }
    Ok(changes)
}

fn raw_schedule(changes: &[LinkChange]) -> Vec<RawChange> {
    changes
        .iter()
        .map(|c| RawChange {
            at_s: c.at.as_secs_f64(),
            rate_mbit: c.rate_bps.map(|r| r / 1e6),
            delay_ms: c.delay.map(|d| d.as_secs_f64() * 1e3),
        })
        .collect()
}

/// The device link's `follow_channel` (a server's link has no channel to follow).
fn follow_channel(device: Option<&RawLink>, server: Option<&RawLink>) -> Result<Option<FollowChannel>, ProfileError> {
    if server.is_some_and(|s| s.follow_channel.is_some()) {
        return Err(invalid("server.follow_channel", "only the device link follows the channel (each device's modelled rate to each server)"));
    }
    let Some(raw) = device.and_then(|d| d.follow_channel.as_ref()) else { return Ok(None) };
    let scale = match &raw.scale {
        None => RateScale::Paced,
        Some(toml::Value::String(name)) if name == "paced" => RateScale::Paced,
        Some(value) => {
            let factor = match value {
                toml::Value::Float(f) => Some(*f),
                toml::Value::Integer(i) => Some(*i as f64),
                _ => None,
            };
            match factor {
                Some(f) if f.is_finite() && f > 0.0 && f <= 1e6 => RateScale::Factor(f),
                _ => {
                    let reason = format!("must be \"paced\" or a number of link bit/s per modelled bit/s in (0, 1e6], got {value}");
                    return Err(invalid("device.follow_channel.scale", reason));
                }
            }
        }
    };
    Ok(Some(FollowChannel { scale }))
}

fn raw_follow(follow: &FollowChannel) -> RawFollow {
    let scale = match follow.scale {
        RateScale::Paced => toml::Value::String("paced".into()),
        RateScale::Factor(f) => toml::Value::Float(f),
    };
    RawFollow { scale: Some(scale) }
}

fn link(name: &str, raw: Option<&RawLink>) -> Result<Link, ProfileError> {
    let Some(raw) = raw else { return Ok(Link::default()) };
    Ok(Link {
        up: direction(name, "up", &raw.both(), raw.up.as_ref())?,
        down: direction(name, "down", &raw.both(), raw.down.as_ref())?,
    })
}

fn raw_direction(d: &Direction) -> RawDirection {
    let ms = |d: Duration| (!d.is_zero()).then_some(d.as_secs_f64() * 1e3);
    RawDirection {
        delay_ms: ms(d.delay),
        jitter_ms: ms(d.jitter),
        loss_percent: (d.loss > 0.0).then_some(d.loss * 100.0),
        rate_mbit: d.rate_bps.map(|r| r / 1e6),
    }
}

impl LinkProfile {
    /// Parses and validates a profile's TOML text.
    pub fn parse(text: &str) -> Result<LinkProfile, ProfileError> {
        let raw: RawProfile = toml::from_str(text).map_err(|e| ProfileError::Parse(qmec_model::excerpt::excerpt_lines(&e.to_string())))?;
        let retransmit = match raw.retransmit_ms {
            None => Duration::from_secs_f64(DEFAULT_RETRANSMIT_MS / 1e3),
            Some(ms) => millis("retransmit_ms", Some(ms))?,
        };
        Ok(LinkProfile {
            device: link("device", raw.device.as_ref())?,
            server: link("server", raw.server.as_ref())?,
            device_schedule: schedule("device", raw.device.as_ref())?,
            server_schedule: schedule("server", raw.server.as_ref())?,
            follow_channel: follow_channel(raw.device.as_ref(), raw.server.as_ref())?,
            retransmit,
            seed: raw.seed.unwrap_or(0),
        })
    }

    pub fn load(path: &Path) -> Result<LinkProfile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io { path: path.to_path_buf(), source })?;
        LinkProfile::parse(&text)
    }

    /// Only the device links, delayed `delay` one way in each direction.
    pub fn device_delay(delay: Duration) -> LinkProfile {
        let d = Direction { delay, ..Direction::default() };
        LinkProfile { device: Link { up: d, down: d }, ..LinkProfile::with_defaults() }
    }

    /// No emulation at all, with the default retransmission penalty.
    pub fn with_defaults() -> LinkProfile {
        LinkProfile { retransmit: Duration::from_secs_f64(DEFAULT_RETRANSMIT_MS / 1e3), ..LinkProfile::default() }
    }

    pub fn is_noop(&self) -> bool {
        self.device.is_noop() && self.server.is_noop() && !self.has_schedule() && self.follow_channel.is_none()
    }

    /// Whether any link changes during the run.
    pub fn has_schedule(&self) -> bool {
        !self.device_schedule.is_empty() || !self.server_schedule.is_empty()
    }

    /// The links in effect `elapsed` into the run, schedules applied.
    pub fn at(&self, elapsed: Duration) -> LinkProfile {
        let mut now = LinkProfile { device_schedule: Vec::new(), server_schedule: Vec::new(), ..self.clone() };
        for change in self.device_schedule.iter().filter(|c| c.at <= elapsed) {
            change.apply(&mut now.device);
        }
        for change in self.server_schedule.iter().filter(|c| c.at <= elapsed) {
            change.apply(&mut now.server);
        }
        now
    }

    /// What the path `path` (e.g. [`LinkProfile::device_to_server`]) turns
    /// into at each time a schedule changes one of its links, in time order.
    pub fn timeline(&self, path: fn(&LinkProfile) -> Link) -> Vec<TimedLink> {
        self.change_times().into_iter().map(|from| TimedLink { from, link: path(&self.at(from)) }).collect()
    }

    /// Every time a schedule changes a link, in order, once each.
    pub fn change_times(&self) -> Vec<Duration> {
        let mut times: Vec<Duration> = self.device_schedule.iter().chain(&self.server_schedule).map(|c| c.at).collect();
        times.sort();
        times.dedup();
        times
    }

    /// The path a device agent dials to the controller, as the userspace
    /// emulator applies it: the device's link (the controller's own link is
    /// not modelled).
    pub fn device_to_controller(&self) -> Link {
        self.device
    }

    /// The path a device agent dials to a server: the device's link, then
    /// the server's. Following the channel, the device's own rate up is
    /// left out: the channel sets it at run time.
    pub fn device_to_server(&self) -> Link {
        let mut device = self.device;
        if self.follow_channel.is_some() {
            device.up.rate_bps = None;
        }
        device.then(&self.server)
    }

    /// The resolved profile as a file (both directions written out), which
    /// [`LinkProfile::parse`] reads back to the same profile.
    pub fn to_toml(&self) -> String {
        let raw_link = |l: &Link, changes: &[LinkChange], follow: Option<&FollowChannel>| {
            (!l.is_noop() || !changes.is_empty() || follow.is_some()).then(|| RawLink {
                up: Some(raw_direction(&l.up)),
                down: Some(raw_direction(&l.down)),
                schedule: raw_schedule(changes),
                follow_channel: follow.map(raw_follow),
                ..RawLink::default()
            })
        };
        let raw = RawProfile {
            retransmit_ms: Some(self.retransmit.as_secs_f64() * 1e3),
            seed: Some(self.seed),
            device: raw_link(&self.device, &self.device_schedule, self.follow_channel.as_ref()),
            server: raw_link(&self.server, &self.server_schedule, None),
        };
        toml::to_string(&raw).unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_fields_apply_to_both_directions_and_overrides_to_one() {
        let p = LinkProfile::parse(
            "[device]\ndelay_ms = 20\njitter_ms = 2\nloss_percent = 1\nrate_mbit = 8\n[device.down]\ndelay_ms = 5\n",
        )
        .unwrap();
        assert_eq!(p.device.up.delay, Duration::from_millis(20));
        assert_eq!(p.device.down.delay, Duration::from_millis(5));
        assert_eq!(p.device.down.jitter, Duration::from_millis(2));
        assert!((p.device.up.loss - 0.01).abs() < 1e-12);
        assert_eq!(p.device.down.rate_bps, Some(8e6));
        assert!(p.server.is_noop());
        assert_eq!(p.retransmit, Duration::from_millis(200));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("[device]\ndelay_ms = -1", "device.delay_ms"),
            ("[device.down]\ndelay_ms = 1e9", "device.down.delay_ms"),
            ("[server]\nloss_percent = 100", "server.loss_percent"),
            ("[server.up]\nrate_mbit = 0", "server.up.rate_mbit"),
            ("retransmit_ms = -3", "retransmit_ms"),
            ("[device.follow_channel]\nscale = \"fast\"", "device.follow_channel.scale"),
            ("[device.follow_channel]\nscale = 0", "device.follow_channel.scale"),
            ("[device.follow_channel]\nscale = -1.5", "device.follow_channel.scale"),
            ("[device.follow_channel]\nscale = true", "device.follow_channel.scale"),
            ("[device.follow_channel]\nscale = nan", "device.follow_channel.scale"),
            ("[server.follow_channel]", "server.follow_channel"),
        ];
        for (text, field) in cases {
            match LinkProfile::parse(text) {
                Err(ProfileError::Invalid { field: got, reason }) => {
                    assert_eq!(got, field, "{text}");
                    assert!(!reason.is_empty());
                }
                other => panic!("{text}: expected an invalid {field}, got {other:?}"),
            }
        }
        for (text, key) in [("[device]\ndelay = 3", "delay"), ("[device.follow_channel]\nrate = 1", "rate")] {
            let unknown = LinkProfile::parse(text).unwrap_err().to_string();
            assert!(unknown.contains(key), "{unknown}");
        }
        assert!(LinkProfile::parse("[router]\ndelay_ms = 3").is_err());
    }

    #[test]
    fn resolved_profile_round_trips() {
        let p = LinkProfile::parse("seed = 7\n[device]\ndelay_ms = 20\n[server.up]\nrate_mbit = 3\nloss_percent = 2").unwrap();
        assert_eq!(LinkProfile::parse(&p.to_toml()).unwrap(), p);
    }

    #[test]
    fn a_schedule_changes_its_link_from_its_times_on() {
        let p = LinkProfile::parse(
            "[device]\ndelay_ms = 20\nrate_mbit = 50\n[[device.schedule]]\nat_s = 5\nrate_mbit = 10\n\
             [[device.schedule]]\nat_s = 8.5\ndelay_ms = 40\n[server]\nrate_mbit = 30\n",
        )
        .unwrap();
        let rate = |t: f64| p.at(Duration::from_secs_f64(t)).device.up.rate_bps;
        assert_eq!((rate(0.0), rate(4.99), rate(5.0), rate(100.0)), (Some(50e6), Some(50e6), Some(10e6), Some(10e6)));
        let at_9 = p.at(Duration::from_secs(9));
        assert_eq!((at_9.device.down.delay, at_9.device.down.rate_bps), (Duration::from_millis(40), Some(10e6)));
        // The path to a server: the slower of the device's and the server's rate.
        let timeline = p.timeline(LinkProfile::device_to_server);
        let rates: Vec<_> = timeline.iter().map(|t| (t.from.as_secs_f64(), t.link.up.rate_bps)).collect();
        assert_eq!(rates, vec![(5.0, Some(10e6)), (8.5, Some(10e6))]);
        assert_eq!(timeline[1].link.up.delay, Duration::from_millis(40));
        assert_eq!(LinkProfile::parse(&p.to_toml()).unwrap(), p, "a schedule round-trips");
        assert!(!LinkProfile::parse("[[server.schedule]]\nat_s = 1\nrate_mbit = 2").unwrap().is_noop());
    }

    #[test]
    fn schedule_errors_name_the_entry_and_field() {
        let cases = [
            ("[[device.schedule]]\nat_s = -1\nrate_mbit = 1", "device.schedule[0].at_s"),
            ("[[device.schedule]]\nat_s = 2\nrate_mbit = 1\n[[device.schedule]]\nat_s = 2\nrate_mbit = 3", "device.schedule[1].at_s"),
            ("[[server.schedule]]\nat_s = 1\nrate_mbit = 0", "server.schedule[0].rate_mbit"),
            ("[[server.schedule]]\nat_s = 1\ndelay_ms = 1e9", "server.schedule[0].delay_ms"),
            ("[[device.schedule]]\nat_s = 1", "device.schedule[0]"),
        ];
        for (text, field) in cases {
            match LinkProfile::parse(text) {
                Err(ProfileError::Invalid { field: got, .. }) => assert_eq!(got, field, "{text}"),
                other => panic!("{text}: expected an invalid {field}, got {other:?}"),
            }
        }
        assert!(LinkProfile::parse("[[device.schedule]]\nat = 1\nrate_mbit = 1").unwrap_err().to_string().contains("at"));
    }

    #[test]
    fn following_the_channel_frees_the_device_rate_up_to_the_servers() {
        let p = LinkProfile::parse("[device]\ndelay_ms = 5\nrate_mbit = 50\n[device.follow_channel]\n[server.down]\nrate_mbit = 30\n")
            .unwrap();
        assert_eq!(p.follow_channel, Some(FollowChannel { scale: RateScale::Paced }));
        // Up to a server only the server link's rate is left to cap the
        // channel's; toward the controller and down the device's stays.
        assert_eq!(p.device_to_server().up.rate_bps, Some(30e6));
        assert_eq!(p.device_to_server().up.delay, Duration::from_millis(5));
        assert_eq!(p.device_to_server().down.rate_bps, Some(50e6));
        assert_eq!(p.device_to_controller().up.rate_bps, Some(50e6));
        assert_eq!(LinkProfile::parse(&p.to_toml()).unwrap(), p, "following round-trips");
        let scaled = LinkProfile::parse("[device.follow_channel]\nscale = 0.25\n").unwrap();
        assert_eq!(scaled.follow_channel, Some(FollowChannel { scale: RateScale::Factor(0.25) }));
        assert!(!scaled.is_noop(), "a profile that only follows the channel still emulates");
        assert_eq!(LinkProfile::parse(&scaled.to_toml()).unwrap(), scaled);
        assert_eq!(LinkProfile::parse("[device.follow_channel]\nscale = 2\n").unwrap().follow_channel.map(|f| f.scale), Some(RateScale::Factor(2.0)));
        assert_eq!(LinkProfile::parse("[device]\nrate_mbit = 5").unwrap().follow_channel, None);
    }

    #[test]
    fn links_in_series_add_delay_and_keep_the_slower_rate() {
        let a = Direction { delay: Duration::from_millis(3), loss: 0.5, rate_bps: Some(10.0), ..Default::default() };
        let b = Direction { delay: Duration::from_millis(4), loss: 0.5, rate_bps: None, ..Default::default() };
        let c = a.then(&b);
        assert_eq!(c.delay, Duration::from_millis(7));
        assert!((c.loss - 0.75).abs() < 1e-12);
        assert_eq!(c.rate_bps, Some(10.0));
    }
}
