#!/usr/bin/env bash
# Runs `kcp-conformance peer` against kcp-go: builds a plain-mode kcp-go echo
# server (conformance/go/kcpgo_echo.go: no encryption, no FEC, message mode,
# SetNoDelay(1, 10, 2, 1), kcp-go's default windows), points the peer at it
# with the same settings, and prints the report: what held and where kcp-go
# differs from ikcp.c. Keeps the report in target/conformance-kcp-go.txt and
# target/conformance-kcp-go.json.
#
#   bash scripts/conformance-kcp-go.sh [PEER OPTIONS...]   e.g. --only basic,rto
#
# Exit status: 0 when the report was written (whatever it found; FAILED rows
# are kcp-go's findings, not the script's), 2 when kcp-go or the peer could
# not be built or run.
set -euo pipefail
cd "$(dirname "$0")/.."

# kcp-go from Debian's packages (Go and its sources; no module download).
if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/github.com/xtaci/kcp-go ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            golang-go golang-github-xtaci-kcp-dev >/dev/null || true
    fi
fi
if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/github.com/xtaci/kcp-go ]; then
    echo "conformance-kcp-go: needs Debian's golang-go and golang-github-xtaci-kcp-dev (as root: apt-get install them)" >&2
    exit 2
fi
mkdir -p target
GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$PWD/target/go-cache" \
    go build -o target/kcpgo-echo conformance/go/kcpgo_echo.go
cargo build --release -q -p kcp-conformance

log=$(mktemp)
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT
# The server stops by itself after 180 s, so nothing outlives us for long.
target/kcpgo-echo 127.0.0.1:0 180 >"$log" &
server=$!
addr=
for _ in $(seq 100); do
    addr=$(sed -n 's/^kcpgo_echo: listening on \(.*\)$/\1/p' "$log")
    [ -n "$addr" ] && break
    sleep 0.1
done
if [ -z "$addr" ]; then
    echo "conformance-kcp-go: the kcp-go echo did not start" >&2
    cat "$log" >&2
    exit 2
fi

echo "kcp-go echo at $addr (Debian golang-github-xtaci-kcp-dev $(dpkg-query -W -f '${Version}' golang-github-xtaci-kcp-dev 2>/dev/null || echo '?'))"
status=0
target/release/kcp-conformance peer --connect "$addr" --conv 0x6b637067 \
    --nodelay 1 --interval 10 --resend 2 --nc 1 --mtu 1400 \
    --json target/conformance-kcp-go.json "$@" | tee target/conformance-kcp-go.txt || status=$?
if [ "$status" -ge 2 ]; then
    echo "conformance-kcp-go: the peer could not run (status $status)" >&2
    exit 2
fi
echo "report kept in target/conformance-kcp-go.txt and target/conformance-kcp-go.json"
