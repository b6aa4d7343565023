//! The paper's QNN (Sci. Rep. 15, 405, 2025), as DESIGN.md describes it.
//!
//! The global vector (see [`crate::features`]) of length d is amplitude
//! encoded on n = ⌈log2 d⌉ qubits. Then, on the line of qubits 0..n:
//!
//! 1. **convolution 1**: a 4-qubit filter — RX, RY, RZ on each of its
//!    qubits, CZ between neighbours — slid along the line with stride 2
//!    (windows overlap by two qubits; the last window is right-aligned), all
//!    windows sharing the filter's 12 parameters;
//! 2. **pooling 1**: qubits are paired (2k, 2k+1); CNOT(2k+1 → 2k) folds the
//!    dropped qubit's parity into the kept one, and the dropped qubit is
//!    measured (⟨Z⟩) and never touched again;
//! 3. **convolution 2** on the survivors with a second 12-parameter filter
//!    (a line shorter than 4 gets the filter's first qubits only);
//! 4. **pooling 2**, as 2.
//!
//! The readout is ⟨Z_q⟩ of every qubit: the qubits pooled away at stages 2
//! and 4 are read when pooled (no later gate touches them, so measuring
//! them at the end is the same), the final survivors at the end. Those n
//! numbers feed a dense layer (ReLU) and a second dense layer to the
//! M × (S+1) scores. Parameters: [filter 1 (12), filter 2 (12), dense].

use super::{set_local_prior, Architecture, ArchKind, CircuitInstance, Encoding, Upstream, check_input, check_size, fixed_size_fit, uniform_stream};
use crate::dense::{Mlp, MlpTape};
use crate::error::Result;
use crate::features::{StateInput, global_len};
use qmec_quantum::encoding::{amplitude_on, qubits_for_amplitudes};
use qmec_quantum::{Angle, Circuit, Observable, Op, batch};

/// Width of the hidden dense layer.
pub const DEFAULT_HIDDEN: usize = 32;
/// Parameters of one 4-qubit filter.
const FILTER_PARAMS: usize = 12;
const QUANTUM_PARAMS: usize = 2 * FILTER_PARAMS;

/// The paper QNN for one (M, S).
#[derive(Debug, Clone)]
pub struct PaperNet {
    devices: usize,
    servers: usize,
    hidden: usize,
    circuit: Circuit,
    observables: Vec<Observable>,
    dense: Mlp,
    params: Vec<f64>,
}

fn filter(c: &mut Circuit, qubits: &[usize], base: usize) -> Result<()> {
    for (i, &q) in qubits.iter().enumerate() {
        let p = base + 3 * i;
        c.push(Op::Rx { qubit: q, angle: Angle::param(p) })?;
        c.push(Op::Ry { qubit: q, angle: Angle::param(p + 1) })?;
        c.push(Op::Rz { qubit: q, angle: Angle::param(p + 2) })?;
    }
    for pair in qubits.windows(2) {
        c.push(Op::Cz { q1: pair[0], q2: pair[1] })?;
    }
    Ok(())
}

fn convolution(c: &mut Circuit, line: &[usize], base: usize) -> Result<()> {
    if line.len() <= 4 {
        return filter(c, line, base);
    }
    let mut start = 0;
    loop {
        filter(c, &line[start..start + 4], base)?;
        if start + 4 == line.len() {
            return Ok(());
        }
        start = (start + 2).min(line.len() - 4);
    }
}

fn pooling(c: &mut Circuit, line: &[usize]) -> Result<Vec<usize>> {
    let mut survivors = Vec::new();
    for pair in line.chunks(2) {
        if let [kept, dropped] = *pair {
            c.push(Op::Cnot { control: dropped, target: kept })?;
        }
        survivors.push(pair[0]);
    }
    Ok(survivors)
}

/// The circuit for an n-qubit register.
pub fn paper_circuit(n_qubits: usize) -> Result<Circuit> {
    let mut c = Circuit::new(n_qubits)?;
    let line: Vec<usize> = (0..n_qubits).collect();
    convolution(&mut c, &line, 0)?;
    let line = pooling(&mut c, &line)?;
    convolution(&mut c, &line, FILTER_PARAMS)?;
    pooling(&mut c, &line)?;
    Ok(c)
}

