//! The `lydroo` actor: a classical MLP shared by every device–server pair.
//!
//! LyDROO's actor (Bi et al., IEEE TWC 2021) is a DNN reading the whole
//! state, which fixes M and S at build time. Ours reads the same size-free
//! per-link features as the per-link QNN ([`crate::features`]) and scores
//! one pair at a time, so `lydroo` shares the feature, quantisation and
//! critic pipeline of `qnn` and a comparison of the two isolates the
//! scorer: a classical MLP against the quantum circuit. The pair's score is
//! the MLP's output (4 → hidden → hidden → 1, ReLU); the stay-local score
//! of device m is c₀ + c₁ max_s Ψ̂_ms, as in the per-link QNN.
//! Parameters: [MLP, c₀, c₁].

use super::{Architecture, ArchKind, CircuitInstance, Upstream, check_size, uniform_stream};
use crate::dense::{Mlp, MlpTape};
use crate::error::Result;
use crate::features::{LINK_FEATURES, StateInput};

/// Width of both hidden layers: LyDROO's actor has two hidden layers too.
pub const DEFAULT_HIDDEN: usize = 32;

/// The shared per-pair MLP.
#[derive(Debug, Clone)]
pub struct PairMlpNet {
    hidden: usize,
    mlp: Mlp,
    params: Vec<f64>,
}

impl PairMlpNet {
    /// A fresh network with `hidden` units per hidden layer.
    pub fn new(hidden: usize, seed: u64) -> Result<PairMlpNet> {
        check_size("network.hidden", hidden, 1, 4096)?;
        let mlp = Mlp::new(&[LINK_FEATURES, hidden, hidden, 1], 0);
        let mut params = vec![0.0; mlp.n_params() + 2];
        mlp.init(&mut params, uniform_stream(seed));
        Ok(PairMlpNet { hidden, mlp, params })
    }

    /// Hidden width.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    fn local(&self) -> (f64, f64) {
        let n = self.mlp.n_params();
        (self.params[n], self.params[n + 1])
    }

    /// Scores of every open pair and every stay-local option, with each
    /// open pair's tape when `tapes` is given (training).
    fn forward(&self, input: &StateInput, mut tapes: Option<&mut Vec<(usize, MlpTape)>>) -> Vec<f64> {
        let (m_count, s_count) = (input.devices(), input.servers());
        let width = s_count + 1;
        let (c0, c1) = self.local();
        let mut out = vec![0.0; m_count * width];
        let mut tape = MlpTape::default();
        for m in 0..m_count {
            out[m * width] = c0 + c1 * input.device_best[m];
            for s in 0..s_count {
                // A closed pair is masked by the critic and every loss.
                if !input.links.open[m * s_count + s] {
                    continue;
                }
                self.mlp.forward(&self.params, input.link(m, s), &mut tape);
                out[m * width + 1 + s] = tape.output().first().copied().unwrap_or(0.0);
                if let Some(tapes) = tapes.as_deref_mut() {
                    tapes.push((m * width + 1 + s, tape.clone()));
                }
            }
        }
        out
    }
}

impl Architecture for PairMlpNet {
    fn kind(&self) -> ArchKind {
        ArchKind::PairMlp
    }

    fn params(&self) -> &[f64] {
        &self.params
    }

    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.params
    }

    fn fits(&self, _devices: usize, _servers: usize) -> Result<()> {
        Ok(())
    }

    fn scores(&self, input: &StateInput) -> Result<Vec<f64>> {
        Ok(self.forward(input, None))
    }

    fn gradient(&self, inputs: &[&StateInput], upstream: &mut Upstream<'_>) -> Result<(f64, Vec<f64>)> {
        let n = self.mlp.n_params();
        let mut grad = vec![0.0; self.params.len()];
        let mut loss = 0.0;
        let mut tapes = Vec::new();
        for (b, input) in inputs.iter().enumerate() {
            tapes.clear();
            let scores = self.forward(input, Some(&mut tapes));
            let (l, d_scores) = upstream(b, &scores);
            loss += l;
            let width = input.servers() + 1;
            for (m, &best) in input.device_best.iter().enumerate() {
                grad[n] += d_scores[m * width];
                grad[n + 1] += d_scores[m * width] * best;
            }
            for (at, tape) in &tapes {
                self.mlp.backward(&self.params, tape, &[d_scores[*at]], &mut grad);
            }
        }
        Ok((loss, grad))
    }

    fn circuit_for(&self, _input: &StateInput, _pair: (usize, usize)) -> Option<Result<CircuitInstance>> {
        None
    }
}
