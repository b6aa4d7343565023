//! The per-link QNN (ours): one small circuit shared by every device–server
//! pair.
//!
//! Pair (m, s)'s four features x ∈ [-1, 1]⁴ (see [`crate::features`]) are
//! angle encoded, RY(π/2 · (1 + x_q)) on qubit q, then a layered ansatz
//! ([`Circuit::layered`]: RX, RY, RZ per qubit and a CZ chain per layer)
//! runs and ⟨Z_q⟩ of the four qubits are read out. The pair's score is
//! e^ρ (w · ⟨Z⟩ + b); the stay-local score of device m is
//! e^ρ (c₀ + c₁ max_s Ψ̂_ms). The learned log-temperature ρ lets Adam sharpen
//! the softmax by orders of magnitude in a few hundred steps, which a plain
//! weight at learning rate 10⁻³ could not.
//!
//! Nothing depends on M or S, so a model serves any scenario. Decisions use
//! the compiled readout ([`CompiledReadout`]); training uses the statevector
//! and the quantum crate's adjoint VJP. Parameters:
//! [circuit (12·layers), w (4), b, c₀, c₁, ρ].

use super::{Architecture, ArchKind, CircuitInstance, Encoding, Upstream, check_size, uniform_stream};
use crate::error::Result;
use crate::features::{LINK_FEATURES, StateInput};
use crate::heisenberg::CompiledReadout;
use qmec_quantum::{Circuit, Observable, StateVector, batch, encoding};
use std::f64::consts::FRAC_PI_2;

/// Ansatz layers of the shared circuit.
pub const DEFAULT_LAYERS: usize = 2;
const QUBITS: usize = LINK_FEATURES;
/// Pairs per slot above which a decision is split across threads.
const PARALLEL_PAIRS: usize = 8192;

/// The per-link QNN.
#[derive(Debug, Clone)]
pub struct PerLinkNet {
    layers: usize,
    circuit: Circuit,
    observables: Vec<Observable>,
    params: Vec<f64>,
    compiled: CompiledReadout,
}

/// Encoding angles of one pair's features.
pub fn angles(features: &[f64]) -> [f64; QUBITS] {
    let mut a = [0.0; QUBITS];
    for (t, &x) in a.iter_mut().zip(features) {
        *t = FRAC_PI_2 * (1.0 + x);
    }
    a
}

impl PerLinkNet {
    /// A fresh network with `layers` ansatz layers.
    pub fn new(layers: usize, seed: u64) -> Result<PerLinkNet> {
        check_size("network.layers", layers, 1, 64)?;
        let circuit = Circuit::layered(QUBITS, layers)?;
        let n_circuit = circuit.n_params();
        let mut params = vec![0.0; n_circuit + QUBITS + 4];
        let mut uniform = uniform_stream(seed);
        for p in &mut params[..n_circuit] {
            *p = 0.5 * std::f64::consts::PI * uniform();
        }
        for p in &mut params[n_circuit..n_circuit + QUBITS] {
            *p = uniform();
        }
        // b, c0, c1 start at 0; ρ at ln 4.
        let last = params.len() - 1;
        params[last] = 4f64.ln();
        let observables = (0..QUBITS).map(Observable::Z).collect();
        let compiled = CompiledReadout::new(&circuit, &params[..n_circuit], &[0], &[0.0])?;
        let mut net = PerLinkNet { layers, circuit, observables, params, compiled };
        net.refresh()?;
        Ok(net)
    }

    /// Ansatz layers.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// The shared circuit.
    pub fn circuit(&self) -> &Circuit {
        &self.circuit
    }

    fn split(&self) -> (&[f64], &[f64], f64, f64, f64, f64) {
        let n = self.circuit.n_params();
        let p = &self.params;
        (&p[..n], &p[n..n + QUBITS], p[n + QUBITS], p[n + QUBITS + 1], p[n + QUBITS + 2], p[n + QUBITS + 3])
    }

    /// The scores of devices `rows` into `out` (rows × (S+1)).
    fn score_rows(&self, input: &StateInput, rows: std::ops::Range<usize>, out: &mut [f64]) {
        let s_count = input.servers();
        let (_, _, b, c0, c1, rho) = self.split();
        let temp = rho.exp();
        let mut psi = vec![0.0; 1 << QUBITS];
        for (m, row) in rows.zip(out.chunks_exact_mut(s_count + 1)) {
            row[0] = temp * (c0 + c1 * input.device_best[m]);
            for s in 0..s_count {
                // A closed link's score is masked by the projection: skip it.
                if !input.links.open[m * s_count + s] {
                    continue;
                }
                let a = angles(input.link(m, s));
                row[1 + s] = temp * (self.compiled.evaluate(&a, &mut psi) + b);
            }
        }
    }

    /// The pair (m, s)'s ⟨Z⟩ readout by statevector simulation (the
    /// reference the compiled path is tested against).
    pub fn expectations(&self, input: &StateInput, m: usize, s: usize) -> Result<Vec<f64>> {
        let (theta, ..) = self.split();
        let mut state = encoding::angle(&angles(input.link(m, s)))?;
        self.circuit.run(theta, &mut state)?;
        Ok(self.observables.iter().map(|o| o.expectation(&state)).collect::<Result<_, _>>()?)
    }
}

