//! Property tests of message validation: each check accepts exactly the
//! messages its rule allows, names the offending field otherwise, and no
//! byte string makes decoding plus validation panic. The table at the end
//! is the README's list of bad inputs and the error each one gets.

#![allow(clippy::unwrap_used)]

use prost::Message;
use proptest::prelude::*;
use qmec_proto::pb;
use qmec_proto::validate::{self, MAX_FRAGMENT_BITS, MAX_PAYLOAD_BYTES};

/// Floats with the special values over-represented.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => 0.0..10.0f64,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => -10.0..0.0f64,
        1 => any::<f64>(),
    ]
}

fn ok(x: f64, max: f64) -> bool {
    x.is_finite() && (0.0..=max).contains(&x)
}

proptest! {
    #[test]
    fn device_reports_are_accepted_exactly_when_every_figure_is_physical(
        servers in 0usize..5,
        queue in float(),
        virtual_bits in float(),
        gains in prop::collection::vec(prop_oneof![3 => 0.0..1e-3f64, 1 => float()], 0..6),
    ) {
        let report = pb::DeviceReport { slot: 1, queue_bits: queue, virtual_bits, gains: gains.clone(), ..Default::default() };
        let result = validate::device_report(&report, servers);
        let expected = ok(queue, 1e18) && ok(virtual_bits, 1e18) && gains.len() == servers && gains.iter().all(|g| ok(*g, 1e6));
        prop_assert_eq!(result.is_ok(), expected);
        if let Err(invalid) = result {
            prop_assert!(invalid.field.starts_with("report."), "{}", invalid);
            prop_assert_eq!(invalid.to_status().code(), tonic::Code::InvalidArgument);
        }
    }

    #[test]
    fn server_reports_need_known_distinct_devices_and_an_exact_total(
        devices in 0usize..6,
        backlogs in prop::collection::vec((0u32..8, 0u64..1_000_000), 0..8),
        off_by in -1i64..=1,
        load in prop_oneof![3 => 0.0..=1.0f64, 1 => float()],
    ) {
        let sum: u64 = backlogs.iter().map(|b| b.1).sum();
        let total = sum.saturating_add_signed(off_by);
        let report = pb::ServerReport {
            slot: 1,
            backlogs: backlogs.iter().map(|&(device, bits)| pb::DeviceBacklog { device, bits }).collect(),
            total_bits: total,
            load,
        };
        let mut ids: Vec<u32> = backlogs.iter().map(|b| b.0).collect();
        ids.sort_unstable();
        ids.dedup();
        let expected = backlogs.len() <= devices
            && ids.len() == backlogs.len()
            && ids.iter().all(|&d| (d as usize) < devices)
            && total == sum
            && ok(load, 1.0 + 1e-9);
        let result = validate::server_report(&report, devices);
        prop_assert_eq!(result.is_ok(), expected, "{:?}", result);
        if let Ok(checked) = result {
            prop_assert_eq!(checked.total_bits, sum);
            prop_assert_eq!(checked.backlogs.len(), backlogs.len());
        }
    }

    #[test]
    fn decisions_obey_one_radio_per_device(
        servers in 0usize..5,
        shares in prop::collection::vec(prop_oneof![4 => 0.0..0.6f64, 1 => float()], 0..6),
        extra_free in 0usize..2,
    ) {
        let free = vec![1u64 << 20; shares.len() + extra_free];
        let decision = pb::OffloadDecision { slot: 9, shares: shares.clone(), server_free_bits: free.clone(), late: true };
        let expected = shares.len() == servers
            && free.len() == servers
            && shares.iter().all(|mu| ok(*mu, 1.0 + 1e-9))
            && shares.iter().sum::<f64>() <= 1.0 + 1e-9;
        let result = validate::decision(&decision, servers);
        prop_assert_eq!(result.is_ok(), expected);
        if let Ok(checked) = result {
            prop_assert!(checked.late);
            prop_assert_eq!(checked.shares, shares);
        }
    }

    #[test]
    fn allocations_never_exceed_the_server_cpu(
        devices in 0usize..5,
        shares in prop::collection::vec(prop_oneof![4 => 0.0..0.5f64, 1 => float()], 0..6),
    ) {
        let f_s = 4e9;
        let cpu_hz: Vec<f64> = shares.iter().map(|s| s * f_s).collect();
        let cap = f_s * (1.0 + 1e-9);
        let expected = cpu_hz.len() == devices && cpu_hz.iter().all(|f| ok(*f, cap)) && cpu_hz.iter().sum::<f64>() <= cap;
        let result = validate::allocation(&pb::Allocation { slot: 0, cpu_hz }, devices, f_s);
        prop_assert_eq!(result.is_ok(), expected);
    }

    #[test]
    fn fragments_carry_at_most_the_bytes_their_bits_stand_for(
        bits in prop_oneof![0u64..200, Just(MAX_FRAGMENT_BITS), Just(MAX_FRAGMENT_BITS + 1), Just(u64::MAX)],
        payload in 0usize..40,
    ) {
        let fragment = pb::FragmentData { slot: 1, task: 2, bits, payload: vec![7; payload], ..Default::default() };
        let expected = (1..=MAX_FRAGMENT_BITS).contains(&bits) && payload as u64 <= bits.div_ceil(8) && payload <= MAX_PAYLOAD_BYTES;
        let result = validate::fragment(&fragment);
        prop_assert_eq!(result.is_ok(), expected);
        if let Err(invalid) = result {
            prop_assert!(invalid.field == "fragment.bits" || invalid.field == "fragment.payload");
        }
    }

    #[test]
    fn hellos_name_only_ids_the_run_has(device in any::<u32>(), devices in 0usize..1000) {
        let result = validate::device_hello(&pb::DeviceHello { device, next_slot: 0, run_digest: 0 }, devices);
        prop_assert_eq!(result.is_ok(), (device as usize) < devices);
        let server = validate::server_hello(&pb::ServerHello { server: device, endpoint: "https://a:1".into(), next_slot: 0, run_digest: 0 }, devices);
        prop_assert_eq!(server.is_ok(), (device as usize) < devices);
    }

    /// Whatever bytes arrive, decoding fails cleanly or validation answers.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(up) = pb::DeviceUp::decode(bytes.as_slice()) {
            match up.msg {
                Some(pb::device_up::Msg::Hello(hello)) => { let _ = validate::device_hello(&hello, 4); }
                Some(pb::device_up::Msg::Report(report)) => { let _ = validate::device_report(&report, 2); }
                _ => {}
            }
        }
        if let Ok(up) = pb::ServerUp::decode(bytes.as_slice()) {
            match up.msg {
                Some(pb::server_up::Msg::Hello(hello)) => { let _ = validate::server_hello(&hello, 2); }
                Some(pb::server_up::Msg::Report(report)) => { let _ = validate::server_report(&report, 4); }
                None => {}
            }
        }
        if let Ok(pb::OffloadUp { msg: Some(pb::offload_up::Msg::Fragment(f)) }) = pb::OffloadUp::decode(bytes.as_slice()) {
            let _ = validate::fragment(&f);
        }
        if let Ok(down) = pb::DeviceDown::decode(bytes.as_slice()) {
            match down.msg {
                Some(pb::device_down::Msg::Setup(setup)) => { let _ = validate::setup(&setup); }
                Some(pb::device_down::Msg::Decision(d)) => { let _ = validate::decision(&d, 2); }
                _ => {}
            }
        }
        if let Ok(pb::ServerDown { msg: Some(pb::server_down::Msg::Allocation(a)) }) = pb::ServerDown::decode(bytes.as_slice()) {
            let _ = validate::allocation(&a, 4, 1e9);
        }
        if let Ok(pb::OffloadDown { msg: Some(pb::offload_down::Msg::Result(r)) }) = pb::OffloadDown::decode(bytes.as_slice()) {
            let _ = validate::fragment_result(&r);
        }
    }
}

