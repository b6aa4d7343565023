//! `qmec._qmec`: the compiled half of the Python package `qmec` (PyO3,
//! built by maturin into an abi3 wheel). It runs the simulator's own model
//! code, so a figure from Python is the figure the `qmec` command prints.
//!
//! # Layout
//! - `offload_env`: the simulator as an RL environment, free of Python:
//!   action → feasible decision → slot → observation, reward and figures.
//! - `scenario`: `Scenario` and `simulate`, the CLI's `qmec simulate`.
//! - `env`: `Env` and `VecEnv`, one environment or a batch stepped in one call
//!   (the Gymnasium classes in `python/qmec/env.py` wrap them).
//! - `policy`: `State` and `Policy`, every built-in policy deciding a state.
//!
//! Errors reach Python as `ValueError` (bad input, naming the field),
//! `OSError` (a file) or `RuntimeError` (a policy or the LP failing on good
//! input), never as a panic.

mod env;
mod offload_env;
mod policy;
mod scenario;

use pyo3::prelude::*;

#[pymodule]
fn _qmec(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<scenario::PyScenario>()?;
    module.add_function(wrap_pyfunction!(scenario::simulate_json, module)?)?;
    module.add_class::<env::PyEnv>()?;
    module.add_class::<env::PyVecEnv>()?;
    module.add_class::<policy::PyState>()?;
    module.add_class::<policy::PyPolicy>()?;
    module.add_function(wrap_pyfunction!(policy::policy, module)?)?;
    module.add_function(wrap_pyfunction!(policy::policy_names, module)?)?;
    module.add("SCORE_SCALE", offload_env::SCORE_SCALE)?;
    Ok(())
}
