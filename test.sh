#!/usr/bin/env bash
# The whole test suite: every Rust test in the workspace, then the
# cross-checks against peers written elsewhere (PennyLane, Qiskit), which install
# their Python packages into cached virtual environments on first use.
set -euo pipefail
cd "$(dirname "$0")"

# A clean CI build is never rebuilt, so incremental state (over a GiB)
# would only take disk.
if [ "${CI:-}" = true ]; then
    export CARGO_INCREMENTAL=0
fi

# The validators cli/tests/deploy_files.rs runs on every generated
# Kubernetes manifest (docker-compose comes with the machine).
deploy/check/setup.sh

# promtool lints every role's metrics page (deploy/tests/metrics_lint.rs).
if ! command -v promtool >/dev/null 2>&1; then
    echo "installing promtool (Debian prometheus)"
    apt-get update -qq >/dev/null
    apt-get install -y -qq prometheus >/dev/null
fi

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
else
    cargo test --workspace --no-fail-fast
fi

quantum/crosscheck/run.sh

# Bounded fuzzing of scenario parsing and wire-message validation.
./fuzz.sh
