#!/usr/bin/env bash
# Runs udp_echo_server and udp_echo_client against each other on 127.0.0.1.
#
#   run-echo-pair.sh SERVER CLIENT [WRAPPER...]
#
# The server binds an ephemeral port and prints it, so any number of pairs can
# run at once. WRAPPER (e.g. `valgrind -q --error-exitcode=1`) prefixes both
# programs. Exits non-zero unless both sides finish cleanly.
set -euo pipefail

server=$1 client=$2
shift 2
wrapper=("$@")

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# The server gives up by itself after 20 idle seconds, so nothing outlives us for long.
"${wrapper[@]}" "$server" 0 20 >"$log" &
server_pid=$!

port=
for _ in $(seq 300); do # up to 30 s: valgrind takes a while to start
    port=$(sed -n 's/^udp_echo_server: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$log")
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "run-echo-pair: the server did not report its port" >&2
    cat "$log" >&2
    kill "$server_pid" 2>/dev/null || true
    exit 1
fi

status=0
client_says=$("${wrapper[@]}" "$client" "$port") || status=1
wait "$server_pid" || status=1
cat "$log"
echo "$client_says"
exit "$status"
