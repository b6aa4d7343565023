//! Every bad scenario field is rejected with a message naming it.

use qmec_model::Scenario;

/// Replaces `key = ...` inside `[section]` of the paper scenario's TOML.
fn paper_with(section: &str, key: &str, value: &str) -> String {
    let mut in_section = section.is_empty();
    let mut replaced = false;
    let lines: Vec<String> = Scenario::paper()
        .to_toml()
        .lines()
        .map(|line| {
            if line.starts_with('[') {
                in_section = line.trim() == format!("[{section}]");
            } else if in_section && !replaced && line.split('=').next().map(str::trim) == Some(key) {
                replaced = true;
                return format!("{key} = {value}");
            }
            line.to_string()
        })
        .collect();
    assert!(replaced, "test setup: {section}.{key} not found");
    lines.join("\n")
}

fn rejection(section: &str, key: &str, value: &str) -> String {
    match Scenario::from_toml(&paper_with(section, key, value)) {
        Ok(_) => panic!("{section}.{key} = {value} was accepted"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn paper_scenario_round_trips_through_toml() {
    let paper = Scenario::paper();
    assert_eq!(Scenario::from_toml(&paper.to_toml()).expect("paper is valid"), paper);
}

#[test]
fn every_out_of_range_field_is_named() {
    let cases = [
        ("", "devices", "0", "devices"),
        ("", "servers", "0", "servers"),
        ("", "slot_seconds", "-0.1", "slot_seconds"),
        ("", "slot_seconds", "nan", "slot_seconds"),
        ("", "name", "\"  \"", "name"),
        ("arrivals", "tasks_per_slot", "-1.0", "arrivals.tasks_per_slot"),
        ("arrivals", "tasks_per_slot", "inf", "arrivals.tasks_per_slot"),
        ("channel", "bandwidth_hz", "0.0", "channel.bandwidth_hz"),
        ("channel", "noise_w", "-1e-9", "channel.noise_w"),
        ("channel", "correlation", "1.0", "channel.correlation"),
        ("channel", "correlation", "-0.5", "channel.correlation"),
        ("channel", "reference_gain", "0.0", "channel.reference_gain"),
        ("channel", "path_loss_exponent", "11.0", "channel.path_loss_exponent"),
        ("channel", "min_distance_m", "0.0", "channel.min_distance_m"),
        ("channel", "max_distance_m", "10.0", "channel.max_distance_m"),
        ("device", "tx_power_w", "-0.1", "device.tx_power_w"),
        ("device", "cpu_hz", "0.0", "device.cpu_hz"),
        ("device", "cycles_per_bit", "-5.0", "device.cycles_per_bit"),
        ("device", "kappa", "2.0", "device.kappa"),
        ("device", "promised_bps", "-1.0", "device.promised_bps"),
        ("device", "queue_cap_bits", "0", "device.queue_cap_bits"),
        ("server", "cpu_hz", "0.0", "server.cpu_hz"),
        ("server", "result_delay_s", "-1.0", "server.result_delay_s"),
        ("server", "queue_cap_bits", "0", "server.queue_cap_bits"),
        ("control", "v", "-1.0", "control.v"),
        ("control", "omega", "-1.0", "control.omega"),
        ("control", "queue_unit_bits", "0.0", "control.queue_unit_bits"),
    ];
    for (section, key, value, field) in cases {
        let message = rejection(section, key, value);
        assert!(message.contains(field), "{section}.{key} = {value}: message `{message}` does not name `{field}`");
    }
}

#[test]
fn task_size_distribution_is_checked() {
    let uniform_inverted = Scenario::paper()
        .to_toml()
        .replace("min = 50000\nmax = 150000", "min = 150000\nmax = 50000");
    let message = Scenario::from_toml(&uniform_inverted).expect_err("max < min accepted").to_string();
    assert!(message.contains("arrivals.task_bits.max"), "{message}");

    let zero_min = Scenario::paper().to_toml().replace("min = 50000", "min = 0");
    let message = Scenario::from_toml(&zero_min).expect_err("min = 0 accepted").to_string();
    assert!(message.contains("arrivals.task_bits.min"), "{message}");
}

#[test]
fn unknown_and_missing_fields_are_rejected_by_name() {
    let unknown = Scenario::paper().to_toml().replace("[device]\n", "[device]\nturbo = true\n");
    let message = Scenario::from_toml(&unknown).expect_err("unknown field accepted").to_string();
    assert!(message.contains("turbo"), "{message}");

    let missing: String = Scenario::paper()
        .to_toml()
        .lines()
        .filter(|line| !line.starts_with("noise_w"))
        .map(|line| format!("{line}\n"))
        .collect();
    let message = Scenario::from_toml(&missing).expect_err("missing field accepted").to_string();
    assert!(message.contains("noise_w"), "{message}");

    let wrong_type = paper_with("", "devices", "\"ten\"");
    let message = Scenario::from_toml(&wrong_type).expect_err("string count accepted").to_string();
    assert!(message.contains("devices"), "{message}");
}

#[test]
fn unknown_builtin_is_reported() {
    let message = Scenario::load("no-such-scenario").expect_err("accepted").to_string();
    assert!(message.contains("no-such-scenario"), "{message}");
}

#[test]
fn dynamics_are_optional_and_checked() {
    let base = Scenario::paper().to_toml();
    let with = |period: &str, arrival: &str, channel: &str| {
        format!("{base}\n[dynamics]\nperiod_slots = {period}\narrival_amplitude = {arrival}\nchannel_amplitude = {channel}\n")
    };
    let good = Scenario::from_toml(&with("500", "0.5", "0.3")).expect("valid dynamics");
    assert!((good.arrival_rate(125) - 7.5).abs() < 1e-9, "λ peaks a quarter period in");
    assert!((good.channel_factor(0) - 1.3).abs() < 1e-9, "channel best at t = 0");
    for (toml, field) in [
        (with("0", "0.5", "0.3"), "dynamics.period_slots"),
        (with("500", "1.0", "0.3"), "dynamics.arrival_amplitude"),
        (with("500", "0.5", "-0.1"), "dynamics.channel_amplitude"),
    ] {
        let message = Scenario::from_toml(&toml).expect_err("accepted").to_string();
        assert!(message.contains(field), "{message}");
    }
}
