#!/usr/bin/env bash
# The whole test suite, in phases that each say what they do: the tools the
# tests call (installed on first use and cached), every Rust test in the
# workspace, the Python package's tests, the cross-checks against peers
# written elsewhere (PennyLane, Qiskit) and bounded fuzzing. It ends with one verdict line that counts
# what ran.
set -euo pipefail
cd "$(dirname "$0")"
started=$SECONDS

# A clean CI build is never rebuilt, so incremental state (over a GiB)
# would only take disk.
if [ "${CI:-}" = true ]; then
    export CARGO_INCREMENTAL=0
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
current="starting"
trap 'echo; echo "test.sh: FAILED in phase $current after $((SECONDS - started)) s (the output above says what)"' ERR

phase() {
    current="$1/5 ($2)"
    echo
    echo "== test.sh [$1/5] $2"
}

phase 1 "tools the tests call: kubernetes-validate and the example policy service's grpcio/numpy (cached venvs), promtool"
# The validators cli/tests/deploy_files.rs runs on every generated
# Kubernetes manifest (docker-compose comes with the machine).
deploy/check/setup.sh
# The example external policy service (python/examples/policy_service.py)
# that cli/tests/external_policy.rs runs the real testbed against.
echo "policy service venv: grpcio, grpcio-tools, numpy (python/examples/setup.sh)"
python/examples/setup.sh
# promtool lints every role's metrics page (deploy/tests/metrics_lint.rs).
if ! command -v promtool >/dev/null 2>&1; then
    echo "installing promtool (Debian prometheus)"
    apt-get update -qq >/dev/null
    apt-get install -y -qq prometheus >/dev/null
fi

phase 2 "every Rust test in the workspace (builds the test profile first)"
rust_log="$logs/rust"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast 2>&1 | tee "$rust_log"
    rust_tests=$(grep -Eo '[0-9]+ tests? run' "$rust_log" | tail -1 | grep -Eo '^[0-9]+')
else
    cargo test --workspace --no-fail-fast 2>&1 | tee "$rust_log"
    rust_tests=$(grep -Eo '[0-9]+ passed' "$rust_log" | awk '{s += $1} END {print s}')
fi

phase 3 "the Python package qmec: wheel built with maturin, pytest (venv cached under ~/.cache/qmec)"
python_log="$logs/python"
python_started=$SECONDS
# The wheel is built in the dev profile the Rust tests just built, so only
# PyO3 and the bindings compile here; pytest compares qmec.simulate with the
# qmec binary those tests built.
python/check.sh 2>&1 | tee "$python_log"
python_tests=$(grep -Eo '^[0-9]+ passed' "$python_log" | tail -1 | grep -Eo '^[0-9]+')
echo "Python phase: $((SECONDS - python_started)) s"

phase 4 "cross-checks against PennyLane and Qiskit (venv cached under ~/.cache/qmec)"
cross_log="$logs/cross"
quantum/crosscheck/run.sh 2>&1 | tee "$cross_log"
cross_checks=$(grep -Eo '^[0-9]+ passed, 0 failed' "$cross_log" | awk '{s += $1} END {print s}')

phase 5 "bounded fuzzing of scenario parsing and wire-message validation"
fuzz_targets=$(ls */fuzz/fuzz_targets/*.rs | wc -l)
./fuzz.sh

elapsed=$((SECONDS - started))
echo
echo "test.sh: PASSED: ${rust_tests:-?} Rust tests, ${python_tests:-?} Python tests, ${cross_checks:-?} cross-checks, $fuzz_targets fuzz targets (${FUZZ_SECONDS:-20} s each) in $((elapsed / 60)) min $((elapsed % 60)) s"
