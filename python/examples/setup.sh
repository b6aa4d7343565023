#!/usr/bin/env bash
# Installs what the example policy service (python/examples/policy_service.py)
# needs into a cached virtualenv, as deploy/check/setup.sh installs its
# validators: grpcio, grpcio-tools (which brings protobuf, and generates the
# service's stubs from proto/proto/qmec_policy.proto at start-up) and numpy,
# at $QMEC_POLICY_VENV (default ~/.cache/qmec/venv-policy-service, kept
# between runs so CI installs it once). cli/tests/integration/external_policy.rs runs the
# real testbed against the service from this venv.
#
#   python/examples/setup.sh   # then: cargo nextest run -p qmec-cli -E 'test(/^external_policy::/)'
set -euo pipefail

venv=${QMEC_POLICY_VENV:-$HOME/.cache/qmec/venv-policy-service}
grpc_version=1.85.1
numpy_version=2.4.6

if [ ! -x "$venv/bin/python" ]; then
    echo "creating virtualenv $venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
fi
want="grpcio==$grpc_version grpcio-tools==$grpc_version numpy==$numpy_version"
have=$("$venv/bin/python" - <<'PY' 2>/dev/null || true
from importlib.metadata import version
print(f"grpcio=={version('grpcio')} grpcio-tools=={version('grpcio-tools')} numpy=={version('numpy')}")
PY
)
if [ "$have" != "$want" ]; then
    echo "installing into $venv (first use only; cached afterwards):"
    echo "  $want"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --progress-bar off $want
fi
