//! One circuit over a batch of input states, gradients summed over the batch.
//!
//! A QNN training step evaluates the same circuit and parameters on every
//! sample of a mini-batch (e.g. amplitude-encoded feature rows) and needs the
//! sum of the per-sample VJP gradients. Samples are independent, so the batch
//! is split into contiguous chunks run on `std::thread::scope` threads, each
//! with its own [`Workspace`] and gradient accumulator; small batches run on
//! the calling thread because spawning costs more than they do.
//!
//! Two shapes of the same work:
//! * [`vjp`]: weights known up front, one forward + one backward per sample;
//! * [`forward`] then [`BatchForward::vjp`]: the trainer needs the
//!   expectations before it can compute the upstream weights (through the
//!   classical layers and the loss); the final states are kept so the
//!   backward pass does not redo the forward one.
//!
//! Layouts: expectations and weights are row-major `batch × n_observables`.

use crate::adjoint::{Workspace, check_weights};
use crate::circuit::Circuit;
use crate::error::{QuantumError, Result};
use crate::observable::{Observable, validate_all};
use crate::state::StateVector;
use num_complex::Complex64 as C;

/// Below this many amplitude-op updates (batch × ops × 2^n) a batch runs on
/// the calling thread: a thread spawn costs tens of microseconds.
const PARALLEL_WORK_THRESHOLD: usize = 1 << 16;

/// Expectations and summed gradient over a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchVjp {
    /// Row-major `batch × n_observables`.
    pub expectations: Vec<f64>,
    /// Σ over samples of ∇θ Σₖ `w[b][k]`·⟨Oₖ⟩_b, one entry per parameter.
    pub gradient: Vec<f64>,
}

fn check_inputs(
    circuit: &Circuit,
    params: &[f64],
    inputs: &[StateVector],
    observables: &[Observable],
) -> Result<()> {
    for s in inputs {
        circuit.check_run(params, s.n_qubits())?;
    }
    circuit.check_run(params, circuit.n_qubits())?;
    validate_all(observables, circuit.n_qubits())
}

fn check_batch_weights(weights: &[f64], batch: usize, n_obs: usize) -> Result<()> {
    if weights.len() != batch * n_obs {
        return Err(QuantumError::SizeMismatch {
            what: "weights (batch × observables)",
            expected: batch * n_obs,
            found: weights.len(),
        });
    }
    check_weights(weights, weights.len())
}

