#!/usr/bin/env bash
# The whole test suite: every Rust test in the workspace, then the
# cross-checks against peers written elsewhere (PennyLane), which install
# their Python packages into cached virtual environments on first use.
set -euo pipefail
cd "$(dirname "$0")"

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
else
    cargo test --workspace --no-fail-fast
fi

quantum/crosscheck/run.sh

# Bounded fuzzing of scenario parsing and wire-message validation.
./fuzz.sh
