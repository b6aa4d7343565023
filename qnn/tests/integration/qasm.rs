//! The OpenQASM 3 export parsed back and re-simulated to the same
//! expectations, for both quantum architectures.

use qmec_model::Scenario;
use qmec_qnn::arch::{ArchKind, Network};
use qmec_qnn::features::{FeatureScales, StateInput};
use qmec_qnn::qasm;

#[test]
fn export_parses_back_to_the_same_expectations() {
    let scenario = Scenario::paper();
    let states = qmec_qnn::dataset::collect_states(&scenario, 2, 4).expect("rollout");
    let scales = FeatureScales::measure(&states);
    for kind in [ArchKind::Paper, ArchKind::PerLink] {
        let network = Network::init(kind, scenario.devices, scenario.servers, 8).expect("network");
        for state in &states {
            let input = StateInput::new(&scenario, state, &scales);
            for pair in [(0, 0), (3, 2)] {
                let instance = network.arch().circuit_for(&input, pair).expect("quantum").expect("instance");
                let text = qasm::export(&instance, "test").expect("export");
                assert!(text.starts_with("OPENQASM 3.0;"));
                let program = qasm::parse(&text).expect("parses");
                assert_eq!(program.n_qubits, instance.circuit.n_qubits());
                let back = qasm::simulate(&program).expect("simulates");
                let reference = qasm::expectations(&instance).expect("reference");
                assert_eq!(back.len(), reference.len());
                for (a, b) in back.iter().zip(&reference) {
                    assert!((a - b).abs() < 1e-12, "{kind}: {a} vs {b}");
                }
            }
        }
    }
}

#[test]
fn malformed_qasm_is_refused_with_its_line() {
    let err = qasm::parse("OPENQASM 3.0;\nqubit[2] q;\nrx(abc) q[0];\n").expect_err("bad angle");
    assert!(err.to_string().contains("line 3"), "{err}");
    let err = qasm::parse("OPENQASM 3.0;\nqubit[2] q;\ncz q[0], q[5];\n").expect_err("qubit out of range");
    assert!(err.to_string().contains("line 3"), "{err}");
}
