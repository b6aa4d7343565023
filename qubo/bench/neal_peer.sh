#!/usr/bin/env bash
# The dwave-neal peer for qmec's QUBO solvers: the same instances, solved by
# neal's SimulatedAnnealingSampler (100 reads, its default schedule), timed
# and printed next to qmec's SA and SB.
#
#   qubo/bench/neal_peer.sh [SIZES] [SEED]     e.g. neal_peer.sh 5x4,20x5,100x10 1
#
# The virtual environment lives at $QMEC_VENV (default
# $HOME/.cache/qmec/venv-qubo) and is created on first use with dimod and
# dwave-neal from PyPI. qmec's side runs as a release-mode bench target.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
sizes="${1:-3x3,4x4,5x4,20x5,40x5,100x5,100x10}"
seed="${2:-1}"
venv="${QMEC_VENV:-$HOME/.cache/qmec/venv-qubo}"
out="${QMEC_NEAL_OUT:-$root/target/qubo-neal}"

if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv (dimod, dwave-neal from PyPI)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet dimod dwave-neal
fi

rm -rf "$out" && mkdir -p "$out"
# The ladder bench target prints what `qmec qubo --bench` prints, without
# building the whole CLI.
(cd "$root" && cargo bench --quiet -p qmec-qubo --bench ladder -- "$sizes" "$seed" "$out" exact,exact-onehot,greedy,sa,sb) >&2
"$venv/bin/python" "$here/neal_peer.py" "$out"
