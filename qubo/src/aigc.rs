//! The AIGC (AI-generated content) system: devices send generation requests
//! to edge servers. A request uploads a prompt, waits in the server's queue,
//! is generated, and its result is downloaded:
//!
//!   latency_m = prompt_m / (b_m η^up_ms) + wait_m + w_m / v_s + result_m / (b_m η^down_ms),
//!
//! with b_m the device's pre-allocated band ([`crate::bandwidth`]), η the
//! spectral efficiencies of the device–server link, w_m the generation work
//! (denoising steps) and v_s the server's speed (steps/s per pipeline).
//!
//! **Queueing.** Server s runs c_s generation pipelines and already holds
//! Z_s steps of work. New requests on s are served in random order (they
//! arrive within one slot, so no order is privileged), with the work spread
//! over the pipelines: request m waits for the backlog and, on average, for
//! half of every other new request placed there,
//!
//!   wait_m = (Z_s + ½ Σ_{m'≠m on s} w_m') / (c_s v_s).
//!
//! Summed over requests this is linear plus one term per co-assigned pair,
//! (w_m + w_m') / (2 c_s v_s): the QUBO coupling ([`crate::problem`]).
//!
//! # Defaults and why
//! - Prompt 8–400 kbit: a text prompt (~1 kB) up to a compressed reference
//!   image for image-to-image (~50 kB).
//! - Result 0.5–4 Mbit: one 512×512 image as JPEG/PNG (60–500 kB).
//! - Work 20–50 denoising steps: the usual Stable Diffusion sampler range.
//! - Server speed 5–20 steps/s: a consumer GPU to a data-centre GPU at
//!   512×512; 1–2 pipelines; 0–100 steps already queued. Generation (1–10 s)
//!   then dominates and queueing is of the same order, so load matters.
//! - Radio: the model crate's paper channel (path loss g0 d^-2.5, g0 = 1e-3,
//!   N0 = 1e-9 W) at 50–150 m, P = 0.1 W up and 1 W down (an access point
//!   transmits more than a handset); mean gains (the selection holds for many
//!   slots, so fast fading is averaged out). Total band B = 20 MHz, the
//!   model's W. η = log2(1 + P g / N0) does not depend on the share b_m,
//!   which is what makes the pre-allocation a closed form.
//! - Pre-allocation uses each device's best link (the server it would pick
//!   alone), since it runs before the selection.

use crate::bandwidth::{equal_shares, optimal_shares};
use crate::error::QuboError;
use crate::problem::SelectionProblem;
use qmec_model::Scenario;
use qmec_model::channel::{path_gain, shannon_rate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Ranges the random instances are drawn from (uniform in [min, max]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AigcConfig {
    pub prompt_bits: (f64, f64),
    pub result_bits: (f64, f64),
    pub work_steps: (f64, f64),
    pub speed_steps_per_s: (f64, f64),
    pub pipelines: (usize, usize),
    pub backlog_steps: (f64, f64),
    pub distance_m: (f64, f64),
    pub device_tx_w: f64,
    pub server_tx_w: f64,
    pub total_band_hz: f64,
    /// Split the band by the square-root rule (true) or equally (false).
    pub optimal_bandwidth: bool,
}

impl Default for AigcConfig {
    fn default() -> AigcConfig {
        AigcConfig {
            prompt_bits: (8e3, 400e3),
            result_bits: (0.5e6, 4e6),
            work_steps: (20.0, 50.0),
            speed_steps_per_s: (5.0, 20.0),
            pipelines: (1, 2),
            backlog_steps: (0.0, 100.0),
            distance_m: (50.0, 150.0),
            device_tx_w: 0.1,
            server_tx_w: 1.0,
            total_band_hz: 20e6,
            optimal_bandwidth: true,
        }
    }
}

/// One generation request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub prompt_bits: f64,
    pub result_bits: f64,
    pub work_steps: f64,
}

/// One AIGC server.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AigcServer {
    pub speed_steps_per_s: f64,
    pub pipelines: usize,
    pub backlog_steps: f64,
}

/// The parts of one request's latency (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Latency {
    pub upload: f64,
    pub wait: f64,
    pub generation: f64,
    pub download: f64,
}

impl Latency {
    pub fn total(&self) -> f64 {
        self.upload + self.wait + self.generation + self.download
    }
}

