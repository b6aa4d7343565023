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
//! - [`cluster`]: container and namespace testbeds: the link-emulation
//!   choice (tc netem or userspace), supervision with a deadline, records.
//!   [`plan`] lists their agents on fixed ports; [`docker`] (with
//!   [`compose`] and [`image`]) and [`netns`] run them; [`shell`] runs
//!   the external commands with time limits.
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
pub mod plan;
pub mod runtime;
pub mod shell;

pub use local::{DeployError, TestbedConfig, TestbedOutcome, run_local};
