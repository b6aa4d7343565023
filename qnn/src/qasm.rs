//! OpenQASM 3 export of a trained circuit, and a parser for what we emit.
//!
//! The export lets a trained QNN run on other simulators or hardware. It
//! writes the circuit with the trained angles resolved to numbers (Rust's
//! shortest round-trip formatting, so no precision is lost), preceded by
//! one input's encoding as gates from |0…0⟩: `ry` gates for angle encoding,
//! and for amplitude encoding the RY/CNOT state preparation of
//! [`qmec_quantum::state_prep`]. The file therefore runs as is anywhere.
//! Qubit `q[i]` is bit i of the basis index (little-endian, as in Qiskit).
//! A `// qmec-readout: z` comment lists the qubits whose ⟨Z⟩ the network
//! reads. [`parse`] reads exactly this subset back and [`simulate`] reruns
//! it from |0…0⟩, which is how the tests prove the export is faithful.

use crate::arch::{CircuitInstance, Encoding};
use crate::error::{QnnError, Result};
use qmec_quantum::{Angle, Circuit, Observable, Op, StateVector, encoding, state_prep};
use std::fmt::Write as _;

const READOUT: &str = "// qmec-readout: z";

/// OpenQASM 3 text of `instance`, with `title` as a leading comment.
pub fn export(instance: &CircuitInstance, title: &str) -> Result<String> {
    let n = instance.circuit.n_qubits();
    let mut out = String::new();
    let _ = writeln!(out, "OPENQASM 3.0;");
    let _ = writeln!(out, "include \"stdgates.inc\";");
    for line in title.lines() {
        let _ = writeln!(out, "// {line}");
    }
    let _ = writeln!(out, "// qubit q[i] is bit i of the basis index (little-endian).");
    let readout: Vec<String> = instance.readout.iter().map(|q| q.to_string()).collect();
    let _ = writeln!(out, "{READOUT} {}", readout.join(" "));
    let _ = writeln!(out, "qubit[{n}] q;");
    let _ = writeln!(out, "bit[{n}] c;");
    match &instance.encoding {
        Encoding::Amplitude(amps) => {
            let _ = writeln!(out, "// input: amplitude encoding, prepared from |0...0> by uniformly controlled RY rotations (Mottonen et al.)");
            write_ops(&mut out, state_prep::amplitude_on(amps, n)?.ops(), &[])?;
        }
        Encoding::Angle(angles) => {
            let _ = writeln!(out, "// input: angle encoding");
            for (q, a) in angles.iter().enumerate() {
                let _ = writeln!(out, "ry({a:?}) q[{q}];");
            }
        }
    }
    let _ = writeln!(out, "// trained circuit");
    write_ops(&mut out, instance.circuit.ops(), &instance.params)?;
    let _ = writeln!(out, "c = measure q;");
    Ok(out)
}

/// Writes `ops` as gates, resolving parameterised angles against `params`.
fn write_ops(out: &mut String, ops: &[Op], params: &[f64]) -> Result<()> {
    let resolve = |angle: &Angle| match *angle {
        Angle::Fixed(a) => Ok(a),
        Angle::Param { index, scale } => params
            .get(index)
            .map(|p| scale * p)
            .ok_or_else(|| crate::error::field("params", format!("no parameter {index}"))),
    };
    for op in ops {
        match op {
            Op::H { qubit } => writeln!(out, "h q[{qubit}];"),
            Op::X { qubit } => writeln!(out, "x q[{qubit}];"),
            Op::Cnot { control, target } => writeln!(out, "cx q[{control}], q[{target}];"),
            Op::Cz { q1, q2 } => writeln!(out, "cz q[{q1}], q[{q2}];"),
            Op::Rx { qubit, angle } => writeln!(out, "rx({:?}) q[{qubit}];", resolve(angle)?),
            Op::Ry { qubit, angle } => writeln!(out, "ry({:?}) q[{qubit}];", resolve(angle)?),
            Op::Rz { qubit, angle } => writeln!(out, "rz({:?}) q[{qubit}];", resolve(angle)?),
            Op::PhaseDiag { .. } => {
                return Err(crate::error::field("circuit", "diagonal phase layers have no OpenQASM export here"));
            }
        }
        .map_err(|e| crate::error::field("qasm", e.to_string()))?;
    }
    Ok(())
}

/// A parsed export: register size, the ops (encoding gates included, all
/// angles fixed) and the readout qubits.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// The register.
    pub n_qubits: usize,
    /// Every gate in order.
    pub circuit: Circuit,
    /// Qubits read out with ⟨Z⟩.
    pub readout: Vec<usize>,
}

