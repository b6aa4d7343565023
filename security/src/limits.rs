//! The most bytes one decoded gRPC message may hold, per stream. tonic's
//! default is 4 MiB for everything; these are tighter where the protocol
//! allows, so a peer cannot make an agent buffer more than a message's
//! worth. A larger message ends the call with `OutOfRange` ("message too
//! large") before it is decoded.

use qmec_proto::validate::{MAX_PAYLOAD_BYTES, MAX_SCENARIO_LEN};

/// What the controller decodes from agents (hellos and reports): a report
/// of 10 000 devices' backlogs or gains is well under this.
pub const CONTROL_UP: usize = 1 << 20;
/// What agents decode from the controller: the run setup carries the
/// scenario TOML (at most `MAX_SCENARIO_LEN`) and the server endpoints.
pub const CONTROL_DOWN: usize = MAX_SCENARIO_LEN + (1 << 20);
/// What a server decodes from devices: one fragment's payload and framing.
pub const OFFLOAD_UP: usize = MAX_PAYLOAD_BYTES + 4096;
/// What a device decodes from a server: results are a few dozen bytes.
pub const OFFLOAD_DOWN: usize = 64 << 10;

// Every valid message fits, and the offload limit stays under tonic's default.
const _: () = assert!(OFFLOAD_UP > MAX_PAYLOAD_BYTES && OFFLOAD_UP < 4 << 20);
const _: () = assert!(CONTROL_DOWN > MAX_SCENARIO_LEN);
