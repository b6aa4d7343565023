//! Every integration test of this crate in one binary: one file per
//! concern, as before, but compiled and linked once instead of once per
//! file (each of which links the whole dependency tree).

mod common;
mod deploy_files;
mod evaluate;
mod experiments_quick;
mod external_policy;
mod faults;
mod io_failures;
mod online;
mod policy_failure;
mod readme;
mod security;
mod shipped_model;
mod testbed;
mod testbed_emulated;
mod testbed_swarm;