/// A snapshot: requests, servers, links and the band each device holds.
#[derive(Debug, Clone, PartialEq)]
pub struct AigcInstance {
    pub requests: Vec<Request>,
    pub servers: Vec<AigcServer>,
    /// η^up_ms, row-major M × S (bit/s/Hz).
    pub uplink_se: Vec<f64>,
    /// η^down_ms, row-major M × S (bit/s/Hz).
    pub downlink_se: Vec<f64>,
    /// b_m (Hz).
    pub band_hz: Vec<f64>,
}

fn draw(rng: &mut ChaCha8Rng, (lo, hi): (f64, f64)) -> f64 {
    if hi > lo {
        rng.random_range(lo..=hi)
    } else {
        lo
    }
}

impl AigcInstance {
    /// A random instance of M devices and S servers from `seed`.
    pub fn random(
        config: &AigcConfig,
        devices: usize,
        servers: usize,
        seed: u64,
    ) -> Result<AigcInstance, QuboError> {
        if devices == 0 || servers == 0 {
            return Err(QuboError::Size(format!(
                "{devices} devices × {servers} servers: both must be ≥ 1"
            )));
        }
        check_config(config)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let channel = Scenario::paper().channel;
        let requests: Vec<Request> = (0..devices)
            .map(|_| Request {
                prompt_bits: draw(&mut rng, config.prompt_bits),
                result_bits: draw(&mut rng, config.result_bits),
                work_steps: draw(&mut rng, config.work_steps),
            })
            .collect();
        let servers_v: Vec<AigcServer> = (0..servers)
            .map(|_| AigcServer {
                speed_steps_per_s: draw(&mut rng, config.speed_steps_per_s),
                pipelines: rng.random_range(config.pipelines.0..=config.pipelines.1),
                backlog_steps: draw(&mut rng, config.backlog_steps),
            })
            .collect();
        let mut uplink_se = Vec::with_capacity(devices * servers);
        let mut downlink_se = Vec::with_capacity(devices * servers);
        for _ in 0..devices * servers {
            let g = path_gain(&channel, draw(&mut rng, config.distance_m));
            uplink_se.push(shannon_rate(&channel, config.device_tx_w, g) / channel.bandwidth_hz);
            downlink_se.push(shannon_rate(&channel, config.server_tx_w, g) / channel.bandwidth_hz);
        }
        let mut instance = AigcInstance {
            requests,
            servers: servers_v,
            uplink_se,
            downlink_se,
            band_hz: vec![0.0; devices],
        };
        instance.band_hz = if config.optimal_bandwidth {
            optimal_shares(config.total_band_hz, &instance.band_demand())?
        } else {
            equal_shares(config.total_band_hz, devices)
        };
        Ok(instance)
    }

    pub fn devices(&self) -> usize {
        self.requests.len()
    }

    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    /// K_m = prompt / η^up + result / η^down on the device's best link: the
    /// demand the pre-allocation weighs.
    pub fn band_demand(&self) -> Vec<f64> {
        let s_count = self.server_count();
        self.requests
            .iter()
            .enumerate()
            .map(|(m, r)| {
                let best = (0..s_count).max_by(|&a, &b| {
                    self.uplink_se[m * s_count + a].total_cmp(&self.uplink_se[m * s_count + b])
                });
                best.map_or(0.0, |s| {
                    r.prompt_bits / self.uplink_se[m * s_count + s]
                        + r.result_bits / self.downlink_se[m * s_count + s]
                })
            })
            .collect()
    }

    /// The latency of every request under `assignment`, computed directly
    /// from the model (queue included), not from QUBO coefficients.
    pub fn latencies(&self, assignment: &[usize]) -> Result<Vec<Latency>, QuboError> {
        let s_count = self.server_count();
        if assignment.len() != self.devices() || assignment.iter().any(|s| *s >= s_count) {
            return Err(QuboError::Assignment(format!(
                "{} entries for {} devices over {s_count} servers",
                assignment.len(),
                self.devices()
            )));
        }
        Ok(assignment
            .iter()
            .enumerate()
            .map(|(m, &s)| {
                let server = &self.servers[s];
                let capacity = server.pipelines as f64 * server.speed_steps_per_s;
                let others: f64 = assignment
                    .iter()
                    .enumerate()
                    .filter(|(o, t)| *o != m && **t == s)
                    .map(|(o, _)| self.requests[o].work_steps)
                    .sum();
                let r = &self.requests[m];
                let b = self.band_hz[m];
                Latency {
                    upload: r.prompt_bits / (b * self.uplink_se[m * s_count + s]),
                    wait: (server.backlog_steps + 0.5 * others) / capacity,
                    generation: r.work_steps / server.speed_steps_per_s,
                    download: r.result_bits / (b * self.downlink_se[m * s_count + s]),
                }
            })
            .collect())
    }

