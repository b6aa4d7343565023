//! The scenario: every parameter of the system model in one validated value.
//!
//! A scenario comes from TOML (unknown fields rejected) or from the built-in
//! [`Scenario::paper`]. [`Scenario::validate`] checks every range so that no
//! later stage has to: each error names the field and the reason.
//!
//! # Units and the values the paper leaves open
//! The Sci. Rep. paper fixes M = 10, S = 3, λ = 5 tasks/slot, Rayleigh fading,
//! W = 20 MHz, P = 0.1 W, N0 = 1e-9 W and V = 1000. The rest is ours, chosen
//! so that the system is loaded, stable under the exact drift-plus-penalty
//! policy and unstable under local execution:
//! - τ = 0.1 s: long enough that a slot moves a few hundred kbit per link.
//! - Task size uniform in [50, 150] kbit, so a device offers 0.5 Mbit/slot
//!   (5 Mbit/s) while computing only 1 Mbit/s locally (f = 1 GHz, L = 1000
//!   cycles/bit): local execution is 5× overloaded and its backlog grows
//!   linearly.
//! - Path loss g = g0 (d / 1 m)^-2.5 with g0 = 1e-3 and d uniform in
//!   [50, 150] m: mean SNRs from about 0.4 to 6, i.e. 9–55 Mbit/s before
//!   fading, so three uplinks can carry the offered 5 Mbit/slot only when
//!   decisions pick good links.
//! - F_s = 20 GHz per server (20 Mbit/s): the edge can compute what the
//!   uplinks deliver with room to spare.
//! - κ = 1e-28: local computing at 1 GHz draws 0.1 W, the same as the radio,
//!   so the power trade-off is real.
//! - γ = 4 Mbit/s promised per device (80 % of what it offers).
//! - Queues enter the Lyapunov function in Mbit (`queue_unit_bits` = 1e6) and
//!   the penalty is energy per slot in joules. With these units a slot's
//!   queue term (Q + H) τ r is of order 0.1–10 while the energy term V P τ is
//!   0.01·V, so V = 1 is queue-driven, V ≈ 100–1000 balances the two and
//!   V = 10⁴ is power-driven: the paper's range 1…10⁴ spans the trade-off.

use crate::mobility::{DeviceMotion, MobilityConfig};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// A scenario field that failed validation or parsing.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario field `{field}`: {reason}")]
    Invalid { field: String, reason: String },
    #[error("scenario TOML: {0}")]
    Parse(String),
    #[error("reading scenario file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("mobility trace {path} line {line}: {reason}")]
    Trace { path: String, line: usize, reason: String },
    #[error("unknown built-in scenario `{0}` (known: paper, paper-small, scaled, overload, paper-mobile, paper-trace)")]
    UnknownBuiltin(String),
    #[error("size `{0}`: expected DEVICESxSERVERS with both at least 1, e.g. 100x10")]
    Size(String),
}

/// A size written `MxS` (devices × servers), e.g. `1000x50`.
pub fn parse_size(text: &str) -> Result<(usize, usize), ScenarioError> {
    let bad = || ScenarioError::Size(text.to_string());
    let (m, s) = text.trim().split_once(['x', 'X', '×']).ok_or_else(bad)?;
    let m: usize = m.trim().parse().map_err(|_| bad())?;
    let s: usize = s.trim().parse().map_err(|_| bad())?;
    if m == 0 || s == 0 {
        return Err(bad());
    }
    Ok((m, s))
}

/// The whole system model's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// M, the number of devices.
    pub devices: usize,
    /// S, the number of edge servers.
    pub servers: usize,
    /// τ, the slot length in seconds.
    pub slot_seconds: f64,
    pub arrivals: ArrivalConfig,
    pub channel: ChannelConfig,
    pub device: DeviceConfig,
    pub server: ServerConfig,
    pub control: ControlConfig,
    /// Optional slow variation of load and channel quality over time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamics: Option<Dynamics>,
    /// Servers at coordinates and moving devices; absent: each device's
    /// distances are drawn once per run (see `channel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobility: Option<MobilityConfig>,
}

