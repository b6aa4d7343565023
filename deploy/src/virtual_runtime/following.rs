//! Links that follow the modelled channel, on virtual time, slot by slot: a
//! moving device's core (`paper-mobile`) drives its radio as the virtual
//! device does, setting its followed links from each batch, and every
//! slot's upload to a server must cross the simulated link at that slot's
//! modelled rate r_ms(t), as the slot's report gives it to the controller.

use super::network::{Endpoint, Network};
use qmec_device_agent::{DeviceCommand, DeviceCore, DeviceEvent, DeviceSettings};
use qmec_linkem::LinkProfile;
use qmec_model::Scenario;
use qmec_model::channel::shannon_rate;
use qmec_proto::{pb, validate};
use std::time::Duration;

const WALL: Duration = Duration::from_millis(100);
const PAYLOAD_SCALE: f64 = 10.0;
const DELAY: Duration = Duration::from_millis(10);

/// One slot's upload to one server: bytes, when the first left the radio,
/// when the last arrived, and the rate the report implies for the link.
#[derive(Debug)]
struct Upload {
    slot: u64,
    bytes: usize,
    first_departure: Duration,
    last_arrival: Duration,
    expected_bps: f64,
}

#[test]
fn each_slots_upload_crosses_the_link_at_that_slots_modelled_rate() {
    let scenario = Scenario::builtin("paper-mobile").expect("a built-in scenario");
    let servers = scenario.servers;
    let endpoints = (0..servers).map(|s| format!("http://127.0.0.1:{}", 5000 + s)).collect();
    let setup = validate::Setup { scenario: scenario.clone(), seed: 3, slots: 200, slot_wall_s: WALL.as_secs_f64(), server_endpoints: endpoints };
    let settings = DeviceSettings {
        tx_fraction: 0.5,
        early_reports: false,
        report_delay: Duration::ZERO,
        report_delay_from: 0,
        announce_delay: Duration::ZERO,
    };
    let profile = LinkProfile::parse("[device]\ndelay_ms = 10\n[device.follow_channel]\nscale = \"paced\"\n").expect("a valid profile");
    let mut network = Network::new(Some(profile), servers, scenario.devices);
    let links = network.followed_links(0, PAYLOAD_SCALE).expect("the links follow the channel");
    let mut core = DeviceCore::new(&setup, 0, settings, Duration::ZERO);
    let (mut uploads, mut radio_free, mut rates_bps) = (Vec::new(), Duration::ZERO, Vec::new());
    for slot in 0..setup.slots {
        let now = WALL * slot as u32;
        for command in core.handle(now, DeviceEvent::SlotStart(slot)) {
            if let DeviceCommand::Report(report) = command {
                let (channel, power) = (&scenario.channel, scenario.device.tx_power_w);
                rates_bps = report.gains.iter().map(|&h| shannon_rate(channel, power, h)).collect();
            }
        }
        // Everything to one server, a different one each slot.
        let mut shares = vec![0.0; servers];
        shares[slot as usize % servers] = 1.0;
        let decision = pb::OffloadDecision { slot, shares, server_free_bits: vec![u64::MAX; servers], late: false };
        let now = now + WALL / 4;
        for command in core.handle(now, DeviceEvent::Decision(decision)) {
            let DeviceCommand::Send(batch) = command else { continue };
            links.set(&batch);
            // The virtual device's radio: each fragment leaves once the
            // one before had its modelled airtime.
            let mut at = radio_free.max(now);
            for send in &batch.sends {
                let to = Endpoint::Server(send.server);
                let expected_bps = rates_bps[send.server] / (PAYLOAD_SCALE * batch.wall_per_modelled);
                let mut upload = Upload { slot, bytes: 0, first_departure: at, last_arrival: at, expected_bps };
                for fragment in &send.fragments {
                    let len = qmec_device_agent::payload_len(fragment.bits, PAYLOAD_SCALE);
                    upload.bytes += len;
                    upload.last_arrival = network.arrival(at, Endpoint::Device(0), to, || len);
                    at += Duration::from_secs_f64(fragment.bits as f64 / send.rate_bps * batch.wall_per_modelled);
                }
                uploads.push(upload);
            }
            radio_free = at;
        }
    }
    // Bytes round up from bits, so the link (at the paced rate) is never
    // ahead of the radio: a slot's fragments cross it back to back, and its
    // bytes over their time on the wire are the link's rate in that slot.
    let big: Vec<&Upload> = uploads.iter().filter(|u| u.bytes >= 200).collect();
    assert!(big.len() > 100, "only {} slots uploaded enough to measure", big.len());
    for upload in &big {
        let on_wire = (upload.last_arrival - DELAY - upload.first_departure).as_secs_f64();
        let achieved = upload.bytes as f64 * 8.0 / on_wire;
        let off = achieved / upload.expected_bps - 1.0;
        assert!(off.abs() < 0.01, "slot {}: {achieved:.0} bit/s achieved for {:.0} expected", upload.slot, upload.expected_bps);
    }
    // The channel moved: the link's rate did not stay put.
    let (low, high) = big.iter().map(|u| u.expected_bps).fold((f64::MAX, 0.0_f64), |(l, h), r| (l.min(r), h.max(r)));
    assert!(high > 1.5 * low, "the modelled rate ranged only from {low:.0} to {high:.0} bit/s");
}
