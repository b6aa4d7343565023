//! Fully connected layers with hand-written backpropagation.
//!
//! The classical parts of every architecture (the paper QNN's two dense
//! layers, the MLP baseline, the per-link readout) are small enough that a
//! framework would cost more than it saves; this module is the whole of the
//! classical autodiff, and the tests check it against finite differences.
//!
//! Parameters live in one flat slice owned by the architecture (so the
//! optimiser sees a single vector); a [`Dense`] only knows its offset.

/// y = W x + b, W row-major `outputs × inputs`, stored at `offset` as W then b.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dense {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// Start of this layer's parameters in the flat vector.
    pub offset: usize,
}

impl Dense {
    /// Number of parameters: weights and biases.
    pub fn n_params(&self) -> usize {
        self.outputs * (self.inputs + 1)
    }

    /// y = W x + b.
    pub fn forward(&self, params: &[f64], x: &[f64], y: &mut [f64]) {
        let w = &params[self.offset..self.offset + self.outputs * self.inputs];
        let b = &params[self.offset + self.outputs * self.inputs..self.offset + self.n_params()];
        for ((yo, row), bo) in y.iter_mut().zip(w.chunks_exact(self.inputs)).zip(b) {
            *yo = bo + row.iter().zip(x).map(|(a, c)| a * c).sum::<f64>();
        }
    }

    /// Adds ∂/∂W, ∂/∂b into `grad` and writes ∂/∂x into `dx` (if given).
    pub fn backward(&self, params: &[f64], x: &[f64], dy: &[f64], grad: &mut [f64], dx: Option<&mut [f64]>) {
        let n_w = self.outputs * self.inputs;
        {
            let (gw, gb) = grad[self.offset..self.offset + self.n_params()].split_at_mut(n_w);
            for ((row, g), &d) in gw.chunks_exact_mut(self.inputs).zip(gb.iter_mut()).zip(dy) {
                *g += d;
                for (r, &xi) in row.iter_mut().zip(x) {
                    *r += d * xi;
                }
            }
        }
        if let Some(dx) = dx {
            dx.fill(0.0);
            let w = &params[self.offset..self.offset + n_w];
            for (row, &d) in w.chunks_exact(self.inputs).zip(dy) {
                for (o, &wi) in dx.iter_mut().zip(row) {
                    *o += d * wi;
                }
            }
        }
    }

    /// Glorot-uniform weights, zero biases, drawn by `uniform(-1, 1)`.
    pub fn init(&self, params: &mut [f64], mut uniform: impl FnMut() -> f64) {
        let limit = (6.0 / (self.inputs + self.outputs) as f64).sqrt();
        let n_w = self.outputs * self.inputs;
        for w in &mut params[self.offset..self.offset + n_w] {
            *w = limit * uniform();
        }
        params[self.offset + n_w..self.offset + self.n_params()].fill(0.0);
    }
}

/// A stack of [`Dense`] layers with ReLU between them (none after the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mlp {
    layers: Vec<Dense>,
}

/// Activations of one [`Mlp::forward`], kept for [`Mlp::backward`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MlpTape {
    /// acts[0] = input, acts[i] = post-ReLU output of layer i-1, last = output.
    acts: Vec<Vec<f64>>,
}

impl MlpTape {
    /// The network's output of the forward pass this tape recorded.
    pub fn output(&self) -> &[f64] {
        self.acts.last().map_or(&[], |v| v.as_slice())
    }
}

impl Mlp {
    /// Layers of widths `widths[0] → widths[1] → …`, parameters from `offset`.
    pub fn new(widths: &[usize], offset: usize) -> Mlp {
        let mut layers = Vec::new();
        let mut at = offset;
        for w in widths.windows(2) {
            let layer = Dense { inputs: w[0], outputs: w[1], offset: at };
            at += layer.n_params();
            layers.push(layer);
        }
        Mlp { layers }
    }

    /// Parameters of all layers.
    pub fn n_params(&self) -> usize {
        self.layers.iter().map(Dense::n_params).sum()
    }