/// The README's table: each bad input, the field named and the message.
#[test]
fn bad_input_table() {
    let report = |f: fn(&mut pb::DeviceReport)| {
        let mut r = pb::DeviceReport { slot: 1, queue_bits: 1e5, virtual_bits: 0.0, gains: vec![1e-6, 1e-6], ..Default::default() };
        f(&mut r);
        validate::device_report(&r, 2).map(|_| ())
    };
    let server = |f: fn(&mut pb::ServerReport)| {
        let b = |device, bits| pb::DeviceBacklog { device, bits };
        let mut r = pb::ServerReport { slot: 1, backlogs: vec![b(0, 5), b(1, 7)], total_bits: 12, load: 0.5 };
        f(&mut r);
        validate::server_report(&r, 3).map(|_| ())
    };
    let decision = |shares: Vec<f64>, free: usize| {
        validate::decision(&pb::OffloadDecision { slot: 1, shares, server_free_bits: vec![0; free], late: false }, 2).map(|_| ())
    };
    let fragment = |bits, payload| validate::fragment(&pb::FragmentData { slot: 1, task: 1, bits, payload: vec![0; payload], ..Default::default() }).map(|_| ());
    let setup = |f: fn(&mut pb::RunSetup)| {
        let mut s = pb::RunSetup {
            scenario_toml: qmec_model::Scenario::builtin("paper-small").unwrap().to_toml(),
            seed: 1,
            slots: 10,
            slot_wall_s: 0.01,
            server_endpoints: vec!["http://127.0.0.1:1".into(), "http://127.0.0.1:2".into()],
        };
        f(&mut s);
        validate::setup(&s).map(|_| ())
    };
    let cases: Vec<(&str, Result<(), validate::Invalid>, &str)> = vec![
        ("device hello with id 10 in a run of 10", validate::device_hello(&pb::DeviceHello { device: 10, next_slot: 0, run_digest: 0 }, 10).map(|_| ()), "hello.device"),
        ("server hello with id u32::MAX", validate::server_hello(&pb::ServerHello { server: u32::MAX, endpoint: "http://a:1".into(), next_slot: 0, run_digest: 0 }, 3).map(|_| ()), "hello.server"),
        ("server hello endpoint without a scheme", validate::server_hello(&pb::ServerHello { server: 0, endpoint: "10.0.0.1:80".into(), next_slot: 0, run_digest: 0 }, 3).map(|_| ()), "hello.endpoint"),
        ("server hello endpoint of 300 characters", validate::server_hello(&pb::ServerHello { server: 0, endpoint: format!("http://{}", "a".repeat(293)), next_slot: 0, run_digest: 0 }, 3).map(|_| ()), "hello.endpoint"),
        ("hello from another run (setup digest differs)", validate::hello_run("hello.run_digest", 5, 6), "hello.run_digest"),
        ("device hello next_slot 11 in a run of 10 slots", validate::next_slot("hello.next_slot", 11, 10).map(|_| ()), "hello.next_slot"),
        ("report queue NaN", report(|r| r.queue_bits = f64::NAN), "report.queue_bits"),
        ("report queue −1", report(|r| r.queue_bits = -1.0), "report.queue_bits"),
        ("report queue 1e30", report(|r| r.queue_bits = 1e30), "report.queue_bits"),
        ("report virtual queue +∞", report(|r| r.virtual_bits = f64::INFINITY), "report.virtual_bits"),
        ("report with 1 gain for 2 servers", report(|r| r.gains = vec![1e-6]), "report.gains"),
        ("report gain −0.5", report(|r| r.gains[1] = -0.5), "report.gains[1]"),
        ("server report for device 3 of 3", server(|r| r.backlogs[1].device = 3), "report.backlogs[1].device"),
        ("server report listing device 0 twice", server(|r| r.backlogs[1].device = 0), "report.backlogs[1].device"),
        ("server report total off by one", server(|r| r.total_bits = 13), "report.total_bits"),
        ("server report backlogs overflowing u64", server(|r| { r.backlogs[0].bits = u64::MAX; }), "report.backlogs[1].bits"),
        ("server report with 4 entries for 3 devices", server(|r| { r.backlogs = vec![pb::DeviceBacklog::default(); 4]; }), "report.backlogs"),
        ("server load 1.5", server(|r| r.load = 1.5), "report.load"),
        ("decision shares 0.7 + 0.7", decision(vec![0.7, 0.7], 2), "decision.shares"),
        ("decision share NaN", decision(vec![f64::NAN, 0.0], 2), "decision.shares[0]"),
        ("decision with 1 free-bits entry for 2 servers", decision(vec![0.5, 0.5], 1), "decision.server_free_bits"),
        ("allocation 6 + 6 Hz on a 10 Hz server", validate::allocation(&pb::Allocation { slot: 1, cpu_hz: vec![6.0, 6.0] }, 2, 10.0).map(|_| ()), "allocation.cpu_hz"),
        ("allocation −1 Hz", validate::allocation(&pb::Allocation { slot: 1, cpu_hz: vec![-1.0, 0.0] }, 2, 10.0).map(|_| ()), "allocation.cpu_hz[0]"),
        ("fragment of 0 bits", fragment(0, 0), "fragment.bits"),
        ("fragment of 2^40 + 1 bits", fragment(MAX_FRAGMENT_BITS + 1, 0), "fragment.bits"),
        ("fragment of 8 bits with 2 payload bytes", fragment(8, 2), "fragment.payload"),
        ("fragment with 3 MiB payload", fragment(MAX_FRAGMENT_BITS, 3 << 20), "fragment.payload"),
        ("result done at −1 s", validate::fragment_result(&pb::FragmentResult { slot: 1, task: 1, bits: 8, done_s: -1.0, ..Default::default() }).map(|_| ()), "result.done_s"),
        ("result held for two days", validate::fragment_result(&pb::FragmentResult { slot: 1, task: 1, bits: 8, server_hold_us: 172_800_000_000, ..Default::default() }).map(|_| ()), "result.server_hold_us"),
        ("result computed at NaN", validate::fragment_result(&pb::FragmentResult { slot: 1, task: 1, bits: 8, computed_s: f64::NAN, ..Default::default() }).map(|_| ()), "result.computed_s"),
        ("setup scenario that is not TOML", setup(|s| s.scenario_toml = "devices = [".into()), "setup.scenario_toml"),
        ("setup scenario of 2 MiB", setup(|s| s.scenario_toml = " ".repeat(2 << 20)), "setup.scenario_toml"),
        ("setup slot length 0 s", setup(|s| s.slot_wall_s = 0.0), "setup.slot_wall_s"),
        ("setup with 1 endpoint for 2 servers", setup(|s| { s.server_endpoints.pop(); }), "setup.server_endpoints"),
        ("setup endpoint `ftp://x`", setup(|s| s.server_endpoints[1] = "ftp://x".into()), "setup.server_endpoints[1]"),
    ];
    let mut table = String::from("| bad input | field | error |\n| --- | --- | --- |\n");
    for (input, result, field) in cases {
        let invalid = result.expect_err(input);
        assert_eq!(invalid.field, field, "{input}: {invalid}");
        table.push_str(&format!("| {input} | `{}` | {} |\n", invalid.field, invalid.reason));
    }
    // `cargo test -- --nocapture bad_input_table` prints the table.
    println!("{table}");
}
