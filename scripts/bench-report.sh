#!/usr/bin/env bash
# Runs the benchmark suite (ours vs the reference ikcp.c, same process) and
# writes BENCHMARKS.md and docs/window_scaling.png. A few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

# Our C ABI, for the capi_overhead group (dlopen'ed from target/release).
cargo build --release -p ikcp --lib
# Only the bench package is selected, so the `capi` feature stays off there.
cargo bench -p ikcp-bench --bench engine -- --noplot
cargo bench -p ikcp-bench --bench memory | tee target/bench-memory.txt

python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet matplotlib
python3 scripts/bench-report.py target/criterion target/bench-memory.txt
