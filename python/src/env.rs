//! `Env` and `VecEnv`: [`OffloadEnv`]s behind numpy arrays. A step is one
//! call from Python whatever the number of environments; the Gymnasium
//! classes (`python/qmec/env.py`) add the spaces, seeding and episode ends.

use crate::offload_env::{ActionKind, EnvError, OffloadEnv, StepFigures};
use crate::policy::PyState;
use crate::scenario::PyScenario;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The names of [`StepFigures`] in `info`, in the order [`figure_values`] gives.
const FIGURES: [&str; 9] = [
    "dpp_objective",
    "throughput_bits",
    "tx_power_w",
    "compute_power_w",
    "queue_bits",
    "virtual_bits",
    "server_bits",
    "lp_objective",
    "lp_share",
];

fn figure_values(figures: &StepFigures) -> [f64; 9] {
    [
        figures.reward,
        figures.throughput_bits,
        figures.tx_power_w,
        figures.compute_power_w,
        figures.queue_bits,
        figures.virtual_bits,
        figures.server_bits,
        figures.lp_objective,
        figures.lp_share,
    ]
}

/// A refused action is bad input (`ValueError`); a failed LP is ours.
fn to_py(error: EnvError) -> PyErr {
    to_py_in("", error)
}

/// [`to_py`] with `context` before the message (which environment of a batch).
fn to_py_in(context: &str, error: EnvError) -> PyErr {
    let message = format!("{context}{error}");
    match error {
        EnvError::Lp { .. } => PyRuntimeError::new_err(message),
        _ => PyValueError::new_err(message),
    }
}

/// Reads an action array as contiguous f64 (the Python side converts).
fn action_slice<'a>(action: &'a PyReadonlyArrayDyn<'_, f64>) -> PyResult<&'a [f64]> {
    action.as_slice().map_err(|_| PyValueError::new_err("action: the array must be C-contiguous"))
}

/// One environment; `action` is "scores" or "shares" (see `qmec.OffloadEnv`).
#[pyclass(name = "Env", module = "qmec._qmec")]
#[derive(Debug)]
pub struct PyEnv {
    env: OffloadEnv,
}

#[pymethods]
impl PyEnv {
    #[new]
    #[pyo3(signature = (scenario, action = "scores", lp = true, seed = 0))]
    fn new(scenario: &PyScenario, action: &str, lp: bool, seed: u64) -> PyResult<PyEnv> {
        let kind = ActionKind::parse(action).map_err(to_py)?;
        Ok(PyEnv { env: OffloadEnv::new(&scenario.inner, kind, lp, seed) })
    }

    /// Starts an episode; returns the first observation.
    fn reset<'py>(&mut self, py: Python<'py>, seed: u64) -> PyResult<Bound<'py, PyAny>> {
        self.env.reset(seed);
        self.observation(py)
    }

    /// The observation of the current state, M × (2 + S), float32.
    fn observation<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let [rows, cols] = self.env.observation_shape();
        let mut out = vec![0.0f32; rows * cols];
        self.env.write_observation(&mut out);
        Ok(PyArray1::from_vec(py, out).reshape([rows, cols])?.into_any())
    }

    /// Applies `action` (float64, C-contiguous); returns (observation,
    /// reward, info).
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        action: PyReadonlyArrayDyn<'py, f64>,
    ) -> PyResult<(Bound<'py, PyAny>, f64, Bound<'py, PyDict>)> {
        let figures = self.env.step(action.shape(), action_slice(&action)?).map_err(to_py)?;
        let info = PyDict::new(py);
        // A figure not measured (NaN: the LP off, or no positive optimum to
        // share) is left out, as Gymnasium leaves out what it has not.
        for (name, value) in FIGURES.iter().zip(figure_values(&figures)).filter(|(_, v)| !v.is_nan()) {
            info.set_item(name, value)?;
        }
        Ok((self.observation(py)?, figures.reward, info))
    }

    /// The state the next action decides (for `Policy.decide`).
    fn state(&self) -> PyState {
        PyState::from_state(self.env.state().clone())
    }

    #[getter]
    fn observation_shape(&self) -> (usize, usize) {
        let [rows, cols] = self.env.observation_shape();
        (rows, cols)
    }

    #[getter]
    fn action_shape(&self) -> (usize, usize) {
        let [rows, cols] = self.env.action_shape();
        (rows, cols)
    }
}

