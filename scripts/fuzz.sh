#!/usr/bin/env bash
# Runs one fuzz target under libFuzzer for a given time, on stable Rust.
#
#   scripts/fuzz.sh TARGET SECONDS [JOBS]     e.g. scripts/fuzz.sh engine 600
#   scripts/fuzz.sh list                      the targets
#
# Targets: engine, codec, routing (crate fuzz/) and capi (crate fuzz/capi:
# our C ABI against upstream ikcp.c; our libkcp.so is built with the same
# coverage instrumentation and the reference with clang's, when clang is
# installed). The libFuzzer runtime comes
# from the libfuzzer-sys crate (built with the system C++ compiler); coverage
# instrumentation uses rustc's stable -C passes=sancov-module, so no nightly.
#
# Prints the executions, the corpus size and the findings. Findings
# (crash-*, timeout-*, oom-*) are written to target/fuzz/artifacts/TARGET/;
# replay one with
#   FUZZ_TARGET=TARGET FUZZ_REPLAY=FILE cargo test --release -p ikcp-fuzz --test replay replay_one
#   FUZZ_REPLAY=FILE cargo test --release -p ikcp-fuzz-capi --test replay replay_one   (capi)
# The growing corpus is kept in
# target/fuzz/corpus/TARGET, seeded from the committed fuzz/corpus/TARGET.
# Runs at the lowest CPU priority. Exit status 1 when anything was found.
set -euo pipefail
cd "$(dirname "$0")/.."

crate_of() {
    case "$1" in
        engine|codec|routing) echo "ikcp-fuzz fuzz" ;;
        capi) echo "ikcp-fuzz-capi fuzz/capi" ;;
        *) return 1 ;;
    esac
}

if [ "${1:-}" = list ]; then
    echo "engine codec routing capi"
    exit 0
fi
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS [JOBS]}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS [JOBS]}
jobs=${3:-1}
read -r package dir < <(crate_of "$target") || { echo "unknown target $target (try: list)" >&2; exit 2; }

host=$(rustc -vV | sed -n 's/^host: //p')
out=$PWD/target/fuzz
# --target keeps the instrumentation out of build scripts; --cfg fuzzing is
# what libfuzzer-sys and cargo-fuzz users expect.
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions"
if [ "$target" = capi ]; then
    # The fuzzer exports its coverage callbacks to the libkcp.so it dlopens,
    # which is instrumented like the fuzzer itself.
    export RUSTFLAGS="$RUSTFLAGS -Clink-arg=-Wl,--export-dynamic"
    if command -v clang >/dev/null; then
        export CC=clang CFLAGS="-fwrapv -fsanitize-coverage=inline-8bit-counters,pc-table,trace-cmp"
    fi
    nice -n 19 cargo build --release --quiet -p ikcp --lib --no-default-features --features capi \
        --target "$host" --target-dir "$out/build"
    export IKCP_OURS_LIB=$out/build/$host/release/libkcp.so
fi
nice -n 19 cargo build --release --quiet -p "$package" --features libfuzzer --bin "$target" \
    --target "$host" --target-dir "$out/build"
bin=$out/build/$host/release/$target

corpus=$out/corpus/$target
artifacts=$out/artifacts/$target
mkdir -p "$corpus" "$artifacts"
cp -n "$dir/corpus/$target"/* "$corpus"/ 2>/dev/null || true
log=$out/$target.log
before=$(ls "$artifacts" | wc -l)

echo "fuzz $target: ${seconds}s, $jobs job(s), corpus $corpus, log $log"
set +e
nice -n 19 "$bin" "$corpus" -max_total_time="$seconds" -artifact_prefix="$artifacts/" \
    -max_len=8192 -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    $([ "$jobs" -gt 1 ] && echo "-jobs=$jobs -workers=$jobs") >"$log" 2>&1
status=$?
set -e
# With -jobs, each job logs to fuzz-N.log in the working directory.
if [ "$jobs" -gt 1 ]; then
    cat fuzz-*.log >>"$log" 2>/dev/null || true
    rm -f fuzz-*.log
fi

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | awk '{s+=$1} END {print s+0}')
found=$(( $(ls "$artifacts" | wc -l) - before ))
echo "fuzz $target: $execs executions in ${seconds}s, corpus $(ls "$corpus" | wc -l) inputs, $found new finding(s) (exit $status)"
if [ "$found" -gt 0 ] || grep -q -E "^==[0-9]+== ERROR|panicked at" "$log"; then
    grep -m 5 -E "panicked at|ERROR:|SUMMARY" "$log" || true
    ls -t "$artifacts" | head -n 5 | sed "s|^|  $artifacts/|"
    exit 1
fi