/// Deterministic sinusoidal variation, for experiments on changing
/// conditions: λ(t) = λ (1 + a_λ sin 2πt/T) and g(t) = g (1 + a_g cos 2πt/T),
/// so load peaks a quarter period after the channel is at its best; and an
/// optional step in λ (a sudden shift, for online learning to follow).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dynamics {
    /// T, the period in slots.
    pub period_slots: u64,
    /// a_λ in [0, 1).
    pub arrival_amplitude: f64,
    /// a_g in [0, 1).
    pub channel_amplitude: f64,
    /// λ is multiplied by `factor` from slot `from_slot` on.
    #[serde(default)]
    pub arrival_step: Option<ArrivalStep>,
}

/// A step in the arrival rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrivalStep {
    /// The first slot at the new rate.
    pub from_slot: u64,
    /// New rate over old, in (0, 10].
    pub factor: f64,
}

impl Dynamics {
    fn phase(&self, slot: u64) -> f64 {
        std::f64::consts::TAU * (slot % self.period_slots) as f64 / self.period_slots as f64
    }

    /// λ(t) / λ.
    pub fn arrival_factor(&self, slot: u64) -> f64 {
        let step = self.arrival_step.filter(|s| slot >= s.from_slot).map_or(1.0, |s| s.factor);
        step * (1.0 + self.arrival_amplitude * self.phase(slot).sin())
    }

