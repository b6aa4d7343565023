#!/usr/bin/env bash
# Bounded fuzzing of every fuzz target (cargo fuzz, libFuzzer, no sanitizer
# so the stable toolchain suffices). Each target runs for FUZZ_SECONDS
# (default 20) from its seed inputs, built in the dev profile (a fraction of
# the release build time, which dominates a short run); any crash fails the script and leaves
# the input under <crate>/fuzz/artifacts/. `--install-only` installs
# cargo-fuzz when it is missing and stops (test.sh does it beside the build).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-20}
# One target folder for every fuzz crate, so that the crates they share
# are built once; line tables suffice for a crash's backtrace.
target_dir="$PWD/target/fuzz"
export CARGO_PROFILE_DEV_DEBUG=line-tables-only

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (first use only: cargo install, about a minute)"
    cargo install cargo-fuzz --locked --quiet
fi
[ "${1:-}" = --install-only ] && exit 0

for fuzz_dir in */fuzz; do
    crate=$(dirname "$fuzz_dir")
    for target_file in "$fuzz_dir"/fuzz_targets/*.rs; do
        target=$(basename "$target_file" .rs)
        corpus="$fuzz_dir/corpus/$target"
        mkdir -p "$corpus"
        seeds=()
        [ -d "$fuzz_dir/seeds/$target" ] && seeds=("$fuzz_dir/seeds/$target")
        echo "fuzzing $crate/$target for ${seconds}s"
        (cd "$crate" && cargo fuzz run --dev -s none --target-dir "$target_dir" "$target" "fuzz/corpus/$target" "${seeds[@]/#$crate\//}" -- \
            -max_total_time="$seconds" -print_final_stats=1 2>&1 | tail -n 3)
    done
done
