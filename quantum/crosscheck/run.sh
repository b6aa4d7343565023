#!/usr/bin/env bash
# Cross-check qmec-quantum against PennyLane, and qmec-qnn's OpenQASM 3
# exports against Qiskit.
#
#   quantum/crosscheck/run.sh          # circuits: states, expectations, Jacobians, VJPs; exports
#   quantum/crosscheck/run.sh --bench  # also time PennyLane lightning.qubit (adjoint)
#
# Creates (or reuses) a virtualenv with pennylane, pennylane-lightning,
# qiskit and qiskit-qasm3-import at $QMEC_VENV (default:
# ~/.cache/qmec/venv-pennylane, kept between runs so CI installs it once),
# dumps qmec's results with the dump_circuits and dump_qasm examples and
# compares them in Python. Exits non-zero on any mismatch.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
manifest=${QMEC_MANIFEST:-$root/Cargo.toml}
# shellcheck source=venv.sh
. "$here/venv.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The test suite's own profile: CI builds one profile only.
profile=${QMEC_CARGO_PROFILE:-dev}
cargo run --quiet --profile "$profile" --manifest-path "$manifest" -p qmec-quantum --example dump_circuits -- "$work/circuits.json"
"$venv/bin/python" "$here/crosscheck.py" "$work/circuits.json"
cargo run --quiet --profile "$profile" --manifest-path "$manifest" -p qmec-qnn --example dump_qasm -- "$work/qasm.json"
"$venv/bin/python" "$here/qasm_check.py" "$work/qasm.json"

if [ "${1:-}" = "--bench" ]; then
    "$venv/bin/python" "$here/bench_pennylane.py"
fi
