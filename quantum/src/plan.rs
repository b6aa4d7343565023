//! Gate fusion and cache blocking for the forward pass.
//!
//! Run op by op, a circuit sweeps the whole state once per gate, and past
//! about 16 qubits the state no longer fits in cache, so every sweep pays for
//! main memory. A [`Plan`], built once per circuit and independent of the
//! parameter values, cuts the number of sweeps two ways:
//!
//! * fusion: the single-qubit ops on one qubit between two multi-qubit ops
//!   become one 2×2 matrix, multiplied out per run, applied in one pass;
//! * blocking: consecutive steps that only mix amplitudes inside an aligned
//!   block of 2^[`BLOCK_QUBITS`] amplitudes (single-qubit gates on low qubits,
//!   every CZ and diagonal phase, CNOTs onto low targets) run block by block,
//!   so each block stays in cache while all of them act on it.
//!
//! Only a single-qubit gate on a high qubit (or a CNOT onto one) still sweeps
//! the state on its own. The adjoint backward pass still walks the ops one by
//! one: it needs the state between them.

use crate::circuit::Op;
use crate::kernels::{self, Gate1};
use num_complex::Complex64 as C;
use std::ops::Range;

/// log2 of the block size: 2^14 amplitudes are 256 KiB, well inside a
/// core's L2 cache (1 MiB on the machines this is tuned on) with room for
/// a second register.
pub(crate) const BLOCK_QUBITS: usize = 14;

/// The single-qubit ops fused into one gate, in application order.
#[derive(Debug, Clone, PartialEq)]
struct Fused {
    qubit: usize,
    ops: Vec<usize>,
}

/// One unit of work: a fused single-qubit gate or a multi-qubit op.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    /// A fused gate: its index in [`Plan::fused`] and its qubit.
    Single { gate: usize, qubit: usize },
    /// Index into the circuit's ops (CNOT, CZ or a diagonal phase).
    Multi(usize),
}

/// One sweep over the state.
#[derive(Debug, Clone, PartialEq)]
enum Pass {
    /// `steps` applied block by block over blocks of 2^`block_qubits`
    /// amplitudes (the whole state for one step that mixes distant ones).
    Blocked {
        steps: Range<usize>,
        block_qubits: usize,
    },
    /// Two fused gates (indices into the run's matrices) on distinct high
    /// qubits, consecutive steps and so commuting, applied together.
    HighPair {
        gate_a: usize,
        qubit_a: usize,
        gate_b: usize,
        qubit_b: usize,
    },
}

/// How a circuit's ops are grouped for the forward pass.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    fused: Vec<Fused>,
    steps: Vec<Step>,
    passes: Vec<Pass>,
}

/// The qubit of a single-qubit op, `None` for the others.
fn single_qubit(op: &Op) -> Option<usize> {
    match op {
        Op::H { qubit }
        | Op::X { qubit }
        | Op::Rx { qubit, .. }
        | Op::Ry { qubit, .. }
        | Op::Rz { qubit, .. } => Some(*qubit),
        Op::Cnot { .. } | Op::Cz { .. } | Op::PhaseDiag { .. } => None,
    }
}

impl Plan {
    /// Plans validated `ops` on `n_qubits` qubits.
    pub(crate) fn new(n_qubits: usize, ops: &[Op]) -> Plan {
        Plan::with_blocks(n_qubits, ops, BLOCK_QUBITS)
    }

    /// [`Plan::new`] with blocks of 2^`block_qubits` amplitudes (tests use
    /// small blocks to reach every case on small registers).
    fn with_blocks(n_qubits: usize, ops: &[Op], block_qubits: usize) -> Plan {
        let mut plan = Plan {
            fused: Vec::new(),
            steps: Vec::new(),
            passes: Vec::new(),
        };
        let mut pending: Vec<Vec<usize>> = vec![Vec::new(); n_qubits];
        for (index, op) in ops.iter().enumerate() {
            match single_qubit(op) {
                Some(qubit) => pending[qubit].push(index),
                None => {
                    plan.flush(&mut pending);
                    plan.steps.push(Step::Multi(index));
                }
            }
        }
        plan.flush(&mut pending);
        plan.group(n_qubits, ops, n_qubits.min(block_qubits));
        plan
    }

    /// Emits every pending fused gate. They act on distinct qubits, so they
    /// commute and any order is exact; qubit order puts the low (blockable)
    /// ones next to each other.
    fn flush(&mut self, pending: &mut [Vec<usize>]) {
        for (qubit, ops) in pending.iter_mut().enumerate() {
            if !ops.is_empty() {
                self.fused.push(Fused {
                    qubit,
                    ops: std::mem::take(ops),
                });
                self.steps.push(Step::Single {
                    gate: self.fused.len() - 1,
                    qubit,
                });
            }
        }
    }

