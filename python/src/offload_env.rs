//! The simulator as a reinforcement-learning environment, with no Python in
//! it: the Python classes only convert arrays, so an agent pays one call a
//! step and the tests here drive the logic directly.
//!
//! A step takes the agent's action, turns it into a feasible decision μ,
//! applies it to the slot's observed state with the simulator's own engine,
//! and observes the next slot. Its reward is the slot's drift-plus-penalty
//! objective Σ Ψ μ (what `lyapunov` maximises), and it can also solve the
//! exact LP on the same state, so an agent is scored as a share of the optimum.

use qmec_model::lyapunov::dpp_weights;
use qmec_model::{Decision, Matrix, PolicyError, Scenario, SystemState};
use qmec_qnn::projection::{self, Links, ProjectionTape};
use qmec_sim::Simulator;

/// Scores in the action space [−1, 1] are multiplied by this before the
/// softmax: e^(2·10) between the extremes lets an agent whose outputs are
/// squashed into the box still pick one option almost surely.
pub const SCORE_SCALE: f64 = 10.0;

/// What an action means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// M × (S+1) scores (column 0: stay local), projected onto the feasible
    /// set by the learned policies' projection: every finite action is valid.
    Scores,
    /// M × S shares μ themselves (an expert's decision): they must keep
    /// Σ_s μ ≤ 1 and Σ_m μ ≤ 1; a row that would send more than its queue
    /// holds is scaled down to the queue, as the LP's queue cap says.
    Shares,
}

impl ActionKind {
    pub fn parse(text: &str) -> Result<ActionKind, EnvError> {
        match text {
            "scores" => Ok(ActionKind::Scores),
            "shares" => Ok(ActionKind::Shares),
            other => Err(EnvError::UnknownActionKind(other.into())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("action: unknown kind `{0}` (known: scores, shares)")]
    UnknownActionKind(String),
    #[error("action: expected shape {expected:?}, got {got:?}")]
    Shape { expected: Vec<usize>, got: Vec<usize> },
    #[error("action[{device}, {column}] is {value}: every entry must be finite")]
    NotFinite { device: usize, column: usize, value: f64 },
    #[error("action: {0}")]
    Infeasible(PolicyError),
    #[error("the exact LP failed on slot {slot}: {reason}")]
    Lp { slot: u64, reason: PolicyError },
}

/// What a step reports beside the next observation (`info` in Python).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StepFigures {
    /// Σ Ψ μ of the applied decision: the reward.
    pub reward: f64,
    /// Bits served in the slot (local and offloaded).
    pub throughput_bits: f64,
    pub tx_power_w: f64,
    pub compute_power_w: f64,
    /// Σ_m Q_m, Σ_m H_m and Σ_s Z_s after the slot (bits).
    pub queue_bits: f64,
    pub virtual_bits: f64,
    pub server_bits: f64,
    /// The exact LP's Σ Ψ μ* on the same state; NaN when not measured.
    pub lp_objective: f64,
    /// reward / lp_objective; NaN when not measured or the optimum is not
    /// positive (nothing is worth offloading, so there is nothing to share).
    pub lp_share: f64,
}

/// A checked decision for the current slot, ready to apply.
#[derive(Debug, Clone)]
pub struct Prepared {
    decision: Decision,
    lp_objective: f64,
}

/// One environment: a simulator and the state of the slot about to be decided.
#[derive(Debug)]
pub struct OffloadEnv {
    kind: ActionKind,
    measure_lp: bool,
    simulator: Simulator,
    state: SystemState,
    tape: ProjectionTape,
}

impl OffloadEnv {
    /// An environment reset with `seed`.
    pub fn new(scenario: &Scenario, kind: ActionKind, measure_lp: bool, seed: u64) -> OffloadEnv {
        let mut simulator = Simulator::new(scenario, seed);
        let state = simulator.observe();
        OffloadEnv { kind, measure_lp, simulator, state, tape: ProjectionTape::default() }
    }

    /// Starts a new episode from slot 0; the same seed gives the same episode.
    pub fn reset(&mut self, seed: u64) {
        self.simulator = Simulator::new(self.simulator.scenario(), seed);
        self.state = self.simulator.observe();
    }

    pub fn scenario(&self) -> &Scenario {
        self.simulator.scenario()
    }

    /// The state the next action decides.
    pub fn state(&self) -> &SystemState {
        &self.state
    }

    /// M × (2 + S): per device Q/u, H/u and r_ms/W for each server.
    pub fn observation_shape(&self) -> [usize; 2] {
        observation_shape(self.scenario())
    }

    pub fn action_shape(&self) -> [usize; 2] {
        action_shape(self.scenario(), self.kind)
    }