/// Many environments of one scenario, stepped together.
#[pyclass(name = "VecEnv", module = "qmec._qmec")]
#[derive(Debug)]
pub struct PyVecEnv {
    envs: Vec<OffloadEnv>,
}

#[pymethods]
impl PyVecEnv {
    #[new]
    #[pyo3(signature = (scenario, num_envs, action = "scores", lp = true))]
    fn new(scenario: &PyScenario, num_envs: usize, action: &str, lp: bool) -> PyResult<PyVecEnv> {
        if num_envs == 0 {
            return Err(PyValueError::new_err("num_envs: must be at least 1"));
        }
        let kind = ActionKind::parse(action).map_err(to_py)?;
        let envs = (0..num_envs as u64).map(|i| OffloadEnv::new(&scenario.inner, kind, lp, i)).collect();
        Ok(PyVecEnv { envs })
    }

    /// Resets environment `indices[k]` with `seeds[k]`.
    fn reset_some(&mut self, indices: Vec<usize>, seeds: Vec<u64>) -> PyResult<()> {
        if indices.len() != seeds.len() {
            return Err(PyValueError::new_err(format!("seeds: {} seeds for {} environments", seeds.len(), indices.len())));
        }
        for (&i, &seed) in indices.iter().zip(&seeds) {
            let count = self.envs.len();
            let env = self.envs.get_mut(i).ok_or_else(|| PyValueError::new_err(format!("indices: {i} is not below {count}")))?;
            env.reset(seed);
        }
        Ok(())
    }

    /// Every environment's observation, N × M × (2 + S), float32.
    fn observations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let [rows, cols] = self.envs[0].observation_shape();
        let mut out = vec![0.0f32; self.envs.len() * rows * cols];
        for (env, chunk) in self.envs.iter().zip(out.chunks_exact_mut(rows * cols)) {
            env.write_observation(chunk);
        }
        Ok(PyArray1::from_vec(py, out).reshape([self.envs.len(), rows, cols])?.into_any())
    }

    /// Steps every environment whose `skip` is false with its action
    /// (`actions`: N × action shape, float64); returns (observations,
    /// rewards, info of arrays). A skipped environment keeps its state and
    /// reports zeros. Every action is checked before any environment moves.
    /// A figure not measured is NaN (masked out by the Python class).
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        actions: PyReadonlyArrayDyn<'py, f64>,
        skip: PyReadonlyArray1<'py, bool>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyDict>)> {
        let count = self.envs.len();
        let shape = actions.shape();
        if shape.first() != Some(&count) {
            return Err(PyValueError::new_err(format!("actions: expected {count} actions (first axis), got shape {shape:?}")));
        }
        let skip = skip.as_slice().map_err(|_| PyValueError::new_err("skip: the array must be C-contiguous"))?;
        if skip.len() != count {
            return Err(PyValueError::new_err(format!("skip: expected {count} flags, got {}", skip.len())));
        }
        let values = action_slice(&actions)?;
        let per_env = values.len() / count;
        let mut prepared = Vec::with_capacity(count);
        for (i, env) in self.envs.iter_mut().enumerate() {
            if skip[i] {
                prepared.push(None);
                continue;
            }
            let one = env
                .prepare(&shape[1..], &values[i * per_env..(i + 1) * per_env])
                .map_err(|e| to_py_in(&format!("environment {i}: "), e))?;
            prepared.push(Some(one));
        }
        let mut columns = vec![vec![0.0f64; count]; FIGURES.len()];
        for (i, (env, one)) in self.envs.iter_mut().zip(prepared).enumerate() {
            if let Some(one) = one {
                for (column, value) in columns.iter_mut().zip(figure_values(&env.apply(one))) {
                    column[i] = value;
                }
            }
        }
        let info = PyDict::new(py);
        for (name, column) in FIGURES.iter().zip(columns.iter()) {
            info.set_item(name, PyArray1::from_slice(py, column))?;
        }
        let rewards = PyArray1::from_vec(py, columns.swap_remove(0)).into_any();
        Ok((self.observations(py)?, rewards, info))
    }

    /// Environment `index`'s current state.
    fn state(&self, index: usize) -> PyResult<PyState> {
        let env = self.envs.get(index).ok_or_else(|| PyValueError::new_err(format!("index: {index} is not below {}", self.envs.len())))?;
        Ok(PyState::from_state(env.state().clone()))
    }

    #[getter]
    fn num_envs(&self) -> usize {
        self.envs.len()
    }
}