    /// Splits the steps into passes: maximal runs of block-local steps, two
    /// non-local fused gates in a row together, any other step alone.
    fn group(&mut self, n_qubits: usize, ops: &[Op], local_qubits: usize) {
        let mut start = 0;
        let mut i = 0;
        while i < self.steps.len() {
            if self.is_local(&self.steps[i], ops, local_qubits) {
                i += 1;
                continue;
            }
            if start < i {
                self.passes.push(Pass::Blocked {
                    steps: start..i,
                    block_qubits: local_qubits,
                });
            }
            let next = self
                .steps
                .get(i + 1)
                .filter(|next| !self.is_local(next, ops, local_qubits));
            if let Some(pair) = high_pair(&self.steps[i], next) {
                self.passes.push(pair);
                i += 2;
            } else {
                self.passes.push(Pass::Blocked {
                    steps: i..i + 1,
                    block_qubits: n_qubits,
                });
                i += 1;
            }
            start = i;
        }
        if start < self.steps.len() {
            self.passes.push(Pass::Blocked {
                steps: start..self.steps.len(),
                block_qubits: local_qubits,
            });
        }
    }

    /// Whether `step` only mixes amplitudes within blocks of
    /// 2^`local_qubits`: diagonal ops always do, others when the qubit they
    /// mix across is below the block size.
    fn is_local(&self, step: &Step, ops: &[Op], local_qubits: usize) -> bool {
        match *step {
            Step::Single { qubit, .. } => qubit < local_qubits,
            Step::Multi(i) => match &ops[i] {
                Op::Cnot { target, .. } => *target < local_qubits,
                _ => true,
            },
        }
    }

    /// Applies the planned ops (the same `ops` the plan was built from) to
    /// `amps`, with angles from checked `params`.
    pub(crate) fn run(&self, ops: &[Op], params: &[f64], amps: &mut [C]) {
        let gates: Vec<Gate1> = self
            .fused
            .iter()
            .map(|f| fused_matrix(f, ops, params))
            .collect();
        pulp::Arch::new().dispatch(Passes {
            plan: self,
            gates: &gates,
            ops,
            params,
            amps,
        });
    }
}

/// A forward pass's arguments, for [`pulp::Arch::dispatch`]: every kernel
/// below inlines into `with_simd`, which pulp compiles for AVX-512, for
/// AVX2/FMA and for baseline x86-64 and picks from by the CPU at run time.
/// Rust never contracts a·b + c into an FMA on its own, so all three give the
/// same bits. Fused gates whose amplitude pairs lie a whole vector apart run
/// on explicit vectors (`kernels::gate1_simd`): at 16–18 qubits, where the
/// state is in cache and the arithmetic decides, that forward pass took
/// about half the time of the compiler's own vectorisation of it.
struct Passes<'a> {
    plan: &'a Plan,
    gates: &'a [Gate1],
    ops: &'a [Op],
    params: &'a [f64],
    amps: &'a mut [C],
}

impl pulp::WithSimd for Passes<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        self.plan
            .run_passes(simd, self.gates, self.ops, self.params, self.amps);
    }
}

impl Plan {
    #[inline(always)]
    fn run_passes<S: pulp::Simd>(
        &self,
        simd: S,
        gates: &[Gate1],
        ops: &[Op],
        params: &[f64],
        amps: &mut [C],
    ) {
        for pass in &self.passes {
            match pass {
                Pass::Blocked {
                    steps,
                    block_qubits,
                } => {
                    let block_len = 1usize << block_qubits;
                    for (b, block) in amps.chunks_exact_mut(block_len).enumerate() {
                        for step in &self.steps[steps.clone()] {
                            apply_step(simd, *step, gates, ops, params, block, b * block_len);
                        }
                    }
                }
                Pass::HighPair {
                    gate_a,
                    qubit_a,
                    gate_b,
                    qubit_b,
                } => kernels::gate1_pair_simd(
                    simd,
                    amps,
                    *qubit_a,
                    &gates[*gate_a],
                    *qubit_b,
                    &gates[*gate_b],
                ),
            }
        }
    }
}

/// The pass for two consecutive non-local steps, when both are fused gates
/// on different qubits.
fn high_pair(step: &Step, next: Option<&Step>) -> Option<Pass> {
    match (*step, next.copied()?) {
        (
            Step::Single {
                gate: gate_a,
                qubit: qubit_a,
            },
            Step::Single {
                gate: gate_b,
                qubit: qubit_b,
            },
        ) if qubit_a != qubit_b => Some(Pass::HighPair {
            gate_a,
            qubit_a,
            gate_b,
            qubit_b,
        }),
        _ => None,
    }
}

/// The matrix of a single-qubit op, `None` for the others.
fn single_gate(op: &Op, params: &[f64]) -> Option<Gate1> {
    match op {
        Op::H { .. } => Some(Gate1::h()),
        Op::X { .. } => Some(Gate1::x()),
        Op::Rx { angle, .. } => Some(Gate1::rx(angle.resolve(params))),
        Op::Ry { angle, .. } => Some(Gate1::ry(angle.resolve(params))),
        Op::Rz { angle, .. } => Some(Gate1::rz(angle.resolve(params))),
        Op::Cnot { .. } | Op::Cz { .. } | Op::PhaseDiag { .. } => None,
    }
}

