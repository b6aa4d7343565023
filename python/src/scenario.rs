//! Scenarios from Python, and whole runs: `simulate` is `qmec simulate`
//! without the run folder, over the same engine and summary.

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use qmec_catalog::{Execution, OnlineSpec, PolicySpec};
use qmec_model::Scenario;
use std::path::PathBuf;

/// A validated scenario: `Scenario("paper")` (built-in: paper, paper-small,
/// scaled, overload) or `Scenario.from_toml(path)`.
#[pyclass(name = "Scenario", module = "qmec._qmec", frozen)]
#[derive(Debug, Clone)]
pub struct PyScenario {
    pub inner: Scenario,
}

#[pymethods]
impl PyScenario {
    #[new]
    fn new(name: &str) -> PyResult<PyScenario> {
        let inner = Scenario::builtin(name).map_err(|e| PyValueError::new_err(format!("scenario: {e}")))?;
        Ok(PyScenario { inner })
    }

    /// A scenario from a TOML file (as `qmec scenario show paper` prints).
    #[staticmethod]
    fn from_toml(path: PathBuf) -> PyResult<PyScenario> {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| PyOSError::new_err(format!("scenario file {}: {e}", path.display())))?;
        let inner =
            Scenario::from_toml(&text).map_err(|e| PyValueError::new_err(format!("scenario file {}: {e}", path.display())))?;
        Ok(PyScenario { inner })
    }

    /// The same scenario with `devices` devices and `servers` servers.
    fn resized(&self, devices: usize, servers: usize) -> PyResult<PyScenario> {
        let inner = self.inner.resized(devices, servers).map_err(|e| PyValueError::new_err(format!("scenario: {e}")))?;
        Ok(PyScenario { inner })
    }

    fn to_toml(&self) -> String {
        self.inner.to_toml()
    }

    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    #[getter]
    fn devices(&self) -> usize {
        self.inner.devices
    }

    #[getter]
    fn servers(&self) -> usize {
        self.inner.servers
    }

    #[getter]
    fn slot_seconds(&self) -> f64 {
        self.inner.slot_seconds
    }

    #[getter]
    fn queue_unit_bits(&self) -> f64 {
        self.inner.control.queue_unit_bits
    }

    #[getter]
    fn bandwidth_hz(&self) -> f64 {
        self.inner.channel.bandwidth_hz
    }

    fn __repr__(&self) -> String {
        format!("Scenario({:?}: {} devices, {} servers)", self.inner.name, self.inner.devices, self.inner.servers)
    }
}

/// Runs `slots` slots of `policy` and returns the summary as JSON (the
/// `summary.json` of `qmec simulate` with the same arguments). `online`
/// lets the policies that can learn in-line, as the CLI does by default.
#[pyfunction]
#[pyo3(signature = (scenario, policy, slots, seed, model = None, online = true))]
pub fn simulate_json(
    scenario: &PyScenario,
    policy: &str,
    slots: u64,
    seed: u64,
    model: Option<PathBuf>,
    online: bool,
) -> PyResult<String> {
    let mut spec = PolicySpec { name: policy.into(), model, online: None };
    if online {
        spec = spec.learning(OnlineSpec { execution: Execution::Inline, learn: true, checkpoints: None });
    }
    let scenario = &scenario.inner;
    let mut built = qmec_catalog::build(&spec, scenario, seed).map_err(|e| PyValueError::new_err(format!("policy: {e}")))?;
    let summary = qmec_sim::simulate_with(scenario, seed, built.as_mut(), slots, |_| Ok::<(), qmec_sim::SimError>(()))
        // A policy failing mid-run is not bad input.
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    serde_json::to_string(&summary).map_err(|e| PyValueError::new_err(format!("summary: {e}")))
}
