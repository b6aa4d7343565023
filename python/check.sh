#!/usr/bin/env bash
# Builds the Python package qmec (python/) into an abi3 wheel with maturin,
# installs it into a virtualenv and runs its tests (pytest, python/tests/).
#
#   python/check.sh            # wheel in the test suite's profile (dev), pytest
#   python/check.sh --bench    # also the steps/s benchmark (python/bench/steps.py)
#
# The virtualenv (maturin, gymnasium, numpy, pytest) is python/setup.sh's,
# at $QMEC_PYTHON_VENV (default: ~/.cache/qmec/venv-python), kept between
# runs so CI installs it once. The simulate tests compare with the `qmec`
# binary at $QMEC_BIN (default: the workspace's target/debug/qmec, which the
# Rust tests build).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
venv=${QMEC_PYTHON_VENV:-$HOME/.cache/qmec/venv-python}
# The test suite's own profile: CI builds one profile only, and the
# numeric crates are optimised in it (see [profile.dev.package.*]).
profile=${QMEC_CARGO_PROFILE:-dev}
export QMEC_BIN=${QMEC_BIN:-$root/target/debug/qmec}

QMEC_PYTHON_VENV=$venv "$here/setup.sh"

wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
started=$SECONDS
echo "building the wheel (maturin, cargo profile $profile)"
"$venv/bin/maturin" build --profile "$profile" --manifest-path "$here/Cargo.toml" --out "$wheels"
"$venv/bin/pip" install --quiet --force-reinstall --no-deps "$wheels"/qmec-*.whl
echo "wheel built and installed in $((SECONDS - started)) s"

# From the repository root, so `import qmec` finds the installed package,
# not the source folder python/qmec (which lacks the compiled module).
cd "$root"
"$venv/bin/pytest" -q -p no:cacheprovider "$here/tests"

if [ "${1:-}" = "--bench" ]; then
    "$venv/bin/python" "$here/bench/steps.py"
fi
