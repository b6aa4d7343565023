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
# Every example of the workspace, as the test build builds them (so after
# it nothing compiles): `cargo run -p` of one package would resolve the
# dependencies' features for that package alone and compile them again,
# minutes on a 2-core machine.
cargo build --quiet --profile "$profile" --manifest-path "$manifest" --workspace --examples
target=$(cargo metadata --format-version 1 --no-deps --manifest-path "$manifest" |
    "$venv/bin/python" -c "import json, sys; print(json.load(sys.stdin)['target_directory'])")
examples="$target/$([ "$profile" = dev ] && echo debug || echo "$profile")/examples"
"$examples/dump_circuits" "$work/circuits.json"
"$venv/bin/python" "$here/crosscheck.py" "$work/circuits.json"
"$examples/dump_qasm" "$work/qasm.json"
"$venv/bin/python" "$here/qasm_check.py" "$work/qasm.json"

if [ "${1:-}" = "--bench" ]; then
    "$venv/bin/python" "$here/bench_pennylane.py"
fi
