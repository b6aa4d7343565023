//! Testbed deployment: start a controller, S server agents and M device
//! agents, wait for the run, gather every agent's records and write the same
//! run folder as `qmec simulate`, plus the testbed-only figures.
//!
//! # Layout
//! - [`runtime`]: the seam where agents are started ([`runtime::Runtime`]);
//!   [`runtime::LocalProcesses`] starts OS processes on this machine.
//!   Containers, namespaces and Kubernetes plug in here later.
//! - [`local`]: a whole testbed on loopback: spawn, watch, tear down.
//! - [`collect`]: the agents' records merged into slot records, task
//!   records, conservation and the testbed summary.

#![forbid(unsafe_code)]

pub mod collect;
pub mod local;
pub mod runtime;

pub use local::{DeployError, TestbedConfig, TestbedOutcome, run_local};
