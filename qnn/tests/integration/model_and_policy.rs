//! Model files (round trip, versioning, refusals), the learned policy in the
//! simulator, the compiled per-link readout, and a short training run.

use qmec_model::{Policy, Scenario};
use qmec_qnn::arch::{ArchKind, Network, per_link::PerLinkNet};
use qmec_qnn::candidates::DecisionMode;
use qmec_qnn::features::{FeatureScales, StateInput};
use qmec_qnn::model_file::{FORMAT_VERSION, ModelFile, ScenarioInfo};
use qmec_qnn::train::{TrainConfig, train};
use qmec_qnn::{LearnedPolicy, QnnError};

fn scales() -> FeatureScales {
    FeatureScales { queue_bits: 1e6, rate_bps: 3e7, server_bits: 1e5 }
}

fn model(kind: ArchKind, scenario: &Scenario) -> (ModelFile, Network) {
    let network = Network::init(kind, scenario.devices, scenario.servers, 5).expect("network builds");
    let file = ModelFile {
        format_version: FORMAT_VERSION,
        scenario: ScenarioInfo::of(scenario),
        scales: scales(),
        network: network.to_spec(),
        training: None,
        decision: DecisionMode::Critic,
        closed_loop: None,
    };
    (file, network)
}

#[test]
fn model_file_round_trips_for_every_arch() {
    let scenario = Scenario::paper();
    let dir = tempfile::tempdir().expect("temp dir");
    let states = qmec_qnn::dataset::collect_states(&scenario, 3, 2).expect("rollout");
    for kind in ArchKind::ALL {
        let (file, network) = model(kind, &scenario);
        let path = dir.path().join(format!("{kind}.json"));
        file.save(&path).expect("save");
        let (loaded, rebuilt) = ModelFile::load(&path).expect("load");
        assert_eq!(loaded, file, "{kind}: file changed in the round trip");
        for state in &states {
            let input = StateInput::new(&scenario, state, &scales());
            let a = network.arch().scores(&input).expect("scores");
            let b = rebuilt.arch().scores(&input).expect("scores");
            assert_eq!(a, b, "{kind}: reloaded network scores differently");
        }
    }
}

#[test]
fn unknown_format_version_is_refused_by_name() {
    let (file, _) = model(ArchKind::PerLink, &Scenario::paper());
    let current = format!("\"format_version\": {FORMAT_VERSION}");
    let text = file.to_json().expect("json").replace(&current, "\"format_version\": 7");
    match ModelFile::from_json(&text, "m.json") {
        Err(QnnError::Version { found: 7, supported }) => assert_eq!(supported, FORMAT_VERSION),
        other => panic!("expected a version error, got {other:?}"),
    }
    let missing = file.to_json().expect("json").replace(&format!("{current},"), "");
    let err = ModelFile::from_json(&missing, "m.json").expect_err("no version");
    assert!(err.to_string().contains("format_version"), "{err}");
}

#[test]
fn bad_parameters_are_refused_naming_the_field() {
    let (mut file, _) = model(ArchKind::Mlp, &Scenario::paper());
    if let qmec_qnn::arch::NetworkSpec::Mlp { params, .. } = &mut file.network {
        params.pop();
    }
    let err = ModelFile::from_json(&file.to_json().expect("json"), "m.json").expect_err("short params");
    assert!(err.to_string().contains("network.params"), "{err}");
    let text = model(ArchKind::Paper, &Scenario::paper()).0.to_json().expect("json").replace("\"queue_bits\": 1000000.0", "\"queue_bits\": -1.0");
    let err = ModelFile::from_json(&text, "m.json").expect_err("negative scale");
    assert!(err.to_string().contains("scales"), "{err}");
}

#[test]
fn fixed_size_model_is_refused_on_other_dimensions_and_per_link_is_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    let paper = Scenario::paper();
    let scaled = Scenario::builtin("scaled").expect("built-in");
    let (file, _) = model(ArchKind::Paper, &paper);
    let path = dir.path().join("paper.json");
    file.save(&path).expect("save");
    let err = LearnedPolicy::load("qnn", &path, &scaled).expect_err("M = 50 refused");
    let text = err.to_string();
    assert!(text.contains("M = 10") && text.contains("M = 50"), "message says why: {text}");
    assert!(LearnedPolicy::load("qnn", &path, &paper).is_ok());
    let err = LearnedPolicy::load("dl", &path, &paper).expect_err("a QNN is not a dl model");
    assert!(err.to_string().contains("`qnn`"), "{err}");

    let (file, _) = model(ArchKind::PerLink, &paper);
    let path = dir.path().join("per-link.json");
    file.save(&path).expect("save");
    let mut policy = LearnedPolicy::load("qnn", &path, &scaled).expect("per-link fits any M, S");
    let mut sim = qmec_sim::Simulator::new(&scaled, 3);
    for _ in 0..5 {
        let state = sim.observe();
        let decision = policy.decide(&scaled, &state).expect("decides");
        decision.check(&scaled, &state).expect("feasible");
        sim.apply(&state, decision);
    }
}

