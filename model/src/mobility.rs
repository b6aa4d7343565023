//! Where devices and servers are, slot by slot. Without a `[mobility]`
//! section a device's distance to each server is drawn once per run (the
//! paper's static geometry); with one, servers stand at coordinates in a
//! rectangular area and each device moves by a model of its own: static,
//! random waypoint, Gauss–Markov, or a replayed trace. Every trajectory is
//! drawn from the run seed and the device id, so the simulator and a device
//! agent in another process see the same positions.

use crate::scenario::{Checker, ScenarioError, invalid};
use crate::streams::{Purpose, stream};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::f64::consts::{PI, TAU};
use std::path::Path;

/// A point in the area, in metres from its lower-left corner.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    pub x_m: f64,
    pub y_m: f64,
}

impl Position {
    pub fn distance_to(&self, other: &Position) -> f64 {
        (self.x_m - other.x_m).hypot(self.y_m - other.y_m)
    }
}

/// The `[mobility]` section: the area, the servers' coordinates and how
/// devices move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MobilityConfig {
    pub width_m: f64,
    pub height_m: f64,
    /// One position per server; empty: the servers stand evenly on a circle
    /// of radius min(width, height) / 4 around the centre (one server: at
    /// the centre), so every layout covers the area alike.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<Position>,
    pub devices: DeviceMotion,
}

/// How every device moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DeviceMotion {
    /// Placed uniformly at random in the area, never moving.
    Static,
    /// Walk straight to a uniform random point at a speed drawn uniformly in
    /// [min, max], pause, repeat.
    RandomWaypoint {
        min_speed_mps: f64,
        max_speed_mps: f64,
        pause_s: f64,
    },
    /// Speed and direction each slot: v ← α v + (1 − α) v̄ + √(1 − α²) σ w,
    /// reflected at the area's edges (α per slot: 0 is a fresh draw each
    /// slot, near 1 a smooth path).
    GaussMarkov {
        mean_speed_mps: f64,
        speed_std_mps: f64,
        direction_std_rad: f64,
        alpha: f64,
    },
    /// Positions replayed from a CSV file `time_s,device,x_m,y_m`,
    /// interpolated linearly between samples and held before the first and
    /// after the last. The file is read when the scenario is loaded (a
    /// relative path from the scenario file's folder) and its samples travel
    /// inside the scenario, so agents never need the file.
    Trace {
        file: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        samples: Vec<TraceSample>,
    },
}

/// One row of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSample {
    pub time_s: f64,
    pub device: usize,
    pub x_m: f64,
    pub y_m: f64,
}

/// The header every trace file starts with (after `#` comment lines).
pub const TRACE_HEADER: &str = "time_s,device,x_m,y_m";

impl MobilityConfig {
    /// The servers' coordinates: the configured ones, or the default circle.
    pub fn server_positions(&self, servers: usize) -> Vec<Position> {
        if !self.servers.is_empty() {
            return self.servers.clone();
        }
        let centre = Position {
            x_m: self.width_m / 2.0,
            y_m: self.height_m / 2.0,
        };
        if servers == 1 {
            return vec![centre];
        }
        let radius = self.width_m.min(self.height_m) / 4.0;
        (0..servers)
            .map(|s| {
                let angle = TAU * s as f64 / servers as f64;
                Position {
                    x_m: centre.x_m + radius * angle.cos(),
                    y_m: centre.y_m + radius * angle.sin(),
                }
            })
            .collect()
    }

    fn contains(&self, p: &Position) -> bool {
        (0.0..=self.width_m).contains(&p.x_m) && (0.0..=self.height_m).contains(&p.y_m)
    }

    /// Reads a trace's file into its samples if they are not there yet,
    /// resolving a relative path from `base` (the scenario file's folder).
    pub fn load_trace(&mut self, base: &Path) -> Result<(), ScenarioError> {
        let DeviceMotion::Trace { file, samples } = &mut self.devices else {
            return Ok(());
        };
        if !samples.is_empty() {
            return Ok(());
        }
        let path = base.join(&*file);
        let text = std::fs::read_to_string(&path).map_err(|source| ScenarioError::Io {
            path: path.display().to_string(),
            source,
        })?;
        *samples = parse_trace(&text, &path.display().to_string())?;
        Ok(())
    }

