//! Mobility in the scenario: validated like every field, a trace read from
//! its file with errors naming the path and line, and a channel whose path
//! loss follows the device slot by slot.

#![allow(clippy::unwrap_used)]

use qmec_model::Scenario;
use qmec_model::channel::{DeviceChannel, path_gain};
use qmec_model::mobility::{DeviceMotion, Trajectory};
use qmec_model::scenario::Fading;

fn mobile() -> Scenario {
    Scenario::builtin("paper-mobile").expect("paper-mobile")
}

fn rejected(scenario: &Scenario) -> String {
    match Scenario::from_toml(&scenario.to_toml()) {
        Ok(_) => panic!("accepted: {:?}", scenario.mobility),
        Err(e) => e.to_string(),
    }
}

#[test]
fn mobile_builtins_round_trip_through_toml() {
    for name in ["paper-mobile", "paper-trace"] {
        let scenario = Scenario::builtin(name).expect(name);
        assert_eq!(
            Scenario::from_toml(&scenario.to_toml()).expect(name),
            scenario,
            "{name}"
        );
    }
}

#[test]
fn every_bad_mobility_field_is_named() {
    type Spoil = fn(&mut Scenario);
    let cases: Vec<(&str, Spoil)> = vec![
        ("mobility.width_m", |s| {
            s.mobility.as_mut().unwrap().width_m = 0.0
        }),
        ("mobility.height_m", |s| {
            s.mobility.as_mut().unwrap().height_m = f64::NAN
        }),
        ("mobility.servers", |s| {
            s.mobility.as_mut().unwrap().servers =
                vec![qmec_model::mobility::Position { x_m: 1.0, y_m: 1.0 }];
        }),
        ("mobility.servers[2]", |s| {
            let m = s.mobility.as_mut().unwrap();
            m.servers = m.server_positions(3);
            m.servers[2].y_m = 1e5;
        }),
        ("mobility.devices.min_speed_mps", |s| {
            s.mobility.as_mut().unwrap().devices = DeviceMotion::RandomWaypoint {
                min_speed_mps: 0.0,
                max_speed_mps: 1.0,
                pause_s: 0.0,
            };
        }),
        ("mobility.devices.max_speed_mps", |s| {
            s.mobility.as_mut().unwrap().devices = DeviceMotion::RandomWaypoint {
                min_speed_mps: 5.0,
                max_speed_mps: 1.0,
                pause_s: 0.0,
            };
        }),
        ("mobility.devices.pause_s", |s| {
            s.mobility.as_mut().unwrap().devices = DeviceMotion::RandomWaypoint {
                min_speed_mps: 1.0,
                max_speed_mps: 1.0,
                pause_s: -1.0,
            };
        }),
        ("mobility.devices.alpha", |s| {
            s.mobility.as_mut().unwrap().devices = DeviceMotion::GaussMarkov {
                mean_speed_mps: 3.0,
                speed_std_mps: 1.0,
                direction_std_rad: 0.3,
                alpha: 1.5,
            };
        }),
        ("mobility.devices.speed_std_mps", |s| {
            s.mobility.as_mut().unwrap().devices = DeviceMotion::GaussMarkov {
                mean_speed_mps: 3.0,
                speed_std_mps: -1.0,
                direction_std_rad: 0.3,
                alpha: 0.5,
            };
        }),
        ("mobility.devices.samples", |s| s.devices = 11),
    ];
    for (field, spoil) in cases {
        let mut scenario = if field.ends_with("samples") {
            Scenario::builtin("paper-trace").unwrap()
        } else {
            mobile()
        };
        spoil(&mut scenario);
        let message = rejected(&scenario);
        assert!(
            message.contains(&format!("`{field}`")),
            "{field}: {message}"
        );
    }
    let unknown = mobile().to_toml().replace("pause_s", "rest_s");
    let message = Scenario::from_toml(&unknown)
        .expect_err("unknown field accepted")
        .to_string();
    assert!(message.contains("rest_s"), "{message}");
    let unknown_model = mobile().to_toml().replace("random-waypoint", "levy-walk");
    let message = Scenario::from_toml(&unknown_model)
        .expect_err("unknown model accepted")
        .to_string();
    assert!(message.contains("levy-walk"), "{message}");
}

