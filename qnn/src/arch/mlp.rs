//! The classical `dl` baseline: an MLP on the paper QNN's inputs.
//!
//! Same global vector, same projection, loss and trainer as the QNNs, so a
//! comparison isolates what the quantum layers contribute. Two hidden layers
//! of `hidden` ReLU units, then the M × (S+1) scores.

use super::{set_local_prior, Architecture, ArchKind, CircuitInstance, Upstream, check_input, check_size, fixed_size_fit, uniform_stream};
use crate::dense::{Mlp, MlpTape};
use crate::error::Result;
use crate::features::{StateInput, global_len};

/// Width of both hidden layers.
pub const DEFAULT_HIDDEN: usize = 64;

/// The MLP for one (M, S).
#[derive(Debug, Clone)]
pub struct MlpNet {
    devices: usize,
    servers: usize,
    hidden: usize,
    mlp: Mlp,
    params: Vec<f64>,
}

impl MlpNet {
    /// A fresh network for M devices, S servers.
    pub fn new(devices: usize, servers: usize, hidden: usize, seed: u64) -> Result<MlpNet> {
        check_size("network.devices", devices, 1, 4096)?;
        check_size("network.servers", servers, 1, 1024)?;
        check_size("network.hidden", hidden, 1, 4096)?;
        let mlp = Mlp::new(&[global_len(devices, servers), hidden, hidden, devices * (servers + 1)], 0);
        let mut params = vec![0.0; mlp.n_params()];
        mlp.init(&mut params, uniform_stream(seed));
        set_local_prior(mlp.output_bias_mut(&mut params), devices, servers);
        Ok(MlpNet { devices, servers, hidden, mlp, params })
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
}

impl Architecture for MlpNet {
    fn kind(&self) -> ArchKind {
        ArchKind::Mlp
    }

    fn params(&self) -> &[f64] {
        &self.params
    }

    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.params
    }

    fn fits(&self, devices: usize, servers: usize) -> Result<()> {
        fixed_size_fit(ArchKind::Mlp, (self.devices, self.servers), (devices, servers))
    }

    fn scores(&self, input: &StateInput) -> Result<Vec<f64>> {
        check_input(self, input)?;
        let mut tape = MlpTape::default();
        self.mlp.forward(&self.params, &input.global, &mut tape);
        Ok(tape.output().to_vec())
    }

    fn gradient(&self, inputs: &[&StateInput], upstream: &mut Upstream<'_>) -> Result<(f64, Vec<f64>)> {
        let mut grad = vec![0.0; self.params.len()];
        let mut loss = 0.0;
        let mut tape = MlpTape::default();
        for (b, input) in inputs.iter().enumerate() {
            check_input(self, input)?;
            self.mlp.forward(&self.params, &input.global, &mut tape);
            let (l, d_scores) = upstream(b, tape.output());
            loss += l;
            self.mlp.backward(&self.params, &tape, &d_scores, &mut grad);
        }
        Ok((loss, grad))
    }

    fn circuit_for(&self, _input: &StateInput, _pair: (usize, usize)) -> Option<Result<CircuitInstance>> {
        None
    }
}
