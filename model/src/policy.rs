//! What a policy sees and what it returns. One trait serves every policy, in
//! the simulator and in the controller alike; every decision is checked
//! against the constraints before it is applied.

use crate::Matrix;
use crate::channel::shannon_rate;
use crate::scenario::Scenario;

/// The state at the start of a slot, in bits, as the controller knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemState {
    pub slot: u64,
    /// Q_m.
    pub queue_bits: Vec<f64>,
    /// H_m.
    pub virtual_bits: Vec<f64>,
    /// Z_s.
    pub server_bits: Vec<f64>,
    /// Z_ms: device m's backlog at server s.
    pub server_device_bits: Matrix,
    /// h_ms.
    pub gains: Matrix,
    /// r_ms, derived from the gains.
    pub rates_bps: Matrix,
}

impl SystemState {
    /// A state from raw observations; rates follow from the gains.
    pub fn new(
        scenario: &Scenario,
        slot: u64,
        queue_bits: Vec<f64>,
        virtual_bits: Vec<f64>,
        server_device_bits: Matrix,
        gains: Matrix,
    ) -> SystemState {
        let rates_bps = Matrix::from_fn(gains.rows(), gains.cols(), |m, s| {
            shannon_rate(&scenario.channel, scenario.device.tx_power_w, gains.get(m, s))
        });
        let server_bits = (0..server_device_bits.cols()).map(|s| server_device_bits.col_sum(s)).collect();
        SystemState { slot, queue_bits, virtual_bits, server_bits, server_device_bits, gains, rates_bps }
    }

    pub fn devices(&self) -> usize {
        self.queue_bits.len()
    }

    pub fn servers(&self) -> usize {
        self.server_bits.len()
    }

    /// The largest share μ_ms that the queue cap allows on its own:
    /// Q_m / (τ r_ms), at most 1.
    pub fn queue_cap_share(&self, scenario: &Scenario, m: usize, s: usize) -> f64 {
        let bits_per_full_slot = scenario.slot_seconds * self.rates_bps.get(m, s);
        if bits_per_full_slot <= 0.0 {
            return 0.0;
        }
        (self.queue_bits[m] / bits_per_full_slot).min(1.0)
    }
}

/// A policy's decision for one slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// μ_ms: share of the slot device m transmits to server s.
    pub offload: Matrix,
    /// f_ms: CPU frequency server s gives device m's backlog (Hz).
    pub cpu_hz: Matrix,
}

impl Decision {
    /// Offloading shares with the default CPU split (in proportion to each
    /// device's backlog at the server).
    pub fn with_default_cpu(scenario: &Scenario, state: &SystemState, offload: Matrix) -> Decision {
        let mut cpu_hz = Matrix::zeros(state.devices(), state.servers());
        for s in 0..state.servers() {
            // [`crate::server::proportional_allocation`] of the column, written in place:
            // every policy runs this every slot.
            let total: f64 = (0..state.devices()).map(|m| state.server_device_bits.get(m, s)).sum();
            if total <= 0.0 {
                continue;
            }
            for m in 0..state.devices() {
                cpu_hz.set(m, s, scenario.server.cpu_hz * state.server_device_bits.get(m, s) / total);
            }
        }
        Decision { offload, cpu_hz }
    }

    /// Everything local: μ = 0.
    pub fn local(scenario: &Scenario, state: &SystemState) -> Decision {
        Decision::with_default_cpu(scenario, state, Matrix::zeros(state.devices(), state.servers()))
    }

    /// Checks every constraint: shapes, 0 ≤ μ ≤ 1, Σ_s μ_ms ≤ 1 (one radio),
    /// Σ_m μ_ms ≤ 1 (one channel per server), Σ_m f_ms ≤ F_s.
    pub fn check(&self, scenario: &Scenario, state: &SystemState) -> Result<(), PolicyError> {
        const TOLERANCE: f64 = 1e-9;
        let (m_count, s_count) = (state.devices(), state.servers());
        for (name, matrix) in [("offload", &self.offload), ("cpu_hz", &self.cpu_hz)] {
            if matrix.rows() != m_count || matrix.cols() != s_count {
                return Err(PolicyError::Infeasible(format!(
                    "{name} is {}×{}, expected {m_count}×{s_count}",
                    matrix.rows(),
                    matrix.cols()
                )));
            }
            if let Some(bad) = matrix.as_slice().iter().find(|v| !v.is_finite() || **v < 0.0) {
                return Err(PolicyError::Infeasible(format!("{name} holds {bad}")));
            }
        }
        for m in 0..m_count {
            let sum = self.offload.row_sum(m);
            if sum > 1.0 + TOLERANCE {
                return Err(PolicyError::Infeasible(format!("device {m} transmits Σ_s μ = {sum} > 1")));
            }
        }
        for s in 0..s_count {
            let sum = self.offload.col_sum(s);
            if sum > 1.0 + TOLERANCE {
                return Err(PolicyError::Infeasible(format!("server {s} channel shared Σ_m μ = {sum} > 1")));
            }
            let cpu = self.cpu_hz.col_sum(s);
            if cpu > scenario.server.cpu_hz * (1.0 + TOLERANCE) {
                return Err(PolicyError::Infeasible(format!("server {s} allocates {cpu} Hz > F_s")));
            }
        }
        Ok(())
    }
}

/// Why a policy could not decide.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("infeasible decision: {0}")]
    Infeasible(String),
    #[error("solver failed: {0}")]
    Solver(String),
    #[error("policy does not fit this scenario: {0}")]
    Mismatch(String),
    /// A policy that decides elsewhere (an external service) had no answer
    /// within its deadline.
    #[error("no answer in time: {0}")]
    Late(String),
    /// A policy that decides elsewhere could not be asked, or its answer
    /// was an error.
    #[error("policy unavailable: {0}")]
    Unavailable(String),
}

/// An offloading policy: state in, decision out, once per slot.
pub trait Policy: Send {
    /// Short name used on the command line and in reports.
    fn name(&self) -> &str;

    fn decide(&mut self, scenario: &Scenario, state: &SystemState) -> Result<Decision, PolicyError>;

    /// Per-slot figures the policy has worked out since it was last asked
    /// (a learning policy measures its decisions against the exact LP off
    /// the slot's critical path, so a figure may concern an earlier slot).
    /// The simulator and the controller ask after every decision and write
    /// the figures into the rows of the slots they concern.
    fn slot_figures(&mut self) -> Vec<SlotFigure> {
        Vec::new()
    }
}

/// A figure a policy reports about one slot it decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlotFigure {
    /// The slot the figure concerns.
    pub slot: u64,
    /// Σ Ψ μ of the slot's decision over the exact LP optimum's.
    pub lp_share: f64,
}