    /// Writes the observation of the current state, row-major, into `out`
    /// (of the length [`Self::observation_shape`] gives).
    pub fn write_observation(&self, out: &mut [f32]) {
        let scenario = self.scenario();
        let unit = scenario.control.queue_unit_bits;
        let bandwidth = scenario.channel.bandwidth_hz;
        let width = 2 + self.state.servers();
        for (m, row) in out.chunks_exact_mut(width).enumerate() {
            row[0] = (self.state.queue_bits[m] / unit) as f32;
            row[1] = (self.state.virtual_bits[m] / unit) as f32;
            for (cell, rate) in row[2..].iter_mut().zip(self.state.rates_bps.row(m)) {
                *cell = (rate / bandwidth) as f32;
            }
        }
    }

    /// Applies `action` (of shape `shape`) to the current slot and observes
    /// the next one. Nothing changes when the action is refused.
    pub fn step(&mut self, shape: &[usize], action: &[f64]) -> Result<StepFigures, EnvError> {
        let prepared = self.prepare(shape, action)?;
        Ok(self.apply(prepared))
    }

    /// The checked decision `action` stands for, and the LP optimum of the
    /// current state when measured; the state is not touched, so a batch of
    /// environments can refuse a bad action before any of them moves.
    pub fn prepare(&mut self, shape: &[usize], action: &[f64]) -> Result<Prepared, EnvError> {
        let shares = self.shares(shape, action)?;
        let scenario = self.simulator.scenario();
        let decision = Decision::with_default_cpu(scenario, &self.state, shares);
        decision.check(scenario, &self.state).map_err(EnvError::Infeasible)?;
        let lp_objective = if self.measure_lp {
            qmec_policies::solve_dpp_exact(scenario, &self.state)
                .map_err(|reason| EnvError::Lp { slot: self.state.slot, reason })?
                .1
                .value
        } else {
            f64::NAN
        };
        Ok(Prepared { decision, lp_objective })
    }

    /// Applies a prepared decision and observes the next slot.
    pub fn apply(&mut self, prepared: Prepared) -> StepFigures {
        let record = self.simulator.apply(&self.state, prepared.decision).record;
        self.state = self.simulator.observe();
        let (reward, lp_objective) = (record.dpp_value, prepared.lp_objective);
        StepFigures {
            reward,
            throughput_bits: record.throughput_bits as f64,
            tx_power_w: record.tx_power_w,
            compute_power_w: record.compute_power_w,
            queue_bits: record.queue_total_bits,
            virtual_bits: record.virtual_total_bits,
            server_bits: record.server_total_bits,
            lp_objective,
            lp_share: if lp_objective > 0.0 { reward / lp_objective } else { f64::NAN },
        }
    }

    /// The shares μ an action stands for in the current state.
    fn shares(&mut self, shape: &[usize], action: &[f64]) -> Result<Matrix, EnvError> {
        let expected = self.action_shape();
        if shape != expected || action.len() != expected[0] * expected[1] {
            return Err(EnvError::Shape { expected: expected.to_vec(), got: shape.to_vec() });
        }
        if let Some((i, &value)) = action.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(EnvError::NotFinite { device: i / expected[1], column: i % expected[1], value });
        }
        let (devices, servers) = (self.state.devices(), self.state.servers());
        let links = self.links();
        let mu = match self.kind {
            ActionKind::Scores => {
                let scores: Vec<f64> = action.iter().map(|a| a * SCORE_SCALE).collect();
                projection::forward(&scores, &links, &mut self.tape)
            }
            ActionKind::Shares => {
                // Checked before the queue cap, which would hide an agent's
                // Σ μ > 1 behind an empty queue.
                let raw = Matrix::from_vec(devices, servers, action.to_vec()).unwrap_or_else(|| Matrix::zeros(devices, servers));
                let scenario = self.simulator.scenario();
                Decision::with_default_cpu(scenario, &self.state, raw).check(scenario, &self.state).map_err(EnvError::Infeasible)?;
                cap_to_queues(action, &links)
            }
        };
        Ok(Matrix::from_vec(devices, servers, mu).unwrap_or_else(|| Matrix::zeros(devices, servers)))
    }

    /// The projection's view of the current state: links with Ψ > 0 open.
    fn links(&self) -> Links {
        let scenario = self.simulator.scenario();
        let psi = dpp_weights(scenario, &self.state);
        Links {
            devices: self.state.devices(),
            servers: self.state.servers(),
            slot_bits: self.state.rates_bps.as_slice().iter().map(|r| r * scenario.slot_seconds).collect(),
            queue_bits: self.state.queue_bits.iter().map(|q| q.max(0.0)).collect(),
            open: psi.as_slice().iter().map(|&p| p > 0.0).collect(),
        }
    }
}

