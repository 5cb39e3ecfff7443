#!/usr/bin/env bash
# Runs the benchmark suite (ours vs the reference ikcp.c in one process, and
# the async layer against tokio_kcp and TCP on loopback) and writes
# BENCHMARKS.md and docs/window_scaling.png. A few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

# valgrind (instruction counts) comes from the project's own install script.
bash scripts/install-test-deps.sh

# Our C ABI, for the capi_overhead group (dlopen'ed from target/release).
cargo build --release -p ikcp --lib
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

# kcp-go, the Go implementation, as a further peer of the async layer: built
# from Debian's packages when they can be installed, skipped otherwise.
if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/github.com/xtaci/kcp-go ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            golang-go golang-github-xtaci-kcp-dev >/dev/null || true
    fi
fi
rm -f target/kcpgo-bench
if command -v go >/dev/null 2>&1; then
    GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$PWD/target/go-cache" \
        go build -o target/kcpgo-bench benches/go/kcpgo_bench.go ||
        echo "kcp-go bench not built; the report leaves it out"
fi
cargo bench -p ikcp-bench --profile bench-noabi --bench async_loopback

python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet matplotlib
python3 scripts/bench-report.py target/criterion target/bench-memory.txt \
    target/bench-instructions.txt target/bench-async.json
