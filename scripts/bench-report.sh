#!/usr/bin/env bash
# Runs the engine benchmark suite (ours vs the reference ikcp.c in one
# process) and writes BENCHMARKS.md and doc/window_scaling.png. A few
# minutes on 2 cores. The async layer's section of BENCHMARKS.md comes from
# scripts/bench-async.sh (process to process) and is kept as it is here.
set -euo pipefail
cd "$(dirname "$0")/.."

# valgrind (instruction counts) comes from the project's own install script.
bash scripts/install-test-deps.sh

# Our C ABI, for the window_scaling and capi_overhead groups (dlopen'ed from
# target/release).
cargo build --release -p ikcp --lib
# The report reads every result under target/criterion; start empty so that
# a line this run skipped (no libkcp.so) or no longer has is not reported
# from an earlier run.
rm -rf target/criterion
# Only the bench package is selected, so the `capi` feature stays off there.
cargo bench -p ikcp-bench --profile bench-noabi --bench engine -- --noplot
cargo bench -p ikcp-bench --profile bench-noabi --bench memory | tee target/bench-memory.txt

# Instructions executed for one transfer, counted by cachegrind: unlike time,
# the same on every run of the same binary.
cargo build --profile bench-noabi -p ikcp-bench --example profile_transfer
: > target/bench-instructions.txt
for workload in "128 20 0 1 1024" "4096 20 2 1 1024" "1024 1 0 1 64"; do
    for who in ours capi reference; do
        # shellcheck disable=SC2086
        refs=$(valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
            target/bench-noabi/examples/profile_transfer "$who" $workload 2>&1 |
            sed -n 's/.*I *refs: *//p' | tr -d ,)
        echo "instructions $who ${workload// /_} $refs" | tee -a target/bench-instructions.txt
    done
done

python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet matplotlib
python3 scripts/bench-report.py target/criterion target/bench-memory.txt \
    target/bench-instructions.txt