/// The product of a fused run of single-qubit ops.
fn fused_matrix(fused: &Fused, ops: &[Op], params: &[f64]) -> Gate1 {
    fused
        .ops
        .iter()
        .filter_map(|&i| single_gate(&ops[i], params))
        .fold(Gate1::IDENTITY, |acc, gate| gate.after(&acc))
}

#[inline(always)]
/// Applies one step to `block`, the amplitudes at basis indices
/// `base .. base + block.len()`; qubits at or above the block size are fixed
/// within the block and read from `base`.
fn apply_step<S: pulp::Simd>(
    simd: S,
    step: Step,
    gates: &[Gate1],
    ops: &[Op],
    params: &[f64],
    block: &mut [C],
    base: usize,
) {
    let local_qubits = block.len().trailing_zeros() as usize;
    let is_set = |q: usize| base & (1usize << q) != 0;
    match step {
        Step::Single { gate, qubit } => kernels::gate1_simd(simd, block, qubit, &gates[gate]),
        Step::Multi(i) => match &ops[i] {
            Op::Cz { q1, q2 } => match (*q1 < local_qubits, *q2 < local_qubits) {
                (true, true) => kernels::cz(block, *q1, *q2),
                (true, false) if is_set(*q2) => kernels::z(block, *q1),
                (false, true) if is_set(*q1) => kernels::z(block, *q2),
                (false, false) if is_set(*q1) && is_set(*q2) => kernels::negate(block),
                _ => {}
            },
            Op::Cnot { control, target } => {
                if *control < local_qubits {
                    kernels::cnot(block, *control, *target);
                } else if is_set(*control) {
                    kernels::x(block, *target);
                }
            }
            Op::PhaseDiag { param, diag } => {
                kernels::phase_diag(block, &diag[base..base + block.len()], params[*param])
            }
            // Planned as fused steps; applied as they stand if met here.
            op @ (Op::H { qubit }
            | Op::X { qubit }
            | Op::Rx { qubit, .. }
            | Op::Ry { qubit, .. }
            | Op::Rz { qubit, .. }) => {
                if let Some(gate) = single_gate(op, params) {
                    kernels::gate1(block, *qubit, &gate);
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::{Angle, Circuit, apply_op};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// A random op of every kind on `n` qubits, angles from 4 parameters.
    fn random_op(rng: &mut StdRng, n: usize) -> Op {
        let qubit = rng.random_range(0..n);
        let other = (qubit + rng.random_range(1..n)) % n;
        let angle = Angle::scaled(rng.random_range(0..4), rng.random_range(-2.0..2.0));
        match rng.random_range(0..8) {
            0 => Op::H { qubit },
            1 => Op::X { qubit },
            2 => Op::Cnot {
                control: qubit,
                target: other,
            },
            3 => Op::Cz {
                q1: qubit,
                q2: other,
            },
            4 => Op::Rx { qubit, angle },
            5 => Op::Ry { qubit, angle },
            6 => Op::Rz { qubit, angle },
            _ => Op::PhaseDiag {
                param: rng.random_range(0..4),
                diag: (0..1 << n).map(|_| rng.random_range(-1.5..1.5)).collect(),
            },
        }
    }

    fn random_amps(rng: &mut StdRng, n: usize) -> Vec<C> {
        (0..1 << n)
            .map(|_| C::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)))
            .collect()
    }

    #[test]
    fn every_block_size_matches_op_by_op() {
        let mut rng = StdRng::seed_from_u64(15);
        let n = 5;
        for _ in 0..40 {
            let ops: Vec<Op> = (0..rng.random_range(1..60))
                .map(|_| random_op(&mut rng, n))
                .collect();
            let params: Vec<f64> = (0..4).map(|_| rng.random_range(-3.0..3.0)).collect();
            let input = random_amps(&mut rng, n);
            let mut expected = input.clone();
            for op in &ops {
                apply_op(op, &params, &mut expected);
            }
            for block_qubits in 0..=n + 1 {
                let mut amps = input.clone();
                Plan::with_blocks(n, &ops, block_qubits).run(&ops, &params, &mut amps);
                for (i, (a, e)) in amps.iter().zip(&expected).enumerate() {
                    assert!(
                        (a - e).norm() < 1e-12,
                        "block of 2^{block_qubits}, amplitude {i}: {a} vs {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn layered_circuit_sweeps_only_for_high_qubits() {
        let (n, layers) = (20, 3);
        let circuit = Circuit::layered(n, layers).expect("valid circuit");
        let plan = Plan::new(n, circuit.ops());
        // Each qubit's RX, RY, RZ fuse into one gate per layer.
        assert_eq!(plan.fused.len(), n * layers);
        assert!(plan.fused.iter().all(|f| f.ops.len() == 3));
        // Per layer, the six gates on qubits 14..20 sweep the state in
        // pairs; the low qubits' gates and the CZ chain share the blocked
        // passes between.
        let pairs = plan
            .passes
            .iter()
            .filter(|p| matches!(p, Pass::HighPair { .. }))
            .count();
        assert_eq!(pairs, layers * (n - BLOCK_QUBITS) / 2);
        assert_eq!(plan.passes.len(), pairs + layers + 1);
    }
}
