//! The wireless channel: h_ms(t) = g_ms |ξ_ms(t)|² with path loss g from a
//! distance and Rayleigh fading ξ ~ CN(0, 1), optionally AR(1)-correlated in
//! time, and the Shannon rate r = W log2(1 + P h / N0). The distance is
//! drawn once per run, or with mobility recomputed every slot from where
//! the device is.

use crate::mobility::{Position, Trajectory};
use crate::scenario::{ChannelConfig, Fading, Scenario};
use crate::streams::{Purpose, stream};
use num_complex::Complex64;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// g = g0 · d^-α (d in metres, g0 the gain at 1 m).
pub fn path_gain(cfg: &ChannelConfig, distance_m: f64) -> f64 {
    cfg.reference_gain * distance_m.powf(-cfg.path_loss_exponent)
}

/// r = W log2(1 + P h / N0) in bit/s.
pub fn shannon_rate(cfg: &ChannelConfig, tx_power_w: f64, gain: f64) -> f64 {
    cfg.bandwidth_hz * (1.0 + tx_power_w * gain / cfg.noise_w).log2()
}

/// Distances from device `device` to every server, fixed for a run and drawn
/// from the run seed, so every process derives the same geometry (the
/// static geometry of a scenario without mobility).
pub fn device_distances(scenario: &Scenario, seed: u64, device: usize) -> Vec<f64> {
    let mut rng = stream(seed, Purpose::Geometry, device as u64);
    let c = &scenario.channel;
    (0..scenario.servers)
        .map(|_| {
            if c.max_distance_m > c.min_distance_m {
                rng.random_range(c.min_distance_m..=c.max_distance_m)
            } else {
                c.min_distance_m
            }
        })
        .collect()
}

/// A moving device: where it is, where the servers are, and the channel
/// parameters that turn distance into path gain.
#[derive(Debug, Clone)]
struct Motion {
    trajectory: Trajectory,
    servers: Vec<Position>,
    channel: ChannelConfig,
    slot_seconds: f64,
}

impl Motion {
    /// Path gains at the device's current position, then one slot onward.
    fn step(&mut self, path_gains: &mut [f64]) {
        let here = self.trajectory.position();
        for (g, server) in path_gains.iter_mut().zip(&self.servers) {
            *g = path_gain(&self.channel, here.distance_to(server).max(self.channel.min_distance_m));
        }
        self.trajectory.advance(self.slot_seconds);
    }
}

/// The channels from one device to every server, evolving slot by slot.
#[derive(Debug, Clone)]
pub struct DeviceChannel {
    fading: Fading,
    correlation: f64,
    /// `None`: the path gains stay those of the run's drawn distances.
    motion: Option<Motion>,
    position: Option<Position>,
    path_gains: Vec<f64>,
    xi: Vec<Complex64>,
    gains: Vec<f64>,
    rng: ChaCha8Rng,
}

impl DeviceChannel {
    pub fn new(scenario: &Scenario, seed: u64, device: usize) -> DeviceChannel {
        let motion = scenario.mobility.as_ref().map(|mobility| Motion {
            trajectory: Trajectory::new(mobility, seed, device),
            servers: mobility.server_positions(scenario.servers),
            channel: scenario.channel.clone(),
            slot_seconds: scenario.slot_seconds,
        });
        let path_gains = match motion {
            Some(_) => vec![0.0; scenario.servers],
            None => device_distances(scenario, seed, device).into_iter().map(|d| path_gain(&scenario.channel, d)).collect(),
        };
        DeviceChannel {
            fading: scenario.channel.fading,
            correlation: scenario.channel.correlation,
            motion,
            position: None,
            path_gains,
            xi: Vec::new(),
            gains: vec![0.0; scenario.servers],
            rng: stream(seed, Purpose::Fading, device as u64),
        }
    }

    /// Draws the next slot's gains h_ms and returns them.
    pub fn next_slot(&mut self) -> &[f64] {
        if let Some(motion) = &mut self.motion {
            self.position = Some(motion.trajectory.position());
            motion.step(&mut self.path_gains);
        }
        match self.fading {
            Fading::None => self.gains.copy_from_slice(&self.path_gains),
            Fading::Rayleigh => {
                if self.xi.is_empty() {
                    self.xi = (0..self.path_gains.len()).map(|_| draw_cn(&mut self.rng)).collect();
                } else {
                    // AR(1): keeps E|ξ|² = 1 for any ρ.
                    let rho = self.correlation;
                    let innovation = (1.0 - rho * rho).sqrt();
                    for xi in self.xi.iter_mut() {
                        *xi = *xi * rho + draw_cn(&mut self.rng) * innovation;
                    }
                }
                for ((h, g), xi) in self.gains.iter_mut().zip(&self.path_gains).zip(&self.xi) {
                    *h = g * xi.norm_sqr();
                }
            }
        }
        &self.gains
    }

    /// The gains of the current slot (zeros before the first draw).
    pub fn gains(&self) -> &[f64] {
        &self.gains
    }

    pub fn path_gains(&self) -> &[f64] {
        &self.path_gains
    }

    /// Where a moving device was in the current slot (`None` without
    /// mobility, or before the first slot).
    pub fn position(&self) -> Option<Position> {
        self.position
    }
}

/// ξ ~ CN(0, 1): real and imaginary parts N(0, ½).
fn draw_cn(rng: &mut ChaCha8Rng) -> Complex64 {
    let re: f64 = StandardNormal.sample(rng);
    let im: f64 = StandardNormal.sample(rng);
    Complex64::new(re, im) * std::f64::consts::FRAC_1_SQRT_2
}
