#!/usr/bin/env bash
# Installs what the Python package's build and tests need into a cached
# virtualenv, as deploy/check/setup.sh installs its validators: maturin,
# gymnasium, numpy and pytest at $QMEC_PYTHON_VENV (default
# ~/.cache/qmec/venv-python, kept between runs so CI installs it once).
# python/check.sh calls it; test.sh runs it in the background while the
# Rust tests build.
#
#   python/setup.sh            # then: python/check.sh
set -euo pipefail

venv=${QMEC_PYTHON_VENV:-$HOME/.cache/qmec/venv-python}
packages=("maturin==${QMEC_MATURIN_VERSION:-1.16.0}" "gymnasium==${QMEC_GYMNASIUM_VERSION:-1.4.0}"
    "numpy==${QMEC_NUMPY_VERSION:-2.4.6}" "pytest==${QMEC_PYTEST_VERSION:-9.2.0}")

if [ ! -x "$venv/bin/python" ]; then
    echo "creating virtualenv $venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import maturin, gymnasium, numpy, pytest" 2>/dev/null; then
    echo "installing into $venv (first use only; cached afterwards):"
    printf '  %s\n' "${packages[@]}"
    "$venv/bin/pip" install --progress-bar on "${packages[@]}"
fi
