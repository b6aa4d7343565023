#!/usr/bin/env bash
# Installs the offline validators of the deployment files into a cached
# virtualenv, as quantum/crosscheck/run.sh installs its Python packages:
# kubernetes-validate (schemas of every Kubernetes release bundled, no
# cluster needed) at $QMEC_DEPLOY_CHECK_VENV (default
# ~/.cache/qmec/venv-deploy-check, kept between runs so CI installs it once).
# cli/tests/integration/deploy_files.rs runs the validators on every generated file.
#
#   deploy/check/setup.sh     # then: cargo nextest run -p qmec-cli -E 'test(/^deploy_files::/)'
set -euo pipefail

venv=${QMEC_DEPLOY_CHECK_VENV:-$HOME/.cache/qmec/venv-deploy-check}
version=${QMEC_KUBERNETES_VALIDATE_VERSION:-1.37.0}

if [ ! -x "$venv/bin/python" ]; then
    echo "creating virtualenv $venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
fi
if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -qx "$version"; then
    echo "installing into $venv (first use only; cached afterwards):"
    echo "  kubernetes-validate==$version"
    "$venv/bin/pip" install --progress-bar on "kubernetes-validate==$version"
fi
