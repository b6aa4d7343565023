//! The in-process simulator: M devices and S servers from the model crate,
//! driven slot by slot by any policy, and the outputs every run writes.
//!
//! # Layout
//! - [`engine`]: one slot at a time — observe, decide, compute, offload,
//!   admit arrivals — and a whole run.
//! - [`summary`]: the run's figures (throughput, power, backlog, latency
//!   percentiles, task conservation, stability) from its records, gathered
//!   one record at a time.
//! - [`output`]: the run folder: resolved scenario, `summary.json`,
//!   `slots.csv`, `tasks.csv`; and the summary table printed to a terminal.
//! - `run_writer`: the run folder written as the run goes, on a thread of
//!   its own ([`output::RunWriter`]).
//! - `task_rows`: `tasks.csv` rows formatted straight into bytes, the same
//!   bytes as the csv crate's, at a fraction of the cost.

#![forbid(unsafe_code)]

pub mod engine;
pub mod output;
mod run_writer;
pub mod summary;
mod task_rows;

pub use engine::{RunRecords, SimError, Simulator, SlotOutcome, run, simulate, simulate_with};
pub use summary::{Conservation, Summary, SummaryBuilder};
