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
//! ```
//!
//! Parsing never panics; every error names the field (`device.down.delay_ms`).

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

/// A whole testbed's links.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LinkProfile {
    pub device: Link,
    pub server: Link,
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
    let rate_bps = match rate {
        None => None,
        Some(r) if r.is_finite() && r > 0.0 && r <= 1e6 => Some(r * 1e6),
        Some(r) => return Err(invalid(&rate_field, format!("must be in (0, 1e6] Mbit/s, got {r}"))),
    };
    Ok(Direction { delay, jitter, loss, rate_bps })
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
        self.device.is_noop() && self.server.is_noop()
    }

    /// The path a device agent dials to the controller, as the userspace
    /// emulator applies it: the device's link (the controller's own link is
    /// not modelled).
    pub fn device_to_controller(&self) -> Link {
        self.device
    }

    /// The path a device agent dials to a server: the device's link, then
    /// the server's.
    pub fn device_to_server(&self) -> Link {
        self.device.then(&self.server)
    }

    /// The resolved profile as a file (both directions written out), which
    /// [`LinkProfile::parse`] reads back to the same profile.
    pub fn to_toml(&self) -> String {
        let raw_link = |l: &Link| {
            (!l.is_noop()).then(|| RawLink {
                up: Some(raw_direction(&l.up)),
                down: Some(raw_direction(&l.down)),
                ..RawLink::default()
            })
        };
        let raw = RawProfile {
            retransmit_ms: Some(self.retransmit.as_secs_f64() * 1e3),
            seed: Some(self.seed),
            device: raw_link(&self.device),
            server: raw_link(&self.server),
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
        ];
        for (text, field) in cases {
            match LinkProfile::parse(text) {
                Err(ProfileError::Invalid { field: got, .. }) => assert_eq!(got, field, "{text}"),
                other => panic!("{text}: expected an invalid {field}, got {other:?}"),
            }
        }
        let unknown = LinkProfile::parse("[device]\ndelay = 3").unwrap_err().to_string();
        assert!(unknown.contains("delay"), "{unknown}");
        assert!(LinkProfile::parse("[router]\ndelay_ms = 3").is_err());
    }

    #[test]
    fn resolved_profile_round_trips() {
        let p = LinkProfile::parse("seed = 7\n[device]\ndelay_ms = 20\n[server.up]\nrate_mbit = 3\nloss_percent = 2").unwrap();
        assert_eq!(LinkProfile::parse(&p.to_toml()).unwrap(), p);
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
