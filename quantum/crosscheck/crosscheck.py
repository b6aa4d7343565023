"""Rebuild qmec-quantum's dumped circuits in PennyLane and compare.

Reads the JSON written by `cargo run -p qmec-quantum --example dump_circuits`
and, for every circuit, recomputes with PennyLane's default.qubit (backprop,
autograd): the final state, the expectations, the full Jacobian and the
vector-Jacobian product. Any difference above 1e-10 is a failure.

Wire order: qmec's qubit q is bit q of the basis index (least significant
first); PennyLane's wire 0 is the most significant bit. qmec qubit q is put on
PennyLane wire n-1-q, so both hold the same amplitude array index for index and
diagonals and amplitude encodings need no permutation.
"""

import json
import sys

import pennylane as qml
from pennylane import numpy as pnp
import numpy as np

TOL = 1e-10


def wire(q, n):
    return n - 1 - q


def angle(spec, params):
    if "fixed" in spec:
        return spec["fixed"]
    p = spec["param"]
    return p.get("scale", 1.0) * params[p["index"]]


def apply_ops(case, params):
    circ = case["circuit"]
    n = circ["n_qubits"]
    inp = case["input"]
    if inp["kind"] == "amplitude":
        qml.AmplitudeEmbedding(np.array(inp["features"]), wires=range(n), normalize=True, pad_with=0.0)
    elif inp["kind"] == "angle":
        for q, x in enumerate(inp["features"]):
            qml.RY(x, wires=wire(q, n))
    elif inp["kind"] != "zero":
        raise ValueError(f"unknown input kind {inp['kind']}")
    for op in circ["ops"]:
        kind = op["op"]
        if kind == "h":
            qml.Hadamard(wires=wire(op["qubit"], n))
        elif kind == "x":
            qml.PauliX(wires=wire(op["qubit"], n))
        elif kind == "cnot":
            qml.CNOT(wires=[wire(op["control"], n), wire(op["target"], n)])
        elif kind == "cz":
            qml.CZ(wires=[wire(op["q1"], n), wire(op["q2"], n)])
        elif kind in ("rx", "ry", "rz"):
            gate = {"rx": qml.RX, "ry": qml.RY, "rz": qml.RZ}[kind]
            gate(angle(op["angle"], params), wires=wire(op["qubit"], n))
        elif kind == "phase_diag":
            d = pnp.array(op["diag"], requires_grad=False)
            # Same index order as qmec (see module docs), so wires 0..n-1 as is.
            qml.DiagonalQubitUnitary(pnp.exp(-1j * params[op["param"]] * d), wires=range(n))
        else:
            raise ValueError(f"unknown op {kind}")


def observable(spec, n):
    if "z" in spec:
        return qml.PauliZ(wire(spec["z"], n))
    if "zz" in spec:
        a, b = spec["zz"]
        return qml.PauliZ(wire(a, n)) @ qml.PauliZ(wire(b, n))
    if "diagonal" in spec:
        return qml.Hermitian(np.diag(spec["diagonal"]), wires=range(n))
    raise ValueError(f"unknown observable {spec}")


def check(case):
    n = case["circuit"]["n_qubits"]
    dev = qml.device("default.qubit", wires=n)
    obs = [observable(o, n) for o in case["observables"]]

    @qml.qnode(dev, diff_method="backprop", interface="autograd")
    def expvals(params):
        apply_ops(case, params)
        return [qml.expval(o) for o in obs]

    @qml.qnode(dev)
    def state(params):
        apply_ops(case, params)
        return qml.state()

    params = pnp.array(case["params"], requires_grad=True)
    weights = np.array(case["weights"])

    def stacked(p):
        return pnp.stack(expvals(p))

    errors = {}
    psi = np.asarray(state(params))
    ours = np.array(case["state_re"]) + 1j * np.array(case["state_im"])
    errors["state"] = np.max(np.abs(psi - ours))
    errors["expectations"] = np.max(np.abs(np.asarray(stacked(params)) - np.array(case["expectations"])))
    jac = np.asarray(qml.jacobian(stacked)(params))
    errors["jacobian"] = np.max(np.abs(jac - np.array(case["jacobian"])))
    vjp = np.asarray(qml.grad(lambda p: pnp.dot(weights, stacked(p)))(params))
    errors["vjp"] = np.max(np.abs(vjp - np.array(case["vjp_gradient"])))
    ok = all(e <= TOL for e in errors.values())
    detail = " ".join(f"{k}={v:.1e}" for k, v in errors.items())
    print(f"{'ok  ' if ok else 'FAIL'} {case['name']} ({n} qubits, {len(case['params'])} params): {detail}")
    return ok


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "circuits.json"
    with open(path) as f:
        cases = json.load(f)
    print(f"pennylane {qml.__version__}, {len(cases)} circuits from {path}, tolerance {TOL:g}")
    passed = sum(1 for case in cases if check(case))
    failed = len(cases) - passed
    if not cases:
        failed = 1
        print("no circuits in the file")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