    /// Checks every field; `devices` and `servers` are the scenario's counts.
    pub(crate) fn validate(&self, devices: usize, servers: usize) -> Result<(), ScenarioError> {
        let check = Checker;
        check.range("mobility.width_m", self.width_m, 1e-3, 1e7)?;
        check.range("mobility.height_m", self.height_m, 1e-3, 1e7)?;
        if !self.servers.is_empty() && self.servers.len() != servers {
            return Err(invalid(
                "mobility.servers",
                format!(
                    "lists {} positions for {servers} servers",
                    self.servers.len()
                ),
            ));
        }
        for (s, p) in self.servers.iter().enumerate() {
            if !self.contains(p) {
                return Err(invalid(&format!("mobility.servers[{s}]"), outside(self, p)));
            }
        }
        self.validate_motion(devices)
    }

    fn validate_motion(&self, devices: usize) -> Result<(), ScenarioError> {
        let check = Checker;
        match &self.devices {
            DeviceMotion::Static => Ok(()),
            DeviceMotion::RandomWaypoint {
                min_speed_mps,
                max_speed_mps,
                pause_s,
            } => {
                // A zero speed would never reach its waypoint.
                check.range("mobility.devices.min_speed_mps", *min_speed_mps, 1e-6, 1e4)?;
                check.range(
                    "mobility.devices.max_speed_mps",
                    *max_speed_mps,
                    *min_speed_mps,
                    1e4,
                )?;
                check.range("mobility.devices.pause_s", *pause_s, 0.0, 1e6)
            }
            DeviceMotion::GaussMarkov {
                mean_speed_mps,
                speed_std_mps,
                direction_std_rad,
                alpha,
            } => {
                check.range("mobility.devices.mean_speed_mps", *mean_speed_mps, 0.0, 1e4)?;
                check.range("mobility.devices.speed_std_mps", *speed_std_mps, 0.0, 1e4)?;
                check.range(
                    "mobility.devices.direction_std_rad",
                    *direction_std_rad,
                    0.0,
                    TAU,
                )?;
                check.range("mobility.devices.alpha", *alpha, 0.0, 1.0)
            }
            DeviceMotion::Trace { file, samples } => self.validate_trace(file, samples, devices),
        }
    }

    fn validate_trace(
        &self,
        file: &str,
        samples: &[TraceSample],
        devices: usize,
    ) -> Result<(), ScenarioError> {
        let field = "mobility.devices.samples";
        if samples.is_empty() {
            return Err(invalid(
                field,
                format!(
                    "no samples: the trace `{}` is read only when the scenario is loaded from its file",
                    crate::excerpt::excerpt(file)
                ),
            ));
        }
        for (i, s) in samples.iter().enumerate() {
            let p = Position {
                x_m: s.x_m,
                y_m: s.y_m,
            };
            if !s.time_s.is_finite() || s.time_s < 0.0 {
                return Err(invalid(
                    &format!("{field}[{i}].time_s"),
                    format!("must be a time ≥ 0 s, got {}", s.time_s),
                ));
            }
            if !self.contains(&p) {
                return Err(invalid(&format!("{field}[{i}]"), outside(self, &p)));
            }
        }
        match (0..devices).find(|d| !samples.iter().any(|s| s.device == *d)) {
            Some(missing) => Err(invalid(
                field,
                format!("the trace has no sample for device {missing} of {devices}"),
            )),
            None => Ok(()),
        }
    }
}

fn outside(area: &MobilityConfig, p: &Position) -> String {
    format!(
        "({}, {}) lies outside the {} × {} m area",
        p.x_m, p.y_m, area.width_m, area.height_m
    )
}

