//! qmec's learned offloading policies: the paper's hybrid quantum-classical
//! network, our per-link QNN, and the classical MLP baseline, all trained
//! on the drift-plus-penalty bound through one differentiable projection.
//!
//! # Layout
//! - [`projection`]: raw scores → feasible μ (softmax per device, per-server
//!   normalisation, queue cap) and its exact backward pass.
//! - [`dense`]: dense layers and ReLU stacks with hand-written backprop.
//! - [`features`]: a [`qmec_model::SystemState`] prepared for the networks
//!   (global vector, per-link features, Ψ, caps).
//! - [`arch`]: the [`arch::Architecture`] trait and its three
//!   implementations (`paper`, `per-link`, `mlp`).
//! - [`heisenberg`]: exact compiled readout of angle-encoded circuits, the
//!   per-link decision path.
//! - [`candidates`]: scores → K feasible candidate decisions
//!   (order-preserving quantisation) and the critic that keeps the best.
//! - [`loss`]: the two training losses: imitation of the exact decision,
//!   and the DPP bound through the projection.
//! - [`adam`]: the optimiser.
//! - [`dataset`]: states from simulator rollouts under a behaviour mix,
//!   labelled with their exact LP optimum.
//! - [`train`]: the trainer, validation as share of the LP optimum.
//! - [`closed_loop`]: evolution strategies on multi-slot outcomes (p99
//!   latency, transmit power, stability) from simulator rollouts.
//! - [`model_file`]: the versioned JSON model file.
//! - [`policy`]: a network as the `qnn` / `dl` / `lydroo` [`qmec_model::Policy`].
//! - [`online`]: online learning inside a policy — an I/O-free core that
//!   plans LP solves, replay and training, and the worker that does them.
//! - [`qasm`]: OpenQASM 3 export and the parser that checks it.
//! - [`plot`]: the loss curve as CSV and PNG.
//! - [`shipped`]: the trained per-link model embedded in the binary.
//! - [`error`]: the crate's typed error, [`QnnError`].
//!
//! # Errors
//! Model files and settings are user input: they are checked where they
//! enter and every refusal names the field and the reason. Nothing panics
//! on input.

#![forbid(unsafe_code)]

pub mod adam;
pub mod arch;
pub mod candidates;
pub mod closed_loop;
pub mod dataset;
pub mod dense;
pub mod error;
pub mod features;
pub mod heisenberg;
pub mod loss;
pub mod model_file;
pub mod online;
pub mod plot;
pub mod policy;
pub mod projection;
pub mod qasm;
pub mod shipped;
pub mod train;

pub use arch::{ArchKind, Architecture, Network};
pub use error::QnnError;
pub use model_file::{FORMAT_VERSION, ModelFile};
pub use policy::LearnedPolicy;
pub use train::{Objective, TrainConfig, TrainReport, Validation, train};
