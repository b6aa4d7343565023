//! qmec's wire protocol: the generated tonic/prost code for `qmec.v1` and
//! the checks every incoming message passes before it touches the model.
//!
//! # Layout
//! - [`pb`]: generated messages, clients and servers (`proto/qmec.proto`).
//! - [`policy_pb`]: the external policy service (`proto/qmec_policy.proto`),
//!   and [`external`]: its request built from a model state and its answer
//!   checked into a model decision.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, and [`reflection`],
//!   gRPC reflection over the services a process serves.
//! - [`validate`]: wire message → model-level value, or an error naming the
//!   field and the reason; handlers turn it into `InvalidArgument` and carry on.
//! - [`config_file`]: an agent's `--config` TOML file, read one way.
//! - [`backoff`]: jittered exponential backoff for every reconnect loop.
//! - [`session`]: an agent's controller session, reopened across breaks.
//! - [`agent_process`]: logging and signal-driven shutdown, set up once for
//!   every process.
//! - [`process`]: the CPU time a process used, for the records and benchmark.
//! - [`metrics`]: the Prometheus page every process serves on `--metrics`.
//!
//! Agents that bind port 0 print [`LISTENING_PREFIX`] and their address on
//! stdout, so a launcher learns the port without racing for a free one; the
//! controller prints [`RUN_STARTED_PREFIX`] and its first slot once every
//! agent has joined, so a fault schedule counts slots from there.

#![forbid(unsafe_code)]

pub mod agent_process;
pub mod backoff;
pub mod config_file;
pub mod external;
pub mod metrics;
pub mod process;
pub mod session;
pub mod validate;

/// First stdout line of an agent once its gRPC port is bound.
pub const LISTENING_PREFIX: &str = "qmec-listening ";

/// The controller's stdout line when its slot clock starts (then the slot).
pub const RUN_STARTED_PREFIX: &str = "qmec-run-started ";

/// Generated code for package `qmec.v1`.
#[allow(missing_debug_implementations, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("qmec.v1");
}

/// Generated code for package `qmec.policy.v1` (external policies).
#[allow(missing_debug_implementations, clippy::all, clippy::pedantic)]
pub mod policy_pb {
    tonic::include_proto!("qmec.policy.v1");
}

/// The encoded `FileDescriptorSet` of both protos, for tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/qmec_descriptor.bin"));

/// gRPC reflection that lists `served` (full names, as
/// `tonic::server::NamedService::NAME` gives them) and itself: `qmec.proto`
/// describes every service, and a process lists only those it serves.
pub fn reflection(
    served: &[&str],
) -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<impl tonic_reflection::server::v1::ServerReflection>,
    tonic_reflection::server::Error,
> {
    let itself = tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME;
    let builder = tonic_reflection::server::Builder::configure().register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET);
    served.iter().chain([&itself]).fold(builder, |builder, name| builder.with_service_name(*name)).build_v1()
}

pub use validate::Invalid;

/// Whole microseconds of `duration`, saturating, as the wire's `*_us`
/// fields carry waits and latencies (one rounding rule for every agent).
pub fn micros(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}
