#!/usr/bin/env bash
# Cross-check qmec-quantum against PennyLane.
#
#   quantum/crosscheck/run.sh          # circuits: states, expectations, Jacobians, VJPs
#   quantum/crosscheck/run.sh --bench  # also time PennyLane lightning.qubit (adjoint)
#
# Creates (or reuses) a virtualenv with pennylane and pennylane-lightning at
# $QMEC_VENV (default: ~/.cache/qmec/venv-pennylane, kept between runs so CI
# installs it once), dumps qmec's
# results with the dump_circuits example and compares them in Python.
# Exits non-zero on any mismatch.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${QMEC_VENV:-$HOME/.cache/qmec/venv-pennylane}
manifest=${QMEC_MANIFEST:-$root/Cargo.toml}
pennylane_version=${QMEC_PENNYLANE_VERSION:-0.45.1}
lightning_version=${QMEC_LIGHTNING_VERSION:-0.45.0}

if [ ! -x "$venv/bin/python" ]; then
    echo "creating virtualenv $venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import pennylane, pennylane_lightning" 2>/dev/null; then
    echo "installing pennylane==$pennylane_version pennylane-lightning==$lightning_version into $venv"
    "$venv/bin/pip" install --quiet "pennylane==$pennylane_version" "pennylane-lightning==$lightning_version"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The test suite's own profile: CI builds one profile only.
cargo run --quiet --profile "${QMEC_CARGO_PROFILE:-dev}" --manifest-path "$manifest" -p qmec-quantum --example dump_circuits -- "$work/circuits.json"
"$venv/bin/python" "$here/crosscheck.py" "$work/circuits.json"

if [ "${1:-}" = "--bench" ]; then
    "$venv/bin/python" "$here/bench_pennylane.py"
fi