/// Parses a trace file's text; errors name `path` and the line.
pub fn parse_trace(text: &str, path: &str) -> Result<Vec<TraceSample>, ScenarioError> {
    let error = |line: usize, reason: String| ScenarioError::Trace {
        path: path.to_string(),
        line,
        reason,
    };
    let mut rows = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    match rows.next() {
        Some((_, header)) if header.replace(' ', "") == TRACE_HEADER => {}
        Some((line, header)) => {
            return Err(error(
                line,
                format!(
                    "expected the header `{TRACE_HEADER}`, got `{}`",
                    crate::excerpt::excerpt(header)
                ),
            ));
        }
        None => {
            return Err(error(
                1,
                format!("empty: expected the header `{TRACE_HEADER}` and samples"),
            ));
        }
    }
    let mut samples = Vec::new();
    for (line, row) in rows {
        let fields: Vec<&str> = row.split(',').map(str::trim).collect();
        let [time, device, x, y] = fields[..] else {
            return Err(error(
                line,
                format!("expected 4 fields ({TRACE_HEADER}), got {}", fields.len()),
            ));
        };
        let number = |name: &str, text: &str| match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(error(
                line,
                format!(
                    "{name} `{}` is not a finite number",
                    crate::excerpt::excerpt(text)
                ),
            )),
        };
        let device = device.parse::<usize>().map_err(|_| {
            error(
                line,
                format!(
                    "device `{}` is not a device index",
                    crate::excerpt::excerpt(device)
                ),
            )
        })?;
        let time_s = number("time_s", time)?;
        if time_s < 0.0 {
            return Err(error(line, format!("time_s must be ≥ 0, got {time_s}")));
        }
        samples.push(TraceSample {
            time_s,
            device,
            x_m: number("x_m", x)?,
            y_m: number("y_m", y)?,
        });
    }
    if samples.is_empty() {
        return Err(error(1, "no samples after the header".into()));
    }
    Ok(samples)
}

/// One device's path through the area, advanced slot by slot.
#[derive(Debug, Clone)]
pub struct Trajectory {
    position: Position,
    time_s: f64,
    motion: Motion,
}

#[derive(Debug, Clone)]
enum Motion {
    Static,
    Waypoint(Waypoint),
    GaussMarkov(GaussMarkov),
    /// The device's samples (time, position), sorted by time.
    Trace(Vec<(f64, Position)>),
}

#[derive(Debug, Clone)]
struct Waypoint {
    min_speed: f64,
    max_speed: f64,
    pause_s: f64,
    target: Position,
    speed: f64,
    pause_left_s: f64,
    width: f64,
    height: f64,
    rng: ChaCha8Rng,
}

#[derive(Debug, Clone)]
struct GaussMarkov {
    mean_speed: f64,
    speed_std: f64,
    direction_std: f64,
    alpha: f64,
    speed: f64,
    direction: f64,
    mean_direction: f64,
    width: f64,
    height: f64,
    rng: ChaCha8Rng,
}

fn uniform_point(rng: &mut ChaCha8Rng, width: f64, height: f64) -> Position {
    Position {
        x_m: rng.random_range(0.0..=width),
        y_m: rng.random_range(0.0..=height),
    }
}

