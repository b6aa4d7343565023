"""Time one paper-architecture QNN training step in PennyLane lightning.qubit.

The same circuit as qmec_qnn::arch::paper::paper_circuit for the paper
scenario (M = 10, S = 3: a global vector of 84 features amplitude-encoded on
7 qubits): two convolution stages of the 12-parameter 4-qubit filter (RX, RY,
RZ per qubit, CZ between neighbours) slid with stride 2 (last window
right-aligned), each followed by a pooling stage (CNOT from the dropped qubit
of each pair into the kept one), <Z> read on every qubit. qmec qubit q sits
on PennyLane wire n-1-q so both simulators hold the same amplitude array.

Two timings, batch of 32, diff_method="adjoint":
  circuit: gradient of sum_b sum_q w[b,q] <Z_q>_b      (qmec: paper_circuit_only)
  step:    the same plus two dense layers (ReLU) in autograd, gradient of a
           fixed linear function of the 40 scores     (qmec: paper, which also
           runs the projection and the DPP loss)
Prints microseconds per step (best of several repeats).

Run with the quantum crate's virtualenv:
  quantum/crosscheck/run.sh   # creates .venv-crosscheck once
  .venv-crosscheck/bin/python qnn/bench/bench_paper_arch.py
"""

import time

import numpy as np
import pennylane as qml
from pennylane import numpy as pnp

N = 7
BATCH = 32
FEATURES = 84
HIDDEN = 32
OUTPUTS = 40


def wire(q):
    return N - 1 - q


def filt(params, base, qubits):
    for i, q in enumerate(qubits):
        qml.RX(params[base + 3 * i], wires=wire(q))
        qml.RY(params[base + 3 * i + 1], wires=wire(q))
        qml.RZ(params[base + 3 * i + 2], wires=wire(q))
    for a, b in zip(qubits, qubits[1:]):
        qml.CZ(wires=[wire(a), wire(b)])


def conv(params, base, line):
    if len(line) <= 4:
        filt(params, base, line)
        return
    start = 0
    while True:
        filt(params, base, line[start:start + 4])
        if start + 4 == len(line):
            return
        start = min(start + 2, len(line) - 4)


def pool(line):
    kept = []
    for k in range(0, len(line), 2):
        pair = line[k:k + 2]
        if len(pair) == 2:
            qml.CNOT(wires=[wire(pair[1]), wire(pair[0])])
        kept.append(pair[0])
    return kept


dev = qml.device("lightning.qubit", wires=N)


@qml.qnode(dev, diff_method="adjoint")
def circuit(x, params):
    qml.AmplitudeEmbedding(x, wires=range(N), normalize=True, pad_with=0.0)
    line = list(range(N))
    conv(params, 0, line)
    line = pool(line)
    conv(params, 12, line)
    pool(line)
    return [qml.expval(qml.PauliZ(wire(q))) for q in range(N)]


def time_best(f, repeats):
    f()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best * 1e6


def main():
    rng = np.random.default_rng(1)
    xs = [rng.uniform(-1, 1, FEATURES) for _ in range(BATCH)]
    w = rng.uniform(-1, 1, (BATCH, N))
    theta = pnp.array(np.cos(np.arange(24) * 0.37), requires_grad=True)
    w1 = pnp.array(rng.uniform(-0.3, 0.3, (N, HIDDEN)), requires_grad=True)
    b1 = pnp.array(np.zeros(HIDDEN), requires_grad=True)
    w2 = pnp.array(rng.uniform(-0.3, 0.3, (HIDDEN, OUTPUTS)), requires_grad=True)
    b2 = pnp.array(np.zeros(OUTPUTS), requires_grad=True)
    g = rng.uniform(-1, 1, (BATCH, OUTPUTS))

    def circuit_cost(p):
        return sum(pnp.dot(w[b], pnp.stack(circuit(xs[b], p))) for b in range(BATCH))

    def step_cost(p, w1, b1, w2, b2):
        total = 0.0
        for b in range(BATCH):
            z = pnp.stack(circuit(xs[b], p))
            h = pnp.maximum(pnp.dot(z, w1) + b1, 0.0)
            total = total + pnp.dot(pnp.dot(h, w2) + b2, g[b])
        return total

    grad_c = qml.grad(circuit_cost)
    grad_s = qml.grad(step_cost, argnums=[0, 1, 2, 3, 4])
    print(f"pennylane {qml.__version__}, lightning.qubit adjoint, {N} qubits, batch {BATCH}")
    print(f"paper_circuit_only: {time_best(lambda: grad_c(theta), 5):.0f} us/step")
    print(f"paper_step (circuit + dense): {time_best(lambda: grad_s(theta, w1, b1, w2, b2), 5):.0f} us/step")


if __name__ == "__main__":
    main()
