//! The in-process simulator: M devices and S servers from the model crate,
//! driven slot by slot by any policy, and the outputs every run writes.
//!
//! # Layout
//! - [`engine`]: one slot at a time — observe, decide, compute, offload,
//!   admit arrivals — and a whole run.
//! - [`summary`]: the run's figures (throughput, power, backlog, latency
//!   percentiles, task conservation, stability) from its records.
//! - [`output`]: the run folder: resolved scenario, `summary.json`,
//!   `slots.csv`, `tasks.csv`; and the summary table printed to a terminal.

#![forbid(unsafe_code)]

pub mod engine;
pub mod output;
pub mod summary;

pub use engine::{RunRecords, SimError, Simulator, SlotOutcome, run, simulate};
pub use summary::{Conservation, Summary};