impl Trajectory {
    /// Device `device`'s trajectory for the run seeded `seed`, at time 0.
    pub fn new(config: &MobilityConfig, seed: u64, device: usize) -> Trajectory {
        let (width, height) = (config.width_m, config.height_m);
        let mut rng = stream(seed, Purpose::Mobility, device as u64);
        let start = uniform_point(&mut rng, width, height);
        let motion = match &config.devices {
            DeviceMotion::Static => Motion::Static,
            &DeviceMotion::RandomWaypoint {
                min_speed_mps,
                max_speed_mps,
                pause_s,
            } => {
                let target = uniform_point(&mut rng, width, height);
                let speed = rng.random_range(min_speed_mps..=max_speed_mps);
                Motion::Waypoint(Waypoint {
                    min_speed: min_speed_mps,
                    max_speed: max_speed_mps,
                    pause_s,
                    target,
                    speed,
                    pause_left_s: 0.0,
                    width,
                    height,
                    rng,
                })
            }
            &DeviceMotion::GaussMarkov {
                mean_speed_mps,
                speed_std_mps,
                direction_std_rad,
                alpha,
            } => {
                let direction = rng.random_range(0.0..TAU);
                Motion::GaussMarkov(GaussMarkov {
                    mean_speed: mean_speed_mps,
                    speed_std: speed_std_mps,
                    direction_std: direction_std_rad,
                    alpha,
                    speed: mean_speed_mps,
                    direction,
                    mean_direction: direction,
                    width,
                    height,
                    rng,
                })
            }
            DeviceMotion::Trace { samples, .. } => {
                let mut own: Vec<(f64, Position)> = samples
                    .iter()
                    .filter(|s| s.device == device)
                    .map(|s| {
                        (
                            s.time_s,
                            Position {
                                x_m: s.x_m,
                                y_m: s.y_m,
                            },
                        )
                    })
                    .collect();
                own.sort_by(|a, b| a.0.total_cmp(&b.0));
                Motion::Trace(own)
            }
        };
        let mut trajectory = Trajectory {
            position: start,
            time_s: 0.0,
            motion,
        };
        trajectory.position = trajectory.trace_position().unwrap_or(start);
        trajectory
    }

    pub fn position(&self) -> Position {
        self.position
    }

    /// Moves the device on by `dt_s` seconds.
    pub fn advance(&mut self, dt_s: f64) {
        self.time_s += dt_s;
        match &mut self.motion {
            Motion::Static => {}
            Motion::Waypoint(w) => w.advance(&mut self.position, dt_s),
            Motion::GaussMarkov(g) => g.advance(&mut self.position, dt_s),
            Motion::Trace(_) => {
                if let Some(p) = self.trace_position() {
                    self.position = p;
                }
            }
        }
    }

    /// The trace's position at the current time, linearly interpolated.
    fn trace_position(&self) -> Option<Position> {
        let Motion::Trace(samples) = &self.motion else {
            return None;
        };
        let t = self.time_s;
        let after = samples.partition_point(|(time, _)| *time <= t);
        match (after.checked_sub(1).map(|i| samples[i]), samples.get(after)) {
            (None, next) => next.map(|s| s.1),
            (Some(prev), None) => Some(prev.1),
            (Some((t0, p0)), Some(&(t1, p1))) => {
                let share = (t - t0) / (t1 - t0);
                Some(Position {
                    x_m: p0.x_m + share * (p1.x_m - p0.x_m),
                    y_m: p0.y_m + share * (p1.y_m - p0.y_m),
                })
            }
        }
    }
}

impl Waypoint {
    fn advance(&mut self, position: &mut Position, dt_s: f64) {
        let mut left = dt_s;
        while left > 0.0 {
            if self.pause_left_s > 0.0 {
                let pause = self.pause_left_s.min(left);
                self.pause_left_s -= pause;
                left -= pause;
                continue;
            }
            let distance = position.distance_to(&self.target);
            let reach = self.speed * left;
            if reach < distance {
                let share = reach / distance;
                position.x_m += share * (self.target.x_m - position.x_m);
                position.y_m += share * (self.target.y_m - position.y_m);
                return;
            }
            *position = self.target;
            left -= distance / self.speed;
            self.pause_left_s = self.pause_s;
            self.target = uniform_point(&mut self.rng, self.width, self.height);
            self.speed = self.rng.random_range(self.min_speed..=self.max_speed);
        }
    }
}

impl GaussMarkov {
    fn advance(&mut self, position: &mut Position, dt_s: f64) {
        let a = self.alpha;
        let spread = (1.0 - a * a).sqrt();
        let (w_speed, w_direction): (f64, f64) = (
            StandardNormal.sample(&mut self.rng),
            StandardNormal.sample(&mut self.rng),
        );
        self.speed =
            (a * self.speed + (1.0 - a) * self.mean_speed + spread * self.speed_std * w_speed)
                .max(0.0);
        self.direction = a * self.direction
            + (1.0 - a) * self.mean_direction
            + spread * self.direction_std * w_direction;
        position.x_m += self.speed * dt_s * self.direction.cos();
        position.y_m += self.speed * dt_s * self.direction.sin();
        // Reflect off the edges, turning the mean direction too so that
        // the walk does not keep pressing against the wall.
        if let Some(x) = reflect(position.x_m, self.width) {
            position.x_m = x;
            self.direction = PI - self.direction;
            self.mean_direction = PI - self.mean_direction;
        }
        if let Some(y) = reflect(position.y_m, self.height) {
            position.y_m = y;
            self.direction = -self.direction;
            self.mean_direction = -self.mean_direction;
        }
    }
}