/// Scales down each row of `shares` whose load Σ_s μ_ms τ r_ms exceeds
/// Q_m, to exactly Q_m (the LP's queue cap); other rows are kept.
fn cap_to_queues(shares: &[f64], links: &Links) -> Vec<f64> {
    let mut mu = shares.to_vec();
    for (m, row) in mu.chunks_exact_mut(links.servers).enumerate() {
        let bits = &links.slot_bits[m * links.servers..(m + 1) * links.servers];
        let load: f64 = row.iter().zip(bits).map(|(share, b)| share * b).sum();
        if load > links.queue_bits[m] {
            let factor = links.queue_bits[m] / load;
            row.iter_mut().for_each(|share| *share *= factor);
        }
    }
    mu
}

pub fn observation_shape(scenario: &Scenario) -> [usize; 2] {
    [scenario.devices, 2 + scenario.servers]
}

pub fn action_shape(scenario: &Scenario, kind: ActionKind) -> [usize; 2] {
    match kind {
        ActionKind::Scores => [scenario.devices, scenario.servers + 1],
        ActionKind::Shares => [scenario.devices, scenario.servers],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmec_model::lyapunov::state_dpp_value;

    fn paper_small(kind: ActionKind) -> OffloadEnv {
        let scenario = Scenario::builtin("paper-small").expect("built-in scenario");
        OffloadEnv::new(&scenario, kind, true, 7)
    }

    #[test]
    fn reward_is_the_objective_of_the_expert_decision_and_reaches_the_optimum() {
        let mut env = paper_small(ActionKind::Shares);
        for _ in 0..50 {
            let scenario = env.scenario().clone();
            let state = env.state().clone();
            let (mu, certified) = qmec_policies::solve_dpp_exact(&scenario, &state).expect("LP");
            let figures = env.step(&[3, 2], mu.as_slice()).expect("feasible");
            assert!((figures.reward - state_dpp_value(&scenario, &state, &mu)).abs() <= 1e-9 * figures.reward.abs().max(1.0));
            assert!((figures.lp_objective - certified.value).abs() <= 1e-12);
            if figures.lp_objective > 0.0 {
                assert!((figures.lp_share - 1.0).abs() < 1e-6, "share {}", figures.lp_share);
            }
        }
    }

    #[test]
    fn projected_scores_never_beat_the_optimum() {
        let mut env = paper_small(ActionKind::Scores);
        for k in 0..200 {
            let action: Vec<f64> = (0..9).map(|i| ((i * 7 + k * 3) % 11) as f64 / 5.0 - 1.0).collect();
            let figures = env.step(&[3, 3], &action).expect("every finite score is valid");
            assert!(figures.reward <= figures.lp_objective + 1e-9 * figures.lp_objective.abs().max(1.0));
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_episode() {
        let run = |seed| {
            let mut env = paper_small(ActionKind::Scores);
            env.reset(seed);
            let mut out = vec![0.0f32; 3 * 4];
            let mut trace = Vec::new();
            for _ in 0..20 {
                env.write_observation(&mut out);
                trace.extend_from_slice(&out);
                trace.push(env.step(&[3, 3], &[0.5; 9]).expect("valid").reward as f32);
            }
            trace
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn bad_actions_are_refused_naming_the_field_and_change_nothing() {
        let mut env = paper_small(ActionKind::Shares);
        let before = env.state().clone();
        let shape = env.step(&[2, 3], &[0.0; 6]).expect_err("wrong shape");
        assert_eq!(shape.to_string(), "action: expected shape [3, 2], got [2, 3]");
        let nan = env.step(&[3, 2], &[0.0, 0.0, f64::NAN, 0.0, 0.0, 0.0]).expect_err("NaN");
        assert_eq!(nan.to_string(), "action[1, 0] is NaN: every entry must be finite");
        let over = env.step(&[3, 2], &[0.8, 0.8, 0.0, 0.0, 0.0, 0.0]).expect_err("one radio");
        assert!(over.to_string().contains("device 0 transmits"), "{over}");
        assert_eq!(env.state(), &before);
    }

    #[test]
    fn observation_is_queues_in_units_and_spectral_efficiency() {
        let env = paper_small(ActionKind::Scores);
        let mut out = vec![0.0f32; 3 * 4];
        env.write_observation(&mut out);
        let (state, scenario) = (env.state(), env.scenario());
        assert_eq!(out[4], (state.queue_bits[1] / scenario.control.queue_unit_bits) as f32);
        assert_eq!(out[7], (state.rates_bps.get(1, 1) / scenario.channel.bandwidth_hz) as f32);
    }
}
