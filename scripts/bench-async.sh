#!/usr/bin/env bash
# Process-to-process benchmark of the async layer on 127.0.0.1: our
# KcpStream, kcp-go (plain mode), tokio_kcp and tokio TcpStream, plus the
# raw-UDP ceiling; each implementation in its own server and client
# processes, alternating, medians over the rounds. Writes the async section
# of BENCHMARKS.md (between the async markers) and target/bench-async.json.
#
#   bash scripts/bench-async.sh            3 rounds, 60 s soak (about 15 minutes)
#   bash scripts/bench-async.sh --quick    1 round, 10 s soak (about 2 minutes)
#   bash scripts/bench-async.sh --quick --only ours,kcp_go --no-write
#
# Other arguments go to scripts/bench-async.py (--rounds, --soak, --rtt,
# --bytes, --only, --no-write).
set -euo pipefail
cd "$(dirname "$0")/.."

args=(--rounds 3 --soak 60 --rtt 5000)
if [ "${1:-}" = "--quick" ]; then
    shift
    args=(--rounds 1 --soak 10 --rtt 2000)
fi

# kcp-go from Debian's packages (Go and its sources; no module download).
if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/github.com/xtaci/kcp-go ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            golang-go golang-github-xtaci-kcp-dev >/dev/null || true
    fi
fi
rm -f target/kcpgo-peer
if command -v go >/dev/null 2>&1; then
    GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$PWD/target/go-cache" \
        go build -o target/kcpgo-peer benches/go/kcpgo_peer.go ||
        echo "kcp-go peer not built; the report leaves it out"
fi

# Only the bench package is selected, so the `capi` feature stays off there.
cargo build --profile bench-noabi -p ikcp-bench --example async_peer

python3 scripts/bench-async.py "${args[@]}" "$@"
