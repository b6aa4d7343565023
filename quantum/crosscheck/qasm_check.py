"""Run qmec's OpenQASM 3 exports in Qiskit and compare with qmec.

Reads the JSON written by `cargo run -p qmec-qnn --example dump_qasm`: for
every export, the OpenQASM text and qmec's final state and readout ⟨Z⟩.
Each text is imported with qiskit.qasm3.loads (qiskit-qasm3-import), its
final measurements are dropped, and qiskit.quantum_info.Statevector runs it
from |0...0>. The final state and the readouts must match qmec's within
1e-10, so an export that leaves out (or gets wrong) any part of the input
encoding or the trained circuit fails.

Qubit order: the export's q[i] is bit i of the basis index, and Qiskit's
Statevector is little-endian too, so the two arrays compare index for index
and ⟨Z_q⟩ is read off bit q of the index.
"""

import json
import sys

import numpy as np
import qiskit
from qiskit import qasm3
from qiskit.quantum_info import Statevector

TOL = 1e-10


def z_expectation(probabilities, qubit):
    bits = (np.arange(len(probabilities)) >> qubit) & 1
    return float(np.sum(probabilities * (1 - 2 * bits)))


def check(case):
    circuit = qasm3.loads(case["qasm"])
    circuit.remove_final_measurements()
    psi = Statevector(circuit).data
    probabilities = np.abs(psi) ** 2
    ours = np.array(case["state_re"]) + 1j * np.array(case["state_im"])
    theirs = [z_expectation(probabilities, q) for q in case["readout"]]
    errors = {
        "state": float(np.max(np.abs(psi - ours))) if psi.shape == ours.shape else float("inf"),
        "readout": float(np.max(np.abs(np.array(theirs) - np.array(case["expectations"])))),
    }
    ok = all(e <= TOL for e in errors.values())
    detail = " ".join(f"{k}={v:.1e}" for k, v in errors.items())
    print(f"{'ok  ' if ok else 'FAIL'} {case['name']} ({circuit.num_qubits} qubits, {circuit.size()} gates): {detail}")
    return ok, case["arch"], errors["readout"]


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "qasm.json"
    with open(path) as f:
        cases = json.load(f)
    print(f"qiskit {qiskit.__version__}, {len(cases)} OpenQASM 3 exports from {path}, tolerance {TOL:g}")
    results = [check(case) for case in cases]
    failed = sum(1 for ok, _, _ in results if not ok)
    if not cases:
        failed = 1
        print("no exports in the file")
    for arch in sorted({a for _, a, _ in results}):
        worst = max(e for _, a, e in results if a == arch)
        print(f"{arch}: largest readout deviation {worst:.1e}")
    print(f"{len(cases) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
