# Sourced by run.sh and ../bench/kernel.sh: creates (or reuses) the
# virtualenv with pennylane, pennylane-lightning, qiskit and
# qiskit-qasm3-import at $QMEC_VENV (default ~/.cache/qmec/venv-pennylane,
# kept between runs so CI installs it once) and leaves its path in $venv.
venv=${QMEC_VENV:-$HOME/.cache/qmec/venv-pennylane}
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

