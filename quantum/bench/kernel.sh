#!/usr/bin/env bash
# Kernel benchmark: qmec's statevector forward pass against PennyLane
# lightning.qubit, interleaved in one run, ns per gate·amplitude.
#
#   quantum/bench/kernel.sh [--rounds R] [--layers L] [--qubits 16,18,20,22]
#
# Builds the kernel_bench example in release, reuses the cross-check's cached
# virtualenv (installing it on first use, see ../crosscheck/venv.sh) and runs
# kernel.py, which alternates qmec and lightning rounds on the same circuits
# and prints the medians. Both run on one thread: OMP_NUM_THREADS=1 (lightning
# parallelises with OpenMP only), and qmec's forward pass is single-threaded.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../crosscheck/venv.sh
. "$root/quantum/crosscheck/venv.sh"

cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p qmec-quantum --example kernel_bench
target=$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
    "$venv/bin/python" -c "import json, sys; print(json.load(sys.stdin)['target_directory'])")
export OMP_NUM_THREADS=1
"$venv/bin/python" "$here/kernel.py" "$target/release/examples/kernel_bench" "$@"