impl Architecture for PerLinkNet {
    fn kind(&self) -> ArchKind {
        ArchKind::PerLink
    }

    fn params(&self) -> &[f64] {
        &self.params
    }

    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.params
    }

    fn refresh(&mut self) -> Result<()> {
        let (theta, w, ..) = self.split();
        let qubits: Vec<usize> = (0..QUBITS).collect();
        self.compiled = CompiledReadout::new(&self.circuit, theta, &qubits, w)?;
        Ok(())
    }

    fn reads_global(&self) -> bool {
        false
    }

    fn fits(&self, _devices: usize, _servers: usize) -> Result<()> {
        Ok(())
    }

    fn scores(&self, input: &StateInput) -> Result<Vec<f64>> {
        let (m_count, width) = (input.devices(), input.servers() + 1);
        let mut out = vec![0.0; m_count * width];
        if m_count * (width - 1) < PARALLEL_PAIRS || m_count < 2 {
            self.score_rows(input, 0..m_count, &mut out);
            return Ok(out);
        }
        // Only asked for large slots: the query reads cgroup files (tens of µs).
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads < 2 {
            self.score_rows(input, 0..m_count, &mut out);
            return Ok(out);
        }
        let chunk = m_count.div_ceil(threads);
        std::thread::scope(|scope| {
            for (i, part) in out.chunks_mut(chunk * width).enumerate() {
                let start = i * chunk;
                let rows = start..start + part.len() / width;
                scope.spawn(move || self.score_rows(input, rows, part));
            }
        });
        Ok(out)
    }

    fn gradient(&self, inputs: &[&StateInput], upstream: &mut Upstream<'_>) -> Result<(f64, Vec<f64>)> {
        let (theta, w, b, c0, c1, rho) = self.split();
        let n_circuit = theta.len();
        let temp = rho.exp();
        // Closed pairs are masked by every loss (zero gradient): simulate
        // only the open ones.
        let mut states = Vec::new();
        for input in inputs {
            for (pair, _) in input.links.open.iter().enumerate().filter(|(_, o)| **o) {
                let (m, s) = (pair / input.servers(), pair % input.servers());
                states.push(encoding::angle(&angles(input.link(m, s)))?);
            }
        }
        let forward = batch::forward(&self.circuit, theta, &states, &self.observables)?;
        let z_all = forward.expectations();
        let mut grad = vec![0.0; self.params.len()];
        let mut weights = vec![0.0; z_all.len()];
        let mut loss = 0.0;
        let mut k = 0;
        let (i_w, i_b) = (n_circuit, n_circuit + QUBITS);
        let (i_c0, i_c1, i_rho) = (i_b + 1, i_b + 2, i_b + 3);
        for (bi, input) in inputs.iter().enumerate() {
            let (m_count, s_count) = (input.devices(), input.servers());
            let width = s_count + 1;
            let mut scores = vec![0.0; m_count * width];
            let mut open_index = vec![usize::MAX; m_count * s_count];
            for m in 0..m_count {
                scores[m * width] = temp * (c0 + c1 * input.device_best[m]);
                for s in 0..s_count {
                    if input.links.open[m * s_count + s] {
                        let z = &z_all[k * QUBITS..][..QUBITS];
                        scores[m * width + 1 + s] = temp * (w.iter().zip(z).map(|(a, c)| a * c).sum::<f64>() + b);
                        open_index[m * s_count + s] = k;
                        k += 1;
                    }
                }
            }
            let (l, d_scores) = upstream(bi, &scores);
            loss += l;
            for m in 0..m_count {
                let d_local = d_scores[m * width];
                grad[i_c0] += d_local * temp;
                grad[i_c1] += d_local * temp * input.device_best[m];
                grad[i_rho] += d_local * scores[m * width];
                for s in 0..s_count {
                    let j = open_index[m * s_count + s];
                    if j == usize::MAX {
                        continue;
                    }
                    let d = d_scores[m * width + 1 + s];
                    let z = &z_all[j * QUBITS..][..QUBITS];
                    for q in 0..QUBITS {
                        grad[i_w + q] += d * temp * z[q];
                        weights[j * QUBITS + q] = d * temp * w[q];
                    }
                    grad[i_b] += d * temp;
                    grad[i_rho] += d * scores[m * width + 1 + s];
                }
            }
        }
        let g_circuit = forward.vjp(&weights)?;
        for (g, q) in grad.iter_mut().zip(&g_circuit) {
            *g += q;
        }
        Ok((loss, grad))
    }

    fn circuit_for(&self, input: &StateInput, pair: (usize, usize)) -> Option<Result<CircuitInstance>> {
        let (m, s) = pair;
        if m >= input.devices() || s >= input.servers() {
            return Some(Err(crate::error::field("pair", format!("({m}, {s}) is outside {}×{}", input.devices(), input.servers()))));
        }
        let a = angles(input.link(m, s)).to_vec();
        let (theta, ..) = self.split();
        Some(encoding::angle(&a).map_err(Into::into).map(|state: StateVector| CircuitInstance {
            circuit: self.circuit.clone(),
            params: theta.to_vec(),
            input: state,
            encoding: Encoding::Angle(a),
            readout: (0..QUBITS).collect(),
        }))
    }
}
