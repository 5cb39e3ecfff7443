#!/usr/bin/env bash
# The C ABI against the reference ikcp.c as a C program sees them: one C
# source (benches/c/capi_link.c: two endpoints over an in-memory link with
# 5 ms latency, fast mode, 8 KB messages, every byte checked) built twice,
# against the reference's ikcp.c and against our libkcp.so, run alternately.
#
#   bash scripts/bench-capi.sh [ROUNDS]          CPU time, median of ROUNDS (5)
#   CALLGRIND=1 bash scripts/bench-capi.sh       instructions instead (valgrind)
#
# Prints one line per workload: ours, reference, reference / ours, and each
# side's cost per delivered segment. Instruction counts are the same on every
# run of the same binaries (useful on a loaded machine); CPU time is what a
# program pays, cache misses included.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
out=target/bench-capi
mkdir -p "$out"

cargo build --release -p ikcp --lib
# The reference's ikcp.c comes with the kcp-io crate the benchmarks use.
cargo fetch --quiet
refdir=$(cargo metadata --format-version 1 | python3 -c '
import json, os, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "kcp-io":
        print(os.path.join(os.path.dirname(p["manifest_path"]), "kcp"))
        break
')
cc=${CC:-cc}
"$cc" -O2 -g -I"$refdir" -o "$out/link_reference" benches/c/capi_link.c "$refdir/ikcp.c"
# The library's soname is libkcp.so.1; the loader finds it next to the program.
ln -sf "$PWD/target/release/libkcp.so" "$out/libkcp.so.1"
"$cc" -O2 -g -Iinclude -o "$out/link_ours" benches/c/capi_link.c \
    "$out/libkcp.so.1" -Wl,-rpath,'$ORIGIN'

# window loss% megabytes
# (WORKLOADS="32768 1 64;128 0 32" runs just those.)
workloads=("128 0 32" "128 2 32" "1024 0 32" "1024 2 32" "4096 0 32" "4096 2 32"
    "16384 1 64" "32768 1 64")
if [ -n "${WORKLOADS:-}" ]; then
    IFS=';' read -r -a workloads <<<"$WORKLOADS"
fi

measure() { # who window loss mb -> seconds (CPU) or instructions
    local who=$1 w=$2 l=$3 mb=$4
    if [ "${CALLGRIND:-0}" = 1 ]; then
        valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.$who.$w.$l" \
            "$out/link_$who" "$w" "$l" "$mb" 2>&1 >/dev/null |
            sed -n 's/.*Collected : *//p'
    else
        "$out/link_$who" "$w" "$l" "$mb" | sed -n 's/.*cpu \([0-9.]*\) s.*/\1/p'
    fi
}

printf '%-14s %12s %12s %8s %14s %14s\n' workload ours reference ratio \
    "ours/segment" "ref/segment"
for wl in "${workloads[@]}"; do
    read -r w l mb <<<"$wl"
    ours=() ref=()
    n=$rounds
    [ "${CALLGRIND:-0}" = 1 ] && n=1
    for _ in $(seq "$n"); do
        ref+=("$(measure reference "$w" "$l" "$mb")")
        ours+=("$(measure ours "$w" "$l" "$mb")")
    done
    python3 - "$w" "$l" "$mb" "${CALLGRIND:-0}" "${ours[*]}" "${ref[*]}" <<'PY'
import statistics, sys
w, l, mb, counting = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
ours = statistics.median(float(x) for x in sys.argv[5].split())
ref = statistics.median(float(x) for x in sys.argv[6].split())
segments = mb * 1024 * 1024 / 1376  # payload bytes per full segment at MTU 1400
unit, scale = ("instr", 1) if counting else ("ns", 1e9)
def per(x): return f"{x * scale / segments:.0f} {unit}"
print(f"{'wnd ' + w + ' ' + l + '%':<14} {ours:>12.6g} {ref:>12.6g} {ref / ours:>8.2f} {per(ours):>14} {per(ref):>14}")
PY
done
