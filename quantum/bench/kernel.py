"""Kernel benchmark: qmec against PennyLane lightning.qubit, in one run.

Usage (through quantum/bench/kernel.sh, which builds the qmec half and sets
the single-thread environment): kernel.py QMEC_BINARY [--rounds R]
[--layers L] [--qubits 16,18,20,22]

Both simulators run the same circuit, Circuit::layered(n, L): per layer RX,
RY, RZ on every qubit, then a CZ chain, from |0...0>, forward pass only, state
vector only, no gradients, one thread each. Per qubit count each sample applies
the circuit 2^(22-n) times in a row (at least once), the same number on both
sides, so that a sample lasts a good fraction of a second. Rounds interleave
qmec and lightning so both see the same machine load. Lightning is driven through its own C++ state-vector
binding (StateVectorC128), one Python call per gate: the thinnest path
PennyLane itself uses (it also loops over the ops in Python).

Reports ns per gate-amplitude = time / (gates x 2^n x passes), on-CPU time of
the simulating thread and wall-clock time, the median over the rounds, for
qmec fused (Circuit::run), qmec op by op (Circuit::run_unfused) and lightning,
and checks that all of them end in the same state (probabilities of |0...0>
and |1...1> within 1e-9). --before BINARY adds a kernel_bench built from an
older commit (its op-by-op line, which on a commit without fusion is what
Circuit::run did) as "qmec before".
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from importlib.metadata import version

import numpy as np
from pennylane_lightning.lightning_qubit_ops import StateVectorC128


def lightning_gates(sv, n, layers):
    """The bound calls of Circuit::layered(n, layers); qmec qubit q is wire n-1-q."""
    calls = []
    p = 0
    for _ in range(layers):
        for q in range(n):
            w = [n - 1 - q]
            for gate in (sv.RX, sv.RY, sv.RZ):
                calls.append((gate, w, [float(np.cos(p * 0.37))]))
                p += 1
        for q in range(1, n):
            calls.append((sv.CZ, [n - q, n - 1 - q], []))
    return calls


def lightning_sample(n, layers, passes):
    sv = StateVectorC128(n)
    calls = lightning_gates(sv, n, layers)
    sv.resetStateVector()
    cpu_start, wall_start = time.thread_time(), time.perf_counter()
    for _ in range(passes):
        for gate, wires, params in calls:
            gate(wires, False, params)
    cpu, wall = time.thread_time() - cpu_start, time.perf_counter() - wall_start
    state = np.zeros(2**n, dtype=np.complex128)
    sv.getState(state)
    gate_amps = len(calls) * 2**n * passes
    return wall * 1e9 / gate_amps, cpu * 1e9 / gate_amps, abs(state[0]) ** 2, abs(state[-1]) ** 2


def qmec_sample(binary, n, layers, passes):
    out = subprocess.run(
        [binary, str(n), str(layers), str(passes)], check=True, capture_output=True, text=True
    ).stdout
    rows = {}
    for line in out.splitlines():
        name, qubits, *values = line.split()
        if int(qubits) != n:
            sys.exit(f"kernel.py: qmec answered for {qubits} qubits, asked {n}")
        rows[name] = tuple(float(v) for v in values)
    return rows


def check_same_state(n, samples):
    ref_name, (_, _, p0, plast) = next(iter(samples.items()))
    for name, (_, _, q0, qlast) in samples.items():
        if abs(q0 - p0) > 1e-9 or abs(qlast - plast) > 1e-9:
            sys.exit(
                f"kernel.py: {name} and {ref_name} disagree at {n} qubits: "
                f"P(0...0) {q0} vs {p0}, P(1...1) {qlast} vs {plast}"
            )


def table(title, sizes, names, medians):
    print(f"\nmedian ns per gate-amplitude, {title} (forward pass, one thread):")
    print("| qubits | " + " | ".join(names) + " | lightning / qmec-fused |")
    print("| --- " * (len(names) + 2) + "|")
    for n in sizes:
        row = [medians[(name, n)] for name in names]
        ratio = medians[("lightning", n)] / medians[("qmec-fused", n)]
        print(f"| {n} | " + " | ".join(f"{v:.3f}" for v in row) + f" | {ratio:.2f}x |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--before", help="a kernel_bench built from an older commit")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--qubits", default="16,18,20,22")
    args = ap.parse_args()
    sizes = [int(q) for q in args.qubits.split(",")]
    names = (["qmec-before"] if args.before else []) + ["qmec-fused", "qmec-unfused", "lightning"]
    samples_of = {(name, n): [] for name in names for n in sizes}
    print(
        f"pennylane-lightning {version('pennylane-lightning')}; {args.layers} layers; "
        f"{args.rounds} interleaved rounds; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; "
        f"load average at start {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    for r in range(args.rounds):
        for n in sizes:
            passes = max(1, 2 ** (22 - n))
            samples = {}
            if args.before:
                samples["qmec-before"] = qmec_sample(args.before, n, args.layers, passes)["qmec-unfused"]
            samples.update(qmec_sample(args.binary, n, args.layers, passes))
            samples["lightning"] = lightning_sample(n, args.layers, passes)
            check_same_state(n, samples)
            for name in names:
                samples_of[(name, n)].append(samples[name])
            line = "  ".join(f"{name} {samples[name][1]:.3f}" for name in names)
            print(f"round {r + 1}, {n} qubits, on-CPU: {line} ns/gate-amp", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f} (2 cores shared with other work)")
    for title, column in (("on-CPU time", 1), ("wall clock", 0)):
        medians = {key: statistics.median(s[column] for s in v) for key, v in samples_of.items()}
        table(title, sizes, names, medians)


if __name__ == "__main__":
    main()