fn qasm_err(line: usize, reason: impl Into<String>) -> QnnError {
    QnnError::Qasm { line, reason: reason.into() }
}

fn qubit_ref(text: &str, line: usize) -> Result<usize> {
    let t = text.trim();
    let inner = t
        .strip_prefix("q[")
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| qasm_err(line, format!("expected q[i], found `{t}`")))?;
    inner.trim().parse().map_err(|_| qasm_err(line, format!("bad qubit index `{inner}`")))
}

/// Parses the subset [`export`] writes.
pub fn parse(text: &str) -> Result<Program> {
    let mut n_qubits = None;
    let mut readout = Vec::new();
    let mut ops = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if let Some(rest) = line.strip_prefix(READOUT) {
            readout = rest
                .split_whitespace()
                .map(|q| q.parse::<usize>().map_err(|_| qasm_err(line_no, format!("bad readout qubit `{q}`"))))
                .collect::<Result<Vec<_>>>()?;
            continue;
        }
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let stmt = line
            .strip_suffix(';')
            .ok_or_else(|| qasm_err(line_no, "statement does not end with `;`"))?
            .trim();
        if stmt.starts_with("OPENQASM") || stmt.starts_with("include") || stmt.starts_with("bit[") || stmt.starts_with("c = measure") {
            continue;
        }
        if let Some(rest) = stmt.strip_prefix("qubit[") {
            let size = rest
                .strip_suffix("] q")
                .ok_or_else(|| qasm_err(line_no, "expected `qubit[n] q;`"))?;
            n_qubits = Some(size.parse::<usize>().map_err(|_| qasm_err(line_no, format!("bad register size `{size}`")))?);
            continue;
        }
        let (gate, args) = stmt.split_once(' ').ok_or_else(|| qasm_err(line_no, format!("unknown statement `{stmt}`")))?;
        let (name, angle) = match gate.split_once('(') {
            Some((name, rest)) => {
                let a = rest
                    .strip_suffix(')')
                    .ok_or_else(|| qasm_err(line_no, "unclosed `(`"))?
                    .parse::<f64>()
                    .map_err(|_| qasm_err(line_no, format!("bad angle in `{gate}`")))?;
                (name, Some(a))
            }
            None => (gate, None),
        };
        let qubits = args.split(',').map(|q| qubit_ref(q, line_no)).collect::<Result<Vec<_>>>()?;
        let op = match (name, angle, qubits.as_slice()) {
            ("h", None, [q]) => Op::H { qubit: *q },
            ("x", None, [q]) => Op::X { qubit: *q },
            ("cx", None, [c, t]) => Op::Cnot { control: *c, target: *t },
            ("cz", None, [a, b]) => Op::Cz { q1: *a, q2: *b },
            ("rx", Some(a), [q]) => Op::Rx { qubit: *q, angle: Angle::Fixed(a) },
            ("ry", Some(a), [q]) => Op::Ry { qubit: *q, angle: Angle::Fixed(a) },
            ("rz", Some(a), [q]) => Op::Rz { qubit: *q, angle: Angle::Fixed(a) },
            _ => return Err(qasm_err(line_no, format!("unsupported statement `{stmt}`"))),
        };
        ops.push((line_no, op));
    }
    let n_qubits = n_qubits.ok_or_else(|| qasm_err(0, "no `qubit[n] q;` declaration"))?;
    let mut circuit = Circuit::new(n_qubits)?;
    for (line_no, op) in ops {
        circuit.push(op).map_err(|e| qasm_err(line_no, e.to_string()))?;
    }
    Ok(Program { n_qubits, circuit, readout })
}

/// ⟨Z⟩ of the readout qubits after running a parsed program from |0…0⟩.
pub fn simulate(program: &Program) -> Result<Vec<f64>> {
    let mut state = StateVector::zero(program.n_qubits)?;
    program.circuit.run(&[], &mut state)?;
    Ok(program
        .readout
        .iter()
        .map(|&q| Observable::Z(q).expectation(&state))
        .collect::<Result<_, _>>()?)
}

/// ⟨Z⟩ of the readout qubits for the instance itself (the reference).
pub fn expectations(instance: &CircuitInstance) -> Result<Vec<f64>> {
    let mut state = match &instance.encoding {
        Encoding::Angle(a) => encoding::angle(a)?,
        Encoding::Amplitude(_) => instance.input.clone(),
    };
    instance.circuit.run(&instance.params, &mut state)?;
    Ok(instance
        .readout
        .iter()
        .map(|&q| Observable::Z(q).expectation(&state))
        .collect::<Result<_, _>>()?)
}