#[test]
fn compiled_per_link_readout_equals_statevector_simulation() {
    let scenario = Scenario::paper();
    let net = PerLinkNet::new(2, 11).expect("net");
    let states = qmec_qnn::dataset::collect_states(&scenario, 40, 9).expect("rollout");
    let n = net.circuit().n_params();
    let (w, b) = (&net_params(&net)[n..n + 4], net_params(&net)[n + 4]);
    let temp = net_params(&net)[n + 7].exp();
    let mut checked = 0;
    for state in &states {
        let input = StateInput::new(&scenario, state, &scales());
        let scores = qmec_qnn::Architecture::scores(&net, &input).expect("scores");
        for m in 0..input.devices() {
            for s in (0..input.servers()).filter(|&s| input.links.open[m * input.servers() + s]) {
                checked += 1;
                let z = net.expectations(&input, m, s).expect("statevector");
                let reference = temp * (w.iter().zip(&z).map(|(a, c)| a * c).sum::<f64>() + b);
                let got = scores[m * (input.servers() + 1) + 1 + s];
                assert!((got - reference).abs() < 1e-12 * (1.0 + reference.abs()), "({m},{s}): {got} vs {reference}");
            }
        }
    }
    assert!(checked >= 10, "only {checked} open links compared");
}

fn net_params(net: &PerLinkNet) -> Vec<f64> {
    qmec_qnn::Architecture::params(net).to_vec()
}

#[test]
fn short_training_lowers_the_loss_clearly() {
    let scenario = Scenario::paper();
    let mut config = TrainConfig::new(ArchKind::Mlp);
    config.objective = qmec_qnn::Objective::Exact;
    config.epochs = 80;
    config.lr = 0.003;
    config.train_states = 256;
    config.val_states = 128;
    config.eval_every = 0;
    let report = train(&scenario, &config, |_| {}).expect("trains");
    let first: f64 = report.curve[..5].iter().map(|r| r.loss).sum::<f64>() / 5.0;
    let last: f64 = report.curve[report.curve.len() - 5..].iter().map(|r| r.loss).sum::<f64>() / 5.0;
    assert!(last < first - 0.05, "loss {first:.4} → {last:.4}");
    // The critic hides a poor ranking (16 candidates on 30 pairs); the
    // first candidate alone shows what the network learnt.
    assert!(
        report.validation.first_share > report.initial.first_share,
        "held-out share of the first candidate {:.3} → {:.3}",
        report.initial.first_share,
        report.validation.first_share
    );
}

#[test]
fn files_without_a_decision_mode_keep_the_critic_and_network_mode_is_honoured() {
    let scenario = Scenario::paper();
    let (shipped, _) = qmec_qnn::shipped::per_link().expect("shipped model loads");
    assert_eq!(shipped.decision, DecisionMode::Critic, "a file written before the field means the critic");
    assert!(!qmec_qnn::shipped::PER_LINK_JSON.contains("\"decision\""));

    let (mut file, _) = model(ArchKind::PerLink, &scenario);
    file.decision = DecisionMode::Network;
    let text = file.to_json().expect("json");
    assert!(text.contains("\"decision\": \"network\""), "{text}");
    let policy = LearnedPolicy::from_file("qnn", ModelFile::from_json(&text, "m.json").expect("loads"), "m.json", &scenario)
        .expect("fits");
    assert_eq!(policy.mode(), DecisionMode::Network);
    assert_eq!(policy.network_alone().mode(), DecisionMode::Network, "the ablation keeps a network-mode model as it is");

    let err = ModelFile::from_json(&text.replace("\"network\"", "\"oracle\""), "m.json").expect_err("unknown mode");
    assert!(err.to_string().contains("oracle"), "{err}");
}

#[test]
fn a_network_mode_decision_is_feasible_and_uses_only_pairs_the_network_would() {
    let scenario = Scenario::paper();
    let (file, network) = qmec_qnn::shipped::per_link().expect("shipped model loads");
    let mut policy = LearnedPolicy::new(network, file.scales).with_mode(DecisionMode::Network);
    let mut sim = qmec_sim::Simulator::new(&scenario, 4);
    for _ in 0..30 {
        let state = sim.observe();
        let choice = policy.choose(&scenario, &state).expect("decides");
        assert_eq!(choice.weighed, 1, "no critic, no other candidates");
        let decision = policy.decide(&scenario, &state).expect("decides");
        decision.check(&scenario, &state).expect("feasible");
        sim.apply(&state, decision);
    }
}