/// `v` mirrored back into [0, limit] if it left it (a step longer than
/// the area is clamped).
fn reflect(v: f64, limit: f64) -> Option<f64> {
    if v < 0.0 {
        Some((-v).min(limit))
    } else if v > limit {
        Some((2.0 * limit - v).max(0.0))
    } else {
        None
    }
}

/// The index of the server nearest `p` (the best path gain).
pub fn nearest_server(p: &Position, servers: &[Position]) -> usize {
    servers
        .iter()
        .enumerate()
        .min_by(|a, b| p.distance_to(a.1).total_cmp(&p.distance_to(b.1)))
        .map_or(0, |(s, _)| s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn area(devices: DeviceMotion) -> MobilityConfig {
        MobilityConfig {
            width_m: 200.0,
            height_m: 100.0,
            servers: Vec::new(),
            devices,
        }
    }

    fn inside(config: &MobilityConfig, p: Position) -> bool {
        config.contains(&p)
    }

    #[test]
    fn random_waypoint_stays_in_the_area_within_its_speed_bounds() {
        let config = area(DeviceMotion::RandomWaypoint {
            min_speed_mps: 2.0,
            max_speed_mps: 8.0,
            pause_s: 0.0,
        });
        let dt = 0.1;
        for device in 0..5 {
            let mut t = Trajectory::new(&config, 11, device);
            let mut fastest: f64 = 0.0;
            for _ in 0..5000 {
                let before = t.position();
                t.advance(dt);
                assert!(
                    inside(&config, t.position()),
                    "device {device} left the area: {:?}",
                    t.position()
                );
                fastest = fastest.max(before.distance_to(&t.position()) / dt);
            }
            assert!(
                fastest <= 8.0 + 1e-9,
                "device {device} moved at {fastest} m/s"
            );
            assert!(
                fastest >= 2.0,
                "device {device} never moved at its least speed: {fastest} m/s"
            );
        }
    }

    #[test]
    fn random_waypoint_pauses_at_each_waypoint() {
        let config = area(DeviceMotion::RandomWaypoint {
            min_speed_mps: 5.0,
            max_speed_mps: 5.0,
            pause_s: 3.0,
        });
        let mut t = Trajectory::new(&config, 2, 0);
        let still = (0..3000)
            .filter(|_| {
                let before = t.position();
                t.advance(0.1);
                before == t.position()
            })
            .count();
        assert!(still > 100, "only {still} still slots with 3 s pauses");
    }

    #[test]
    fn gauss_markov_reverts_to_its_mean_speed() {
        let mut walk = match Trajectory::new(
            &area(DeviceMotion::GaussMarkov {
                mean_speed_mps: 4.0,
                speed_std_mps: 0.0,
                direction_std_rad: 0.0,
                alpha: 0.9,
            }),
            5,
            0,
        )
        .motion
        {
            Motion::GaussMarkov(g) => g,
            other => panic!("{other:?}"),
        };
        // Without noise the gap to the mean shrinks by α each step.
        walk.speed = 12.0;
        let mut p = Position {
            x_m: 100.0,
            y_m: 50.0,
        };
        for step in 1..=20 {
            walk.advance(&mut p, 0.1);
            let expected = 4.0 + 8.0 * 0.9f64.powi(step);
            assert!(
                (walk.speed - expected).abs() < 1e-9,
                "step {step}: {} vs {expected}",
                walk.speed
            );
        }
    }

    #[test]
    fn gauss_markov_averages_its_mean_speed_and_stays_in_the_area() {
        let config = area(DeviceMotion::GaussMarkov {
            mean_speed_mps: 3.0,
            speed_std_mps: 1.0,
            direction_std_rad: 0.5,
            alpha: 0.8,
        });
        let mut t = Trajectory::new(&config, 8, 1);
        let (mut total, steps) = (0.0, 20_000);
        for _ in 0..steps {
            t.advance(0.1);
            assert!(inside(&config, t.position()), "{:?}", t.position());
            let Motion::GaussMarkov(g) = &t.motion else {
                unreachable!()
            };
            total += g.speed;
        }
        let mean = total / steps as f64;
        assert!((mean - 3.0).abs() < 0.15, "mean speed {mean} m/s against 3");
    }

    #[test]
    fn a_trace_is_interpolated_and_held_at_its_ends() {
        let samples = parse_trace(
            "# a comment\ntime_s,device,x_m,y_m\n1.0,0,10,10\n3.0,0,30,50\n0,1,5,5\n",
            "t.csv",
        )
        .unwrap();
        let config = area(DeviceMotion::Trace {
            file: "t.csv".into(),
            samples,
        });
        let mut t = Trajectory::new(&config, 1, 0);
        assert_eq!(
            t.position(),
            Position {
                x_m: 10.0,
                y_m: 10.0
            },
            "held before the first sample"
        );
        t.advance(2.0);
        assert_eq!(
            t.position(),
            Position {
                x_m: 20.0,
                y_m: 30.0
            },
            "half-way at t = 2 s"
        );
        t.advance(5.0);
        assert_eq!(
            t.position(),
            Position {
                x_m: 30.0,
                y_m: 50.0
            },
            "held after the last sample"
        );
        assert_eq!(
            Trajectory::new(&config, 1, 1).position(),
            Position { x_m: 5.0, y_m: 5.0 }
        );
    }

    #[test]
    fn trace_errors_name_the_path_and_line() {
        let cases = [
            ("", 1, "header"),
            ("time,dev\n", 1, "header"),
            ("time_s,device,x_m,y_m\n", 1, "no samples"),
            ("time_s,device,x_m,y_m\n0,0,1,1\n1,0,2\n", 3, "4 fields"),
            ("time_s,device,x_m,y_m\n0,-1,1,1\n", 2, "device `-1`"),
            ("# c\ntime_s,device,x_m,y_m\n\n0,0,nan,1\n", 4, "x_m"),
            ("time_s,device,x_m,y_m\n-1,0,1,1\n", 2, "time_s"),
        ];
        for (text, line, words) in cases {
            match parse_trace(text, "walk.csv") {
                Err(e @ ScenarioError::Trace { line: got, .. }) => {
                    let message = e.to_string();
                    assert_eq!(got, line, "{text:?}: {message}");
                    assert!(
                        message.contains("walk.csv") && message.contains(words),
                        "{text:?}: {message}"
                    );
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_path_and_another_seed_another() {
        let config = area(DeviceMotion::RandomWaypoint {
            min_speed_mps: 1.0,
            max_speed_mps: 9.0,
            pause_s: 1.0,
        });
        let path = |seed: u64| {
            let mut t = Trajectory::new(&config, seed, 3);
            (0..500)
                .map(|_| {
                    t.advance(0.1);
                    t.position()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(path(4), path(4));
        assert_ne!(path(4), path(5));
    }

    #[test]
    fn default_servers_stand_on_a_circle_around_the_centre() {
        let config = area(DeviceMotion::Static);
        assert_eq!(
            config.server_positions(1),
            vec![Position {
                x_m: 100.0,
                y_m: 50.0
            }]
        );
        let three = config.server_positions(3);
        let centre = Position {
            x_m: 100.0,
            y_m: 50.0,
        };
        assert!(
            three
                .iter()
                .all(|p| (p.distance_to(&centre) - 25.0).abs() < 1e-9),
            "{three:?}"
        );
        assert_eq!(
            nearest_server(
                &Position {
                    x_m: 130.0,
                    y_m: 50.0
                },
                &three
            ),
            0
        );
    }
}