#[test]
fn a_trace_file_is_read_beside_the_scenario_and_its_errors_name_path_and_line() {
    let dir = tempfile::tempdir().expect("a folder");
    let mut scenario = Scenario::builtin("paper-trace").expect("paper-trace");
    scenario.devices = 2;
    let Some(mobility) = scenario.mobility.as_mut() else {
        panic!("no mobility")
    };
    mobility.devices = DeviceMotion::Trace {
        file: "walk.csv".into(),
        samples: Vec::new(),
    };
    let toml_path = dir.path().join("walk.toml");
    std::fs::write(&toml_path, scenario.to_toml()).expect("scenario file");

    std::fs::write(
        dir.path().join("walk.csv"),
        "time_s,device,x_m,y_m\n0,0,10,10\n10,0,20,10\n0,1,5,5\n",
    )
    .expect("trace");
    let loaded = Scenario::load(toml_path.to_str().unwrap()).expect("a valid trace scenario");
    // Parsing TOML text (as agents do with the controller's setup) opens no
    // file: the samples must be inside.
    let inline = std::fs::read_to_string(&toml_path).expect("scenario text");
    let message = Scenario::from_toml(&inline).expect_err("a trace without samples accepted").to_string();
    assert!(message.contains("`mobility.devices.samples`"), "{message}");
    let Some(DeviceMotion::Trace { samples, .. }) = loaded.mobility.as_ref().map(|m| &m.devices)
    else {
        panic!()
    };
    assert_eq!(samples.len(), 3);
    let mut t = Trajectory::new(loaded.mobility.as_ref().unwrap(), 1, 0);
    t.advance(5.0);
    assert_eq!((t.position().x_m, t.position().y_m), (15.0, 10.0));

    std::fs::write(
        dir.path().join("walk.csv"),
        "time_s,device,x_m,y_m\n0,0,10,10\n1,0,x,10\n",
    )
    .expect("trace");
    let message = Scenario::load(toml_path.to_str().unwrap())
        .expect_err("bad trace accepted")
        .to_string();
    assert!(
        message.contains("walk.csv line 3") && message.contains("x_m"),
        "{message}"
    );

    std::fs::write(
        dir.path().join("walk.csv"),
        "time_s,device,x_m,y_m\n0,0,10,10\n0,1,500,10\n",
    )
    .expect("trace");
    let message = Scenario::load(toml_path.to_str().unwrap())
        .expect_err("outside accepted")
        .to_string();
    assert!(
        message.contains("mobility.devices.samples[1]") && message.contains("outside"),
        "{message}"
    );

    std::fs::remove_file(dir.path().join("walk.csv")).expect("remove");
    let message = Scenario::load(toml_path.to_str().unwrap())
        .expect_err("missing trace accepted")
        .to_string();
    assert!(message.contains("walk.csv"), "{message}");
}

#[test]
fn the_shipped_example_trace_parses_and_covers_the_paper_devices() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mobility-trace.csv");
    let text = std::fs::read_to_string(path).expect("the example trace");
    let samples = qmec_model::mobility::parse_trace(&text, path).expect("a valid trace");
    assert!((0..10).all(|d| samples.iter().filter(|s| s.device == d).count() >= 2));
}

#[test]
fn path_loss_follows_the_device_slot_by_slot() {
    let mut scenario = mobile();
    scenario.channel.fading = Fading::None;
    let mobility = scenario.mobility.clone().unwrap();
    let servers = mobility.server_positions(scenario.servers);
    let mut channel = DeviceChannel::new(&scenario, 9, 4);
    let mut trajectory = Trajectory::new(&mobility, 9, 4);
    let mut changed = 0;
    let mut last = Vec::new();
    for slot in 0..300 {
        let gains = channel.next_slot().to_vec();
        let here = trajectory.position();
        assert_eq!(channel.position(), Some(here), "slot {slot}");
        for (s, server) in servers.iter().enumerate() {
            let expected = path_gain(
                &scenario.channel,
                here.distance_to(server)
                    .max(scenario.channel.min_distance_m),
            );
            assert_eq!(gains[s], expected, "slot {slot}, server {s}");
        }
        changed += usize::from(gains != last);
        last = gains;
        trajectory.advance(scenario.slot_seconds);
    }
    assert!(
        changed > 250,
        "the gains changed in only {changed} of 300 slots"
    );
}

#[test]
fn without_mobility_the_distances_are_the_drawn_ones() {
    let mut scenario = Scenario::paper();
    scenario.channel.fading = Fading::None;
    let mut channel = DeviceChannel::new(&scenario, 4, 2);
    let drawn: Vec<f64> = qmec_model::channel::device_distances(&scenario, 4, 2)
        .iter()
        .map(|d| path_gain(&scenario.channel, *d))
        .collect();
    for _ in 0..5 {
        assert_eq!(channel.next_slot(), drawn.as_slice());
    }
    assert_eq!(channel.position(), None);
}
