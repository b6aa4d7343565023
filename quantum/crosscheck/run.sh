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
venv=${QMEC_VENV:-$HOME/.cache/qmec/venv-pennylane}
manifest=${QMEC_MANIFEST:-$root/Cargo.toml}
pennylane_version=${QMEC_PENNYLANE_VERSION:-0.45.1}
lightning_version=${QMEC_LIGHTNING_VERSION:-0.45.0}
qiskit_version=${QMEC_QISKIT_VERSION:-2.6.2}
qasm3_import_version=${QMEC_QASM3_IMPORT_VERSION:-0.6.0}

if [ ! -x "$venv/bin/python" ]; then
    echo "creating virtualenv $venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
fi
packages=("pennylane==$pennylane_version" "pennylane-lightning==$lightning_version"
    "qiskit==$qiskit_version" "qiskit-qasm3-import==$qasm3_import_version")
if ! "$venv/bin/python" -c "import pennylane, pennylane_lightning, qiskit, qiskit_qasm3_import" 2>/dev/null; then
    # First use only (the venv is cached): a few hundred MB, minutes on a
    # slow link, so pip's own progress is shown (bars on a terminal, one
    # line per package otherwise).
    echo "installing into $venv (first use only; cached afterwards):"
    printf '  %s\n' "${packages[@]}"
    "$venv/bin/pip" install --progress-bar on "${packages[@]}"
fi

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
