//! Testbed deployment: start a controller, S server agents and M device
//! agents, wait for the run, gather every agent's records and write the same
//! run folder as `qmec simulate`, plus the testbed-only figures.
//!
//! # Layout
//! - [`plan`]: which agents a run has and every agent's arguments (security
//!   and fault flags included), for every runtime; only the addressing differs.
//! - [`runtime`]: the seam where agents are started ([`runtime::Runtime`]);
//!   [`runtime::LocalProcesses`] starts OS processes on this machine.
//! - [`local`]: a whole testbed on loopback, and the security files.
//! - [`cluster`]: container and namespace testbeds: the link-emulation
//!   choice (tc netem or userspace) and the run folder; [`docker`] (with
//!   [`compose`] and [`image`]) and [`netns`] run them; [`shell`] runs the
//!   external commands with time limits.
//! - [`faults`] (the schedule) and [`supervise`] (watching a run and
//!   carrying the schedule out), for every runtime.
//! - [`outcome`] and [`collect`]: the agents' records merged into slot
//!   records, task records, conservation and the testbed figures.
//! - [`k8s`]: Kubernetes manifests for testbeds over several machines.

#![forbid(unsafe_code)]

pub mod cluster;
pub mod collect;
pub mod compose;
pub mod docker;
pub mod faults;
pub mod image;
pub mod k8s;
pub mod local;
pub mod netns;
pub mod outcome;
pub mod plan;
pub mod runtime;
pub mod shell;
pub mod supervise;

pub use local::{DeployError, TestbedConfig, run_local};
pub use outcome::TestbedOutcome;