    /// Input width.
    pub fn inputs(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs)
    }

    /// Output width.
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs)
    }

    /// The layer widths, input first.
    pub fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.layers.iter().map(|l| l.inputs).collect();
        w.extend(self.layers.last().map(|l| l.outputs));
        w
    }

    /// The last layer's biases, mutably (to set a prior on the outputs).
    pub fn output_bias_mut<'a>(&self, params: &'a mut [f64]) -> &'a mut [f64] {
        match self.layers.last() {
            Some(l) => &mut params[l.offset + l.outputs * l.inputs..l.offset + l.n_params()],
            None => &mut [],
        }
    }

    /// Glorot initialisation of every layer.
    pub fn init(&self, params: &mut [f64], mut uniform: impl FnMut() -> f64) {
        for l in &self.layers {
            l.init(params, &mut uniform);
        }
    }

    /// Runs the stack on `x`, recording the activations in `tape`.
    pub fn forward(&self, params: &[f64], x: &[f64], tape: &mut MlpTape) {
        tape.acts.resize(self.layers.len() + 1, Vec::new());
        tape.acts[0].clear();
        tape.acts[0].extend_from_slice(x);
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            let (before, after) = tape.acts.split_at_mut(i + 1);
            let y = &mut after[0];
            y.clear();
            y.resize(layer.outputs, 0.0);
            layer.forward(params, &before[i], y);
            if i < last {
                for v in y.iter_mut() {
                    *v = v.max(0.0);
                }
            }
        }
    }

    /// Adds the parameter gradient for upstream `dy` into `grad`; returns ∂/∂x.
    pub fn backward(&self, params: &[f64], tape: &MlpTape, dy: &[f64], grad: &mut [f64]) -> Vec<f64> {
        let mut d = dy.to_vec();
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate().rev() {
            if i < last {
                // ReLU: the recorded post-activation is 0 where the unit was off.
                for (di, &a) in d.iter_mut().zip(&tape.acts[i + 1]) {
                    if a <= 0.0 {
                        *di = 0.0;
                    }
                }
            }
            let mut dx = vec![0.0; layer.inputs];
            layer.backward(params, &tape.acts[i], &d, grad, Some(&mut dx));
            d = dx;
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlp_backprop_matches_finite_differences() {
        let mlp = Mlp::new(&[5, 7, 6, 3], 2);
        let mut params = vec![0.0; 2 + mlp.n_params()];
        let mut k = 0.0f64;
        mlp.init(&mut params, || {
            k += 1.0;
            (k * 0.913).sin()
        });
        // Non-zero biases so ReLUs are in both states.
        for (i, p) in params.iter_mut().enumerate() {
            *p += 0.05 * (i as f64 * 0.31).cos();
        }
        let x = [0.3, -1.2, 0.8, 0.05, -0.4];
        let dy = [0.7, -0.2, 1.1];
        let f = |p: &[f64], x: &[f64]| {
            let mut t = MlpTape::default();
            mlp.forward(p, x, &mut t);
            t.output().iter().zip(&dy).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut tape = MlpTape::default();
        mlp.forward(&params, &x, &mut tape);
        let mut grad = vec![0.0; params.len()];
        let dx = mlp.backward(&params, &tape, &dy, &mut grad);
        let h = 1e-6;
        assert_eq!(grad[0], 0.0, "parameters before the offset are untouched");
        for i in 2..params.len() {
            let mut up = params.clone();
            up[i] += h;
            let mut down = params.clone();
            down[i] -= h;
            let fd = (f(&up, &x) - f(&down, &x)) / (2.0 * h);
            assert!((fd - grad[i]).abs() < 1e-7, "param {i}: {} vs {fd}", grad[i]);
        }
        for i in 0..x.len() {
            let mut up = x;
            up[i] += h;
            let mut down = x;
            down[i] -= h;
            let fd = (f(&params, &up) - f(&params, &down)) / (2.0 * h);
            assert!((fd - dx[i]).abs() < 1e-7, "input {i}: {} vs {fd}", dx[i]);
        }
    }
}
