//! Every built-in policy on a state from Python: the exact LP (`lyapunov`)
//! as an expert for imitation learning, the baselines, the shipped QNN.

use crate::scenario::PyScenario;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use qmec_catalog::PolicySpec;
use qmec_model::{Matrix, Policy, Scenario, SystemState};
use std::path::PathBuf;
use std::sync::Mutex;

/// A slot's state as a policy sees it (bits, bit/s); from `Env.state()` or
/// built from arrays: `State(scenario, queue_bits, virtual_bits,
/// server_device_bits, gains, slot=0)`, rates following from the gains.
#[pyclass(name = "State", module = "qmec._qmec", frozen)]
#[derive(Debug, Clone)]
pub struct PyState {
    inner: SystemState,
}

impl PyState {
    pub fn from_state(inner: SystemState) -> PyState {
        PyState { inner }
    }
}

fn matrix_to_py<'py>(py: Python<'py>, matrix: &Matrix) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyArray1::from_slice(py, matrix.as_slice()).reshape([matrix.rows(), matrix.cols()])?.into_any())
}

/// A finite, non-negative vector of `len` entries, or an error naming `field`.
fn read_vector(field: &str, array: &PyReadonlyArray1<'_, f64>, len: usize) -> PyResult<Vec<f64>> {
    let values = array.to_vec().map_err(|_| PyValueError::new_err(format!("{field}: cannot read the array")))?;
    if values.len() != len {
        return Err(PyValueError::new_err(format!("{field}: expected {len} entries, got {}", values.len())));
    }
    check_entries(field, &values)?;
    Ok(values)
}

/// A finite, non-negative `rows` × `cols` matrix, or an error naming `field`.
fn read_matrix(field: &str, array: &PyReadonlyArray2<'_, f64>, rows: usize, cols: usize) -> PyResult<Matrix> {
    if array.shape() != [rows, cols] {
        return Err(PyValueError::new_err(format!("{field}: expected shape [{rows}, {cols}], got {:?}", array.shape())));
    }
    let values: Vec<f64> = array.as_array().iter().copied().collect();
    check_entries(field, &values)?;
    Matrix::from_vec(rows, cols, values).ok_or_else(|| PyValueError::new_err(format!("{field}: wrong size")))
}

fn check_entries(field: &str, values: &[f64]) -> PyResult<()> {
    match values.iter().position(|v| !v.is_finite() || *v < 0.0) {
        Some(i) => Err(PyValueError::new_err(format!("{field}[{i}] is {}: entries must be finite and ≥ 0", values[i]))),
        None => Ok(()),
    }
}

#[pymethods]
impl PyState {
    #[new]
    #[pyo3(signature = (scenario, queue_bits, virtual_bits, server_device_bits, gains, slot = 0))]
    fn new(
        scenario: &PyScenario,
        queue_bits: PyReadonlyArray1<'_, f64>,
        virtual_bits: PyReadonlyArray1<'_, f64>,
        server_device_bits: PyReadonlyArray2<'_, f64>,
        gains: PyReadonlyArray2<'_, f64>,
        slot: u64,
    ) -> PyResult<PyState> {
        let scenario = &scenario.inner;
        let (m, s) = (scenario.devices, scenario.servers);
        let inner = SystemState::new(
            scenario,
            slot,
            read_vector("queue_bits", &queue_bits, m)?,
            read_vector("virtual_bits", &virtual_bits, m)?,
            read_matrix("server_device_bits", &server_device_bits, m, s)?,
            read_matrix("gains", &gains, m, s)?,
        );
        Ok(PyState { inner })
    }

    #[getter]
    fn slot(&self) -> u64 {
        self.inner.slot
    }

    #[getter]
    fn queue_bits<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.inner.queue_bits)
    }

    #[getter]
    fn virtual_bits<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.inner.virtual_bits)
    }

    #[getter]
    fn server_bits<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.inner.server_bits)
    }

    #[getter]
    fn server_device_bits<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        matrix_to_py(py, &self.inner.server_device_bits)
    }

    #[getter]
    fn gains<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        matrix_to_py(py, &self.inner.gains)
    }

    #[getter]
    fn rates_bps<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        matrix_to_py(py, &self.inner.rates_bps)
    }

    fn __repr__(&self) -> String {
        format!("State(slot {}, {} devices, {} servers)", self.inner.slot, self.inner.devices(), self.inner.servers())
    }
}

/// A built-in policy for one scenario, from `qmec.policy(name, scenario)`.
#[pyclass(name = "Policy", module = "qmec._qmec")]
pub struct PyPolicy {
    /// Policies are `Send` but not `Sync`; Python objects must be both.
    inner: Mutex<Box<dyn Policy>>,
    scenario: Scenario,
}

impl std::fmt::Debug for PyPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyPolicy").field("scenario", &self.scenario.name).finish_non_exhaustive()
    }
}

#[pymethods]
impl PyPolicy {
    /// The shares μ (M × S) the policy decides for `state`.
    fn decide<'py>(&self, py: Python<'py>, state: &PyState) -> PyResult<Bound<'py, PyAny>> {
        let state = &state.inner;
        if (state.devices(), state.servers()) != (self.scenario.devices, self.scenario.servers) {
            return Err(PyValueError::new_err(format!(
                "state: {} devices × {} servers, but the policy's scenario has {} × {}",
                state.devices(),
                state.servers(),
                self.scenario.devices,
                self.scenario.servers
            )));
        }
        let mut policy = self.inner.lock().map_err(|_| PyRuntimeError::new_err("policy: poisoned by an earlier failure"))?;
        let decision = policy.decide(&self.scenario, state).map_err(|e| PyRuntimeError::new_err(format!("policy `{}`: {e}", policy.name())))?;
        matrix_to_py(py, &decision.offload)
    }

    #[getter]
    fn name(&self) -> PyResult<String> {
        let policy = self.inner.lock().map_err(|_| PyRuntimeError::new_err("policy: poisoned by an earlier failure"))?;
        Ok(policy.name().to_string())
    }
}

/// `name` built for `scenario` (as `--policy NAME [--model FILE]`), frozen:
/// a trained policy does not learn online here.
#[pyfunction]
#[pyo3(signature = (name, scenario, seed = 0, model = None))]
pub fn policy(name: &str, scenario: &PyScenario, seed: u64, model: Option<PathBuf>) -> PyResult<PyPolicy> {
    let spec = PolicySpec { name: name.into(), model, online: None };
    let inner = qmec_catalog::build(&spec, &scenario.inner, seed).map_err(|e| PyValueError::new_err(format!("policy: {e}")))?;
    Ok(PyPolicy { inner: Mutex::new(inner), scenario: scenario.inner.clone() })
}

/// Every name `policy` accepts.
#[pyfunction]
pub fn policy_names() -> Vec<&'static str> {
    qmec_catalog::known()
}
