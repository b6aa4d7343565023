//! Raw bytes off the wire → prost decode of every message type an agent
//! receives → the validation that message gets in the handlers. Neither step
//! may panic on any input, and whatever validation accepts holds the
//! invariants the model relies on.
//!
//! Input layout: byte 0 picks the message type (mod 6), byte 1 the run's
//! shape (devices 0..=15 in the high nibble, servers 0..=15 in the low one),
//! the rest is the encoded message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use qmec_proto::pb::{self, device_down, device_up, offload_down, offload_up, server_down, server_up};
use qmec_proto::validate::{self, MAX_FRAGMENT_BITS, MAX_PAYLOAD_BYTES, MAX_QUEUE_BITS};

/// F_s of the run the allocations are checked against.
const CPU_HZ: f64 = 1e10;

fn check_report(report: &pb::DeviceReport, servers: usize) {
    if let Ok(ok) = validate::device_report(report, servers) {
        assert_eq!(ok.gains.len(), servers);
        assert!(ok.queue_bits.is_finite() && (0.0..=MAX_QUEUE_BITS).contains(&ok.queue_bits));
        assert!(ok.virtual_bits.is_finite() && (0.0..=MAX_QUEUE_BITS).contains(&ok.virtual_bits));
        assert!(ok.gains.iter().all(|g| g.is_finite() && *g >= 0.0));
    }
}

fn check_server_report(report: &pb::ServerReport, devices: usize) {
    if let Ok(ok) = validate::server_report(report, devices) {
        let mut seen = vec![false; devices];
        let mut sum = 0u64;
        for &(device, bits) in &ok.backlogs {
            assert!(device < devices);
            assert!(!std::mem::replace(&mut seen[device], true), "device listed twice");
            sum = sum.checked_add(bits).expect("accepted backlogs do not overflow");
        }
        assert_eq!(sum, ok.total_bits);
        assert!(ok.load.is_finite() && ok.load >= 0.0 && ok.load <= 1.0 + 1e-9);
    }
}

fn check_decision(decision: &pb::OffloadDecision, servers: usize) {
    if let Ok(ok) = validate::decision(decision, servers) {
        assert_eq!(ok.shares.len(), servers);
        assert_eq!(ok.server_free_bits.len(), servers);
        assert!(ok.shares.iter().all(|mu| mu.is_finite() && *mu >= 0.0));
        assert!(ok.shares.iter().sum::<f64>() <= 1.0 + 1e-9);
    }
}

fn check_allocation(allocation: &pb::Allocation, devices: usize) {
    if let Ok(cpu_hz) = validate::allocation(allocation, devices, CPU_HZ) {
        assert_eq!(cpu_hz.len(), devices);
        assert!(cpu_hz.iter().all(|f| f.is_finite() && *f >= 0.0));
        assert!(cpu_hz.iter().sum::<f64>() <= CPU_HZ * (1.0 + 1e-9));
    }
}

fn check_fragment(fragment: &pb::FragmentData) {
    if let Ok(ok) = validate::fragment(fragment) {
        assert!(ok.bits >= 1 && ok.bits <= MAX_FRAGMENT_BITS);
        assert!(ok.payload_len <= MAX_PAYLOAD_BYTES);
        assert!(ok.payload_len as u64 <= ok.bits.div_ceil(8));
    }
}

fn check_result(result: &pb::FragmentResult) {
    if let Ok(ok) = validate::fragment_result(result) {
        assert!(ok.bits >= 1 && ok.bits <= MAX_FRAGMENT_BITS);
        assert!(ok.times.done_s.is_finite() && ok.times.done_s >= 0.0);
    }
}

fn check_setup(setup: &pb::RunSetup) {
    if let Ok(ok) = validate::setup(setup) {
        assert!(ok.scenario.validate().is_ok());
        assert_eq!(ok.server_endpoints.len(), ok.scenario.servers);
        assert!(ok.slot_wall_s.is_finite() && ok.slot_wall_s > 0.0);
    }
}

fn check_hello(hello: &pb::DeviceHello, devices: usize) {
    if let Ok(id) = validate::device_hello(hello, devices) {
        assert!(id < devices);
    }
    check_next_slot(hello.next_slot, devices as u64);
}

/// A run of `slots` slots (any small number will do) takes no agent
/// beyond its end.
fn check_next_slot(next_slot: u64, slots: u64) {
    if let Ok(slot) = validate::next_slot("hello.next_slot", next_slot, slots) {
        assert!(slot <= slots);
    }
}

/// Decoding the re-encoded message gives the same bytes again.
fn round_trips<M: Message + Default>(message: &M) {
    let bytes = message.encode_to_vec();
    let again = M::decode(bytes.as_slice()).expect("an encoded message decodes");
    assert_eq!(again.encode_to_vec(), bytes);
}

fuzz_target!(|data: &[u8]| {
    let [kind, shape, bytes @ ..] = data else { return };
    let devices = usize::from(shape >> 4);
    let servers = usize::from(shape & 0x0f);
    match kind % 6 {
        0 => {
            let Ok(message) = pb::DeviceUp::decode(bytes) else { return };
            round_trips(&message);
            match &message.msg {
                Some(device_up::Msg::Hello(hello)) => check_hello(hello, devices),
                Some(device_up::Msg::Report(report)) => check_report(report, servers),
                Some(device_up::Msg::Ready(_)) | None => {}
            }
        }
        1 => {
            let Ok(message) = pb::ServerUp::decode(bytes) else { return };
            round_trips(&message);
            match &message.msg {
                Some(server_up::Msg::Hello(hello)) => {
                    if let Ok((id, endpoint)) = validate::server_hello(hello, servers) {
                        assert!(id < servers);
                        assert!(endpoint.starts_with("http://") || endpoint.starts_with("https://"));
                    }
                    check_next_slot(hello.next_slot, devices as u64);
                }
                Some(server_up::Msg::Report(report)) => check_server_report(report, devices),
                None => {}
            }
        }
        2 => {
            let Ok(message) = pb::OffloadUp::decode(bytes) else { return };
            round_trips(&message);
            match &message.msg {
                Some(offload_up::Msg::Hello(hello)) => check_hello(&pb::DeviceHello { device: hello.device, next_slot: 0, run_digest: 0 }, devices),
                Some(offload_up::Msg::Fragment(fragment)) => check_fragment(fragment),
                Some(offload_up::Msg::EndOfSlot(_)) | None => {}
            }
        }
        3 => {
            let Ok(message) = pb::DeviceDown::decode(bytes) else { return };
            round_trips(&message);
            match &message.msg {
                Some(device_down::Msg::Setup(setup)) => check_setup(setup),
                Some(device_down::Msg::Decision(decision)) => check_decision(decision, servers),
                Some(device_down::Msg::SlotStart(_) | device_down::Msg::Finish(_)) | None => {}
            }
        }
        4 => {
            let Ok(message) = pb::ServerDown::decode(bytes) else { return };
            round_trips(&message);
            match &message.msg {
                Some(server_down::Msg::Setup(setup)) => check_setup(setup),
                Some(server_down::Msg::Allocation(allocation)) => check_allocation(allocation, devices),
                Some(server_down::Msg::Finish(_)) | None => {}
            }
        }
        _ => {
            let Ok(message) = pb::OffloadDown::decode(bytes) else { return };
            round_trips(&message);
            if let Some(offload_down::Msg::Result(result)) = &message.msg {
                check_result(result);
            }
        }
    }
});