impl PaperNet {
    /// A fresh network for M devices, S servers, `hidden` hidden units.
    pub fn new(devices: usize, servers: usize, hidden: usize, seed: u64) -> Result<PaperNet> {
        check_size("network.devices", devices, 1, 4096)?;
        check_size("network.servers", servers, 1, 1024)?;
        check_size("network.hidden", hidden, 1, 4096)?;
        let n = qubits_for_amplitudes(global_len(devices, servers));
        check_size("network qubits (from M and S)", n, 1, 20)?;
        let circuit = paper_circuit(n)?;
        let observables = (0..n).map(Observable::Z).collect();
        let dense = Mlp::new(&[n, hidden, devices * (servers + 1)], QUANTUM_PARAMS);
        let mut params = vec![0.0; QUANTUM_PARAMS + dense.n_params()];
        let mut uniform = uniform_stream(seed);
        for p in &mut params[..QUANTUM_PARAMS] {
            *p = std::f64::consts::PI * uniform();
        }
        dense.init(&mut params, uniform);
        set_local_prior(dense.output_bias_mut(&mut params), devices, servers);
        Ok(PaperNet { devices, servers, hidden, circuit, observables, dense, params })
    }

    /// M.
    pub fn devices(&self) -> usize {
        self.devices
    }

    /// S.
    pub fn servers(&self) -> usize {
        self.servers
    }

    /// Hidden width.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Qubits of the register.
    pub fn n_qubits(&self) -> usize {
        self.circuit.n_qubits()
    }

    /// The circuit.
    pub fn circuit(&self) -> &Circuit {
        &self.circuit
    }

    fn encode(&self, input: &StateInput) -> Result<qmec_quantum::StateVector> {
        Ok(amplitude_on(&input.global, self.circuit.n_qubits())?)
    }
}

impl Architecture for PaperNet {
    fn kind(&self) -> ArchKind {
        ArchKind::Paper
    }

    fn params(&self) -> &[f64] {
        &self.params
    }

    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.params
    }

    fn fits(&self, devices: usize, servers: usize) -> Result<()> {
        fixed_size_fit(ArchKind::Paper, (self.devices, self.servers), (devices, servers))
    }

    fn scores(&self, input: &StateInput) -> Result<Vec<f64>> {
        check_input(self, input)?;
        let mut state = self.encode(input)?;
        self.circuit.run(&self.params[..QUANTUM_PARAMS], &mut state)?;
        let z: Vec<f64> = self
            .observables
            .iter()
            .map(|o| o.expectation(&state))
            .collect::<Result<_, _>>()?;
        let mut tape = MlpTape::default();
        self.dense.forward(&self.params, &z, &mut tape);
        Ok(tape.output().to_vec())
    }

    fn gradient(&self, inputs: &[&StateInput], upstream: &mut Upstream<'_>) -> Result<(f64, Vec<f64>)> {
        for input in inputs {
            check_input(self, input)?;
        }
        let states = inputs.iter().map(|i| self.encode(i)).collect::<Result<Vec<_>>>()?;
        let theta = &self.params[..QUANTUM_PARAMS];
        let forward = batch::forward(&self.circuit, theta, &states, &self.observables)?;
        let n_obs = self.observables.len();
        let mut grad = vec![0.0; self.params.len()];
        let mut weights = vec![0.0; inputs.len() * n_obs];
        let mut loss = 0.0;
        let mut tape = MlpTape::default();
        for (b, z) in forward.expectations().chunks_exact(n_obs).enumerate() {
            self.dense.forward(&self.params, z, &mut tape);
            let (l, d_scores) = upstream(b, tape.output());
            loss += l;
            let dz = self.dense.backward(&self.params, &tape, &d_scores, &mut grad);
            weights[b * n_obs..(b + 1) * n_obs].copy_from_slice(&dz);
        }
        let g_quantum = forward.vjp(&weights)?;
        for (g, q) in grad.iter_mut().zip(&g_quantum) {
            *g += q;
        }
        Ok((loss, grad))
    }

    fn circuit_for(&self, input: &StateInput, _pair: (usize, usize)) -> Option<Result<CircuitInstance>> {
        Some(self.encode(input).map(|state| {
            let amps = state.amplitudes().iter().map(|a| a.re).collect();
            CircuitInstance {
                circuit: self.circuit.clone(),
                params: self.params[..QUANTUM_PARAMS].to_vec(),
                input: state,
                encoding: Encoding::Amplitude(amps),
                readout: (0..self.circuit.n_qubits()).collect(),
            }
        }))
    }
}