/// Threads worth using for this much work on this machine.
fn auto_threads(circuit: &Circuit, batch: usize) -> usize {
    let work = batch
        .saturating_mul(circuit.ops().len().max(1))
        .saturating_mul(1usize << circuit.n_qubits());
    if work < PARALLEL_WORK_THRESHOLD {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Splits `0..batch` into at most `threads` contiguous chunks and runs `job`
/// on each (on scoped threads when more than one), returning the results in
/// chunk order together with each chunk's first index.
fn run_chunks<T: Send>(
    batch: usize,
    threads: usize,
    job: impl Fn(usize, usize) -> T + Sync,
) -> Vec<T> {
    let threads = threads.clamp(1, batch.max(1));
    let chunk = batch.div_ceil(threads).max(1);
    if threads == 1 {
        return vec![job(0, batch)];
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..batch)
            .step_by(chunk)
            .map(|start| {
                let job = &job;
                s.spawn(move || job(start, (start + chunk).min(batch)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// ⟨Oₖ⟩ after `circuit` on every input; row-major `batch × n_observables`.
pub fn expectations(
    circuit: &Circuit,
    params: &[f64],
    inputs: &[StateVector],
    observables: &[Observable],
) -> Result<Vec<f64>> {
    Ok(forward(circuit, params, inputs, observables)?.expectations)
}

/// Expectations and the batch-summed gradient of Σ_b Σₖ `weights[b·K + k]`⟨Oₖ⟩_b,
/// one forward and one backward pass per sample, on as many threads as the
/// machine has when the batch is large enough.
pub fn vjp(
    circuit: &Circuit,
    params: &[f64],
    inputs: &[StateVector],
    observables: &[Observable],
    weights: &[f64],
) -> Result<BatchVjp> {
    let threads = auto_threads(circuit, inputs.len());
    vjp_with_threads(circuit, params, inputs, observables, weights, threads)
}

/// [`vjp`] on exactly `threads` threads (at most one per sample; 0 counts as 1).
pub fn vjp_with_threads(
    circuit: &Circuit,
    params: &[f64],
    inputs: &[StateVector],
    observables: &[Observable],
    weights: &[f64],
    threads: usize,
) -> Result<BatchVjp> {
    check_inputs(circuit, params, inputs, observables)?;
    let n_obs = observables.len();
    check_batch_weights(weights, inputs.len(), n_obs)?;
    let template = Workspace::new(circuit.n_qubits())?;
    let parts = run_chunks(inputs.len(), threads, |start, end| {
        let mut ws = template.clone();
        let mut exp = vec![0.0; (end - start) * n_obs];
        let mut grad = vec![0.0; params.len()];
        for (b, e) in (start..end).zip(exp.chunks_exact_mut(n_obs.max(1))) {
            ws.forward_unchecked(circuit, params, inputs[b].amplitudes());
            for (x, o) in e.iter_mut().zip(observables) {
                *x = o.expectation_unchecked(ws.final_state());
            }
            ws.backward_unchecked(
                circuit,
                params,
                observables,
                &weights[b * n_obs..(b + 1) * n_obs],
                &mut grad,
            );
        }
        (exp, grad)
    });
    let mut expectations = Vec::with_capacity(inputs.len() * n_obs);
    let mut gradient = vec![0.0; params.len()];
    for (e, g) in parts {
        expectations.extend_from_slice(&e);
        for (a, b) in gradient.iter_mut().zip(&g) {
            *a += b;
        }
    }
    Ok(BatchVjp {
        expectations,
        gradient,
    })
}

/// A batch's forward pass, kept for a later [`BatchForward::vjp`]. Borrows
/// the circuit, parameters and observables so the backward pass is sure to
/// use the same ones.
#[derive(Debug)]
pub struct BatchForward<'a> {
    circuit: &'a Circuit,
    params: &'a [f64],
    observables: &'a [Observable],
    batch: usize,
    expectations: Vec<f64>,
    /// Final states, `batch × 2^n`, sample-major.
    finals: Vec<C>,
}

/// Runs `circuit` on every input and keeps the final states.
pub fn forward<'a>(
    circuit: &'a Circuit,
    params: &'a [f64],
    inputs: &[StateVector],
    observables: &'a [Observable],
) -> Result<BatchForward<'a>> {
    check_inputs(circuit, params, inputs, observables)?;
    let dim = 1usize << circuit.n_qubits();
    let n_obs = observables.len();
    let threads = auto_threads(circuit, inputs.len());
    let parts = run_chunks(inputs.len(), threads, |start, end| {
        let mut finals = Vec::with_capacity((end - start) * dim);
        let mut exp = Vec::with_capacity((end - start) * n_obs);
        for s in &inputs[start..end] {
            let at = finals.len();
            finals.extend_from_slice(s.amplitudes());
            let psi = &mut finals[at..];
            circuit.run_unchecked(params, psi);
            exp.extend(observables.iter().map(|o| o.expectation_unchecked(psi)));
        }
        (exp, finals)
    });
    let mut expectations = Vec::with_capacity(inputs.len() * n_obs);
    let mut finals = Vec::with_capacity(inputs.len() * dim);
    for (e, f) in parts {
        expectations.extend_from_slice(&e);
        finals.extend_from_slice(&f);
    }
    Ok(BatchForward {
        circuit,
        params,
        observables,
        batch: inputs.len(),
        expectations,
        finals,
    })
}

impl BatchForward<'_> {
    /// Row-major `batch × n_observables` expectations.
    pub fn expectations(&self) -> &[f64] {
        &self.expectations
    }

    /// Number of samples.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The final state of sample `b`, as amplitudes, or `None` if out of range.
    pub fn final_state(&self, b: usize) -> Option<&[C]> {
        let dim = 1usize << self.circuit.n_qubits();
        self.finals.get(b * dim..(b + 1) * dim)
    }

    /// Batch-summed gradient of Σ_b Σₖ `weights[b·K + k]`⟨Oₖ⟩_b: one backward
    /// pass per sample from the stored final states.
    pub fn vjp(&self, weights: &[f64]) -> Result<Vec<f64>> {
        let n_obs = self.observables.len();
        check_batch_weights(weights, self.batch, n_obs)?;
        let (circuit, params, observables) = (self.circuit, self.params, self.observables);
        let dim = 1usize << circuit.n_qubits();
        let template = Workspace::new(circuit.n_qubits())?;
        let threads = auto_threads(circuit, self.batch);
        let parts = run_chunks(self.batch, threads, |start, end| {
            let mut ws = template.clone();
            let mut grad = vec![0.0; params.len()];
            for b in start..end {
                ws.load_final(&self.finals[b * dim..(b + 1) * dim]);
                ws.backward_unchecked(
                    circuit,
                    params,
                    observables,
                    &weights[b * n_obs..(b + 1) * n_obs],
                    &mut grad,
                );
            }
            grad
        });
        let mut gradient = vec![0.0; params.len()];
        for g in parts {
            for (a, b) in gradient.iter_mut().zip(&g) {
                *a += b;
            }
        }
        Ok(gradient)
    }
}
