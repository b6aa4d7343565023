#!/usr/bin/env bash
# The whole test suite, in phases that each say what they do: the tools the
# tests call (installed on first use and cached, in the background while
# the Rust tests build), the build, every Rust test in the workspace, the
# Python package's tests, the cross-checks against peers written elsewhere
# (PennyLane, Qiskit) and bounded fuzzing. It ends with one verdict line
# that counts what ran.
set -euo pipefail
cd "$(dirname "$0")"
started=$SECONDS

# A clean CI build is never rebuilt, so incremental state (over a GiB)
# would only take disk.
if [ "${CI:-}" = true ]; then
    export CARGO_INCREMENTAL=0
fi

logs=$(mktemp -d)
installs=()
cleanup() {
    # An install still running when a phase failed is not waited for.
    for name in "${installs[@]}"; do
        kill "$(cat "$logs/$name.pid")" 2>/dev/null || true
    done
    rm -rf "$logs"
}
trap cleanup EXIT
current="starting"
trap 'echo; echo "test.sh: FAILED in phase $current after $((SECONDS - started)) s (the output above says what)"' ERR

phase() {
    current="$1/6 ($2)"
    echo
    echo "== test.sh [$1/6] $2"
}

# Runs an installer in the background, its output kept for when it is
# waited for: the installs download and unpack (a few hundred MB on a fresh
# machine) while the compiler has the CPUs.
install_in_background() {
    local name=$1
    shift
    installs+=("$name")
    echo "  $name: $*"
    (
        begun=$SECONDS
        if "$@" >"$logs/$name.log" 2>&1; then rc=0; else rc=$?; fi
        echo "$rc $((SECONDS - begun))" >"$logs/$name.done"
    ) &
    echo $! >"$logs/$name.pid"
}

# Waits for every background install and says how each went; shows the
# whole output of one that failed.
finish_installs() {
    local name rc seconds
    for name in "${installs[@]}"; do
        if [ ! -f "$logs/$name.done" ]; then
            echo "  waiting for $name: $(tail -n 1 "$logs/$name.log" 2>/dev/null | cut -c1-100)"
        fi
        wait "$(cat "$logs/$name.pid")" || true
        read -r rc seconds <"$logs/$name.done" || { rc=1; seconds=?; }
        if [ "$rc" != 0 ]; then
            echo "  $name: FAILED (exit $rc after $seconds s); its output:"
            sed 's/^/    /' "$logs/$name.log"
            return 1
        fi
        if grep -q '^installing' "$logs/$name.log"; then
            echo "  $name: installed in $seconds s (cached for later runs)"
        else
            echo "  $name: cached"
        fi
    done
}

install_promtool() {
    if command -v promtool >/dev/null 2>&1; then
        echo "promtool present"
        return
    fi
    echo "installing promtool (Debian prometheus)"
    apt-get update -qq
    apt-get install -y -qq prometheus
}

phase 1 "tools the tests call, installed in the background while Rust builds (venvs cached under ~/.cache/qmec)"
# The validators cli/tests/integration/deploy_files.rs runs on every generated
# Kubernetes manifest (docker-compose comes with the machine).
install_in_background kubernetes-validate deploy/check/setup.sh
# The example external policy service (python/examples/policy_service.py)
# that cli/tests/integration/external_policy.rs runs the real testbed against.
install_in_background policy-service-venv python/examples/setup.sh
# maturin, gymnasium, numpy and pytest for phase 4.
install_in_background python-package-venv python/setup.sh
# PennyLane and Qiskit for phase 5.
install_in_background pennylane-qiskit-venv bash -c '. quantum/crosscheck/venv.sh'
# promtool lints every role's metrics page (deploy/tests/integration/metrics_lint.rs).
install_in_background promtool install_promtool
# cargo-fuzz for phase 6: its own compile fills the cores the build leaves idle.
install_in_background cargo-fuzz ./fuzz.sh --install-only

phase 2 "building the test profile: every test binary and example of the workspace"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-run
else
    cargo test --workspace --no-run
fi

phase 3 "every Rust test in the workspace"
finish_installs
rust_log="$logs/rust"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast 2>&1 | tee "$rust_log"
    rust_tests=$(grep -Eo '[0-9]+ tests? run' "$rust_log" | tail -1 | grep -Eo '^[0-9]+')
else
    cargo test --workspace --no-fail-fast 2>&1 | tee "$rust_log"
    rust_tests=$(grep -Eo '[0-9]+ passed' "$rust_log" | awk '{s += $1} END {print s}')
fi

phase 4 "the Python package qmec: wheel built with maturin, pytest"
python_log="$logs/python"
python_started=$SECONDS
# The wheel is built in the dev profile the Rust tests just built; pytest
# compares qmec.simulate with the qmec binary those tests built.
python/check.sh 2>&1 | tee "$python_log"
python_tests=$(grep -Eo '^[0-9]+ passed' "$python_log" | tail -1 | grep -Eo '^[0-9]+')
echo "Python phase: $((SECONDS - python_started)) s"

phase 5 "cross-checks against PennyLane and Qiskit"
cross_log="$logs/cross"
quantum/crosscheck/run.sh 2>&1 | tee "$cross_log"
cross_checks=$(grep -Eo '^[0-9]+ passed, 0 failed' "$cross_log" | awk '{s += $1} END {print s}')

phase 6 "bounded fuzzing of scenario parsing and wire-message validation"
fuzz_targets=$(ls */fuzz/fuzz_targets/*.rs | wc -l)
./fuzz.sh

elapsed=$((SECONDS - started))
echo
echo "test.sh: PASSED: ${rust_tests:-?} Rust tests, ${python_tests:-?} Python tests, ${cross_checks:-?} cross-checks, $fuzz_targets fuzz targets (${FUZZ_SECONDS:-20} s each) in $((elapsed / 60)) min $((elapsed % 60)) s"