    /// g(t) / g.
    pub fn channel_factor(&self, slot: u64) -> f64 {
        1.0 + self.channel_amplitude * self.phase(slot).cos()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrivalConfig {
    /// λ, mean tasks per slot per device (Poisson).
    pub tasks_per_slot: f64,
    /// Size distribution of one task, in bits.
    pub task_bits: SizeDistribution,
}

/// How task sizes are drawn (bits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SizeDistribution {
    Fixed { bits: u64 },
    Uniform { min: u64, max: u64 },
    /// Exponential with this mean, at least 1 bit and at most `max` bits.
    Exponential { mean: f64, max: u64 },
}

impl SizeDistribution {
    /// Mean task size in bits.
    pub fn mean_bits(&self) -> f64 {
        match *self {
            SizeDistribution::Fixed { bits } => bits as f64,
            SizeDistribution::Uniform { min, max } => (min + max) as f64 / 2.0,
            // The truncation at `max` is ignored: it is documented as a safety cap.
            SizeDistribution::Exponential { mean, .. } => mean,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fading {
    /// h = g |ξ|², ξ ~ CN(0, 1).
    Rayleigh,
    /// h = g: path loss only.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// W, the uplink bandwidth of one server channel (Hz).
    pub bandwidth_hz: f64,
    /// N0, the noise power over the band (W).
    pub noise_w: f64,
    pub fading: Fading,
    /// ρ of the AR(1) fading process; 0 draws fading independently each slot.
    pub correlation: f64,
    /// g0, the power gain at 1 m.
    pub reference_gain: f64,
    pub path_loss_exponent: f64,
    /// Device–server distances are drawn uniformly in [min, max] metres.
    /// With `[mobility]` the distance is the devices' geometric one, never
    /// counted below `min_distance_m` (the path-loss model's near limit),
    /// and `max_distance_m` is not used.
    pub min_distance_m: f64,
    pub max_distance_m: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// P_m, transmit power (W).
    pub tx_power_w: f64,
    /// f_m^loc, local CPU frequency (Hz).
    pub cpu_hz: f64,
    /// L, CPU cycles per bit (device and server alike).
    pub cycles_per_bit: f64,
    /// κ, effective switched capacitance: local power is κ f³ (W).
    pub kappa: f64,
    /// γ_m, promised throughput driving the virtual queue H (bit/s).
    pub promised_bps: f64,
    /// Arrivals that would push the queue past this many bits are dropped.
    pub queue_cap_bits: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// F_s, total CPU frequency shared by the devices served (Hz).
    pub cpu_hz: f64,
    /// Fixed delay to return a fragment's result to its device (s).
    pub result_delay_s: f64,
    /// Offloading stops short of pushing a server's backlog past this.
    pub queue_cap_bits: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// V, the drift-plus-penalty trade-off weight.
    pub v: f64,
    /// ω ≥ 0, the throughput reward in the penalty P − ω R (per queue unit).
    pub omega: f64,
    /// Bits per queue unit in the Lyapunov function (1e6: Mbit).
    pub queue_unit_bits: f64,
    /// Adds ½ Σ Z_s² to the Lyapunov function, so server backlog counts.
    pub two_tier: bool,
}

impl Scenario {
    /// The Sci. Rep. paper's scenario, with the open values documented above.
    pub fn paper() -> Scenario {
        Scenario {
            name: "paper".into(),
            devices: 10,
            servers: 3,
            slot_seconds: 0.1,
            arrivals: ArrivalConfig {
                tasks_per_slot: 5.0,
                task_bits: SizeDistribution::Uniform { min: 50_000, max: 150_000 },
            },
            channel: ChannelConfig {
                bandwidth_hz: 20e6,
                noise_w: 1e-9,
                fading: Fading::Rayleigh,
                correlation: 0.0,
                reference_gain: 1e-3,
                path_loss_exponent: 2.5,
                min_distance_m: 50.0,
                max_distance_m: 150.0,
            },
            device: DeviceConfig {
                tx_power_w: 0.1,
                cpu_hz: 1e9,
                cycles_per_bit: 1000.0,
                kappa: 1e-28,
                promised_bps: 4e6,
                queue_cap_bits: 2_000_000_000,
            },
            server: ServerConfig {
                cpu_hz: 20e9,
                result_delay_s: 0.005,
                queue_cap_bits: 2_000_000_000,
            },
            control: ControlConfig {
                v: 1000.0,
                omega: 0.0,
                queue_unit_bits: 1e6,
                two_tier: false,
            },
            dynamics: None,
            mobility: None,
        }
    }

    /// A built-in scenario by name: `paper`, `paper-small` (3 devices,
    /// 2 servers, for quick tests), `scaled` (50 devices, 10 servers) or
    /// `overload` (the paper's with 40× the arrivals and small queue caps),
    /// `paper-mobile` (devices on random waypoints among servers at
    /// coordinates) or `paper-trace` (devices replaying the example trace).
    pub fn builtin(name: &str) -> Result<Scenario, ScenarioError> {
        let mut scenario = Scenario::paper();
        match name {
            "paper" => {}
            "paper-small" => {
                scenario.name = name.into();
                scenario.devices = 3;
                scenario.servers = 2;
            }
            "scaled" => {
                scenario.name = name.into();
                scenario.devices = 50;
                scenario.servers = 10;
            }
            "overload" => {
                // 40× the paper's load against small queue caps: most
                // arrivals are dropped (counted, with their reason) and
                // memory stays bounded.
                scenario.name = name.into();
                scenario.arrivals.tasks_per_slot = 200.0;
                scenario.device.queue_cap_bits = 5_000_000;
                scenario.server.queue_cap_bits = 50_000_000;
            }
            "paper-mobile" => {
                // Pedestrians to slow vehicles in a 240 m square: a device's
                // nearest server changes every few tens of seconds.
                scenario.name = name.into();
                scenario.mobility = Some(MobilityConfig {
                    width_m: 240.0,
                    height_m: 240.0,
                    servers: Vec::new(),
                    devices: DeviceMotion::RandomWaypoint { min_speed_mps: 1.0, max_speed_mps: 10.0, pause_s: 2.0 },
                });
            }
            "paper-trace" => {
                // The example trace that ships in model/examples/.
                scenario.name = name.into();
                let samples = crate::mobility::parse_trace(EXAMPLE_TRACE, EXAMPLE_TRACE_PATH)?;
                scenario.mobility = Some(MobilityConfig {
                    width_m: 240.0,
                    height_m: 240.0,
                    servers: Vec::new(),
                    devices: DeviceMotion::Trace { file: EXAMPLE_TRACE_PATH.into(), samples },
                });
            }
            other => return Err(ScenarioError::UnknownBuiltin(crate::excerpt::excerpt(other).into())),
        }
        Ok(scenario)
    }

    /// The same scenario with M devices and S servers, named
    /// `{name}-{M}x{S}` (every per-device and per-server figure is kept).
    pub fn resized(&self, devices: usize, servers: usize) -> Result<Scenario, ScenarioError> {
        let mut scenario = self.clone();
        scenario.name = format!("{}-{devices}x{servers}", self.name);
        scenario.devices = devices;
        scenario.servers = servers;
        scenario.validate()?;
        Ok(scenario)
    }

    /// A built-in name, or else a path to a TOML file.
    pub fn load(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        if Path::new(name_or_path).exists() {
            let text = std::fs::read_to_string(name_or_path).map_err(|source| ScenarioError::Io {
                path: name_or_path.into(),
                source,
            })?;
            let folder = Path::new(name_or_path).parent().unwrap_or(Path::new(""));
            Scenario::from_toml_in(&text, folder)
        } else {
            Scenario::builtin(name_or_path)
        }
    }

    /// Parses and validates a TOML scenario. It reads no file: a mobility
    /// trace must come with its samples, as a loaded scenario carries them
    /// (agents parse what the controller sends, and must not open files
    /// it names).
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let scenario = Scenario::parse(text)?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// [`Scenario::from_toml`] for a scenario file: a mobility trace file
    /// it names by a relative path is read from `folder` (the file's own).
    pub fn from_toml_in(text: &str, folder: &Path) -> Result<Scenario, ScenarioError> {
        let mut scenario = Scenario::parse(text)?;
        if let Some(mobility) = &mut scenario.mobility {
            mobility.load_trace(folder)?;
        }
        scenario.validate()?;
        Ok(scenario)
    }

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        toml::from_str(text).map_err(|e| ScenarioError::Parse(crate::excerpt::excerpt_lines(&e.to_string())))
    }

    pub fn to_toml(&self) -> String {
        // Serialising plain structs of numbers and strings cannot fail.
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot serialise: {e}\n"))
    }

    /// Checks every range; the first violation is returned.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let check = Checker;
        check.text("name", &self.name)?;
        check.count("devices", self.devices, 1, 100_000)?;
        check.count("servers", self.servers, 1, 10_000)?;
        check.positive("slot_seconds", self.slot_seconds)?;

        let a = &self.arrivals;
        check.range("arrivals.tasks_per_slot", a.tasks_per_slot, 0.0, 1e6)?;
        match a.task_bits {
            SizeDistribution::Fixed { bits } => {
                check.count("arrivals.task_bits.bits", bits as usize, 1, usize::MAX)?
            }
            SizeDistribution::Uniform { min, max } => {
                check.count("arrivals.task_bits.min", min as usize, 1, usize::MAX)?;
                if max < min {
                    return Err(invalid("arrivals.task_bits.max", format!("must be ≥ min ({min}), got {max}")));
                }
            }
            SizeDistribution::Exponential { mean, max } => {
                check.range("arrivals.task_bits.mean", mean, 1.0, 1e15)?;
                if (max as f64) < mean {
                    return Err(invalid("arrivals.task_bits.max", format!("must be ≥ mean ({mean}), got {max}")));
                }
            }
        }

        let c = &self.channel;
        check.positive("channel.bandwidth_hz", c.bandwidth_hz)?;
        check.positive("channel.noise_w", c.noise_w)?;
        check.range("channel.correlation", c.correlation, 0.0, 1.0)?;
        if c.correlation >= 1.0 {
            return Err(invalid("channel.correlation", "must be < 1 (ρ = 1 freezes the channel)".into()));
        }
        check.positive("channel.reference_gain", c.reference_gain)?;
        check.range("channel.path_loss_exponent", c.path_loss_exponent, 0.0, 10.0)?;
        check.positive("channel.min_distance_m", c.min_distance_m)?;
        check.positive("channel.max_distance_m", c.max_distance_m)?;
        if c.max_distance_m < c.min_distance_m {
            return Err(invalid(
                "channel.max_distance_m",
                format!("must be ≥ min_distance_m ({}), got {}", c.min_distance_m, c.max_distance_m),
            ));
        }

        let d = &self.device;
        check.range("device.tx_power_w", d.tx_power_w, 0.0, 1e3)?;
        check.positive("device.cpu_hz", d.cpu_hz)?;
        check.positive("device.cycles_per_bit", d.cycles_per_bit)?;
        check.range("device.kappa", d.kappa, 0.0, 1.0)?;
        check.range("device.promised_bps", d.promised_bps, 0.0, 1e15)?;
        check.count("device.queue_cap_bits", d.queue_cap_bits as usize, 1, usize::MAX)?;

        let s = &self.server;
        check.positive("server.cpu_hz", s.cpu_hz)?;
        check.range("server.result_delay_s", s.result_delay_s, 0.0, 3600.0)?;
        check.count("server.queue_cap_bits", s.queue_cap_bits as usize, 1, usize::MAX)?;

        let k = &self.control;
        check.range("control.v", k.v, 0.0, 1e12)?;
        check.range("control.omega", k.omega, 0.0, 1e12)?;
        check.positive("control.queue_unit_bits", k.queue_unit_bits)?;

        if let Some(dynamics) = &self.dynamics {
            check.count("dynamics.period_slots", dynamics.period_slots as usize, 1, usize::MAX)?;
            check.range("dynamics.arrival_amplitude", dynamics.arrival_amplitude, 0.0, 0.999)?;
            check.range("dynamics.channel_amplitude", dynamics.channel_amplitude, 0.0, 0.999)?;
            if let Some(step) = &dynamics.arrival_step {
                check.range("dynamics.arrival_step.factor", step.factor, 1e-3, 10.0)?;
            }
        }
        if let Some(mobility) = &self.mobility {
            mobility.validate(self.devices, self.servers)?;
        }
        Ok(())
    }

    /// Bits one device computes locally in a full slot: τ f / L.
    pub fn local_bits_per_slot(&self) -> u64 {
        (self.slot_seconds * self.device.cpu_hz / self.device.cycles_per_bit).floor() as u64
    }

    /// Bits a server computes in a full slot at its whole frequency: τ F / L.
    pub fn server_bits_per_slot(&self) -> f64 {
        self.slot_seconds * self.server.cpu_hz / self.device.cycles_per_bit
    }

    /// λ in slot `slot`, after any dynamics.
    pub fn arrival_rate(&self, slot: u64) -> f64 {
        let factor = self.dynamics.as_ref().map_or(1.0, |d| d.arrival_factor(slot));
        self.arrivals.tasks_per_slot * factor
    }

    /// Path-gain multiplier in slot `slot`, after any dynamics.
    pub fn channel_factor(&self, slot: u64) -> f64 {
        self.dynamics.as_ref().map_or(1.0, |d| d.channel_factor(slot))
    }

    /// Mean offered load of one device in bits per slot.
    pub fn offered_bits_per_slot(&self) -> f64 {
        self.arrivals.tasks_per_slot * self.arrivals.task_bits.mean_bits()
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_toml())
    }
}

/// The trace behind the `paper-trace` built-in, and where it ships.
const EXAMPLE_TRACE: &str = include_str!("../examples/mobility-trace.csv");
const EXAMPLE_TRACE_PATH: &str = "model/examples/mobility-trace.csv";

pub(crate) fn invalid(field: &str, reason: String) -> ScenarioError {
    ScenarioError::Invalid { field: field.into(), reason }
}

/// Range checks that all phrase their errors the same way.
pub(crate) struct Checker;

impl Checker {
    pub(crate) fn text(&self, field: &str, value: &str) -> Result<(), ScenarioError> {
        if value.trim().is_empty() {
            return Err(invalid(field, "must not be empty".into()));
        }
        Ok(())
    }

    pub(crate) fn count(&self, field: &str, value: usize, min: usize, max: usize) -> Result<(), ScenarioError> {
        if value < min || value > max {
            return Err(invalid(field, format!("must be in [{min}, {max}], got {value}")));
        }
        Ok(())
    }

    pub(crate) fn finite(&self, field: &str, value: f64) -> Result<(), ScenarioError> {
        if !value.is_finite() {
            return Err(invalid(field, format!("must be a finite number, got {value}")));
        }
        Ok(())
    }

    pub(crate) fn positive(&self, field: &str, value: f64) -> Result<(), ScenarioError> {
        self.finite(field, value)?;
        if value <= 0.0 {
            return Err(invalid(field, format!("must be > 0, got {value}")));
        }
        Ok(())
    }

    pub(crate) fn range(&self, field: &str, value: f64, min: f64, max: f64) -> Result<(), ScenarioError> {
        self.finite(field, value)?;
        if value < min || value > max {
            return Err(invalid(field, format!("must be in [{min}, {max}], got {value}")));
        }
        Ok(())
    }
}