    /// Σ_m latency_m (seconds).
    pub fn total_latency(&self, assignment: &[usize]) -> Result<f64, QuboError> {
        Ok(self.latencies(assignment)?.iter().map(Latency::total).sum())
    }

    /// The selection problem: c_ms = latency alone (backlog wait included),
    /// load_ms = w_m / (2 c_s v_s).
    pub fn selection_problem(&self) -> Result<SelectionProblem, QuboError> {
        let (m_count, s_count) = (self.devices(), self.server_count());
        let mut linear = Vec::with_capacity(m_count * s_count);
        let mut load = Vec::with_capacity(m_count * s_count);
        for (m, r) in self.requests.iter().enumerate() {
            let b = self.band_hz[m];
            for (s, server) in self.servers.iter().enumerate() {
                let capacity = server.pipelines as f64 * server.speed_steps_per_s;
                linear.push(
                    r.prompt_bits / (b * self.uplink_se[m * s_count + s])
                        + server.backlog_steps / capacity
                        + r.work_steps / server.speed_steps_per_s
                        + r.result_bits / (b * self.downlink_se[m * s_count + s]),
                );
                load.push(r.work_steps / (2.0 * capacity));
            }
        }
        SelectionProblem::new(m_count, s_count, linear, load)
    }
}

fn check_config(c: &AigcConfig) -> Result<(), QuboError> {
    for (what, (lo, hi)) in [
        ("prompt_bits", c.prompt_bits),
        ("result_bits", c.result_bits),
        ("work_steps", c.work_steps),
        ("speed_steps_per_s", c.speed_steps_per_s),
        ("backlog_steps", c.backlog_steps),
        ("distance_m", c.distance_m),
    ] {
        if !(lo.is_finite() && hi.is_finite() && lo <= hi && lo >= 0.0) {
            return Err(QuboError::Value {
                what: format!("{what} range"),
                value: lo,
            });
        }
    }
    for (what, lo) in [
        ("speed_steps_per_s", c.speed_steps_per_s.0),
        ("distance_m", c.distance_m.0),
    ] {
        if lo <= 0.0 {
            return Err(QuboError::Value {
                what: format!("{what} minimum"),
                value: lo,
            });
        }
    }
    if c.pipelines.0 == 0 || c.pipelines.0 > c.pipelines.1 {
        return Err(QuboError::Size(format!(
            "pipelines range {:?}",
            c.pipelines
        )));
    }
    for (what, v) in [
        ("device_tx_w", c.device_tx_w),
        ("server_tx_w", c.server_tx_w),
        ("total_band_hz", c.total_band_hz),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(QuboError::Value {
                what: what.into(),
                value: v,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_order_service_waits_half_the_others_on_average() {
        // One pipeline, three new requests in a random order: the mean wait
        // of request 0 over all 6 orders is ½ (w1 + w2) / v.
        let work = [10.0, 20.0, 40.0];
        let orders = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        let mean_wait: f64 = orders
            .iter()
            .map(|o| {
                o.iter()
                    .take_while(|&&r| r != 0)
                    .map(|&r| work[r])
                    .sum::<f64>()
            })
            .sum::<f64>()
            / 6.0;
        assert_eq!(mean_wait, 0.5 * (20.0 + 40.0));
    }

    #[test]
    fn defaults_give_generation_dominated_latencies() {
        let inst = AigcInstance::random(&AigcConfig::default(), 10, 3, 1).expect("valid");
        let lat = inst.latencies(&[0; 10]).expect("valid");
        for l in &lat {
            assert!(
                l.upload > 0.0 && l.download > 0.0 && l.generation >= 1.0 && l.generation <= 10.0
            );
        }
        assert!((inst.band_hz.iter().sum::<f64>() - 20e6).abs() < 1.0);
        assert!(inst.latencies(&[3; 10]).is_err());
    }

    #[test]
    fn rejects_bad_config() {
        let bad = AigcConfig {
            pipelines: (0, 1),
            ..AigcConfig::default()
        };
        assert!(AigcInstance::random(&bad, 2, 2, 0).is_err());
        let bad = AigcConfig {
            total_band_hz: f64::NAN,
            ..AigcConfig::default()
        };
        assert!(AigcInstance::random(&bad, 2, 2, 0).is_err());
    }
}
