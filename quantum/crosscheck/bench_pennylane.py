"""Time the training_step benchmark circuits in PennyLane lightning.qubit.

Same circuits as quantum/benches/training_step.rs: (a) 6 qubits, amplitude
encoding, 2 layers of [RX, RY, RZ per qubit + CZ chain], batch of 32, gradient
of sum_b sum_q w[b,q] <Z_q>_b; (b) 12 qubits, 6 layers, one sample. Gradients
with diff_method="adjoint", once with PennyLane's default (Jacobian, then the
VJP in autograd) and once with device_vjp=True (lightning's own VJP). Prints
microseconds per training step (best of several repeats).
"""

import time

import numpy as np
import pennylane as qml
from pennylane import numpy as pnp


def layered(params, n, layers):
    p = 0
    for _ in range(layers):
        for q in range(n):
            w = n - 1 - q  # qmec qubit q on wire n-1-q
            qml.RX(params[p], wires=w)
            qml.RY(params[p + 1], wires=w)
            qml.RZ(params[p + 2], wires=w)
            p += 3
        for q in range(1, n):
            qml.CZ(wires=[n - q, n - 1 - q])


def make_qnode(n, layers, device_vjp):
    dev = qml.device("lightning.qubit", wires=n)

    @qml.qnode(dev, diff_method="adjoint", device_vjp=device_vjp)
    def circuit(x, params):
        qml.AmplitudeEmbedding(x, wires=range(n), normalize=True, pad_with=0.0)
        layered(params, n, layers)
        return [qml.expval(qml.PauliZ(n - 1 - q)) for q in range(n)]

    return circuit


def features(n, seed):
    return np.sin((seed * 7919 + np.arange(n)) * 0.618)


def time_step(step, repeats):
    step()  # warm-up (tracing, caches)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    return best * 1e6


def bench(name, n, layers, batch, repeats):
    n_params = 3 * n * layers
    params = pnp.array(np.cos(np.arange(n_params) * 0.37), requires_grad=True)
    xs = [features(2**n, b) for b in range(batch)]
    w = np.cos(np.arange(batch * n) * 0.11).reshape(batch, n)
    for device_vjp in (False, True):
        circuit = make_qnode(n, layers, device_vjp)

        def cost(p):
            return sum(pnp.dot(w[b], pnp.stack(circuit(xs[b], p))) for b in range(batch))

        grad = qml.grad(cost)
        us = time_step(lambda: grad(params), repeats)
        mode = "device_vjp" if device_vjp else "jacobian"
        print(f"pennylane lightning.qubit adjoint ({mode}) {name}: {us:.0f} us/step")


def main():
    print(f"pennylane {qml.__version__}")
    bench("a_6q_amp_2layers_batch32", 6, 2, 32, 5)
    bench("b_12q_6layers", 12, 6, 1, 5)


if __name__ == "__main__":
    main()
