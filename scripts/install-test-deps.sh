#!/usr/bin/env bash
# Installs the system tools the C-level tests need, only when missing.
#
# CI starts from a machine with Rust, gcc/g++, make and python3; everything
# else used by `make test` (cmake, pkg-config, valgrind, clang, readelf/nm,
# Go and kcp-go's sources for the kcp-go interop test) comes from here.
# Silent when everything is already present, so it is cheap to run before
# every test run.
set -euo pipefail

# command -> Debian/Ubuntu package that provides it
declare -A wanted=(
    [cmake]=cmake
    [pkg-config]=pkg-config
    [valgrind]=valgrind
    [clang]=clang
    [readelf]=binutils
    [nm]=binutils
    [timeout]=coreutils
    [make]=make
    [g++]=g++
    [go]=golang-go
)

missing=()
for cmd in "${!wanted[@]}"; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        missing+=("${wanted[$cmd]}")
    fi
done

# kcp-go's sources, for tests/async_interop_kcpgo.rs (built offline with GOPATH).
if [ ! -d /usr/share/gocode/src/github.com/xtaci/kcp-go ]; then
    missing+=(golang-github-xtaci-kcp-dev)
fi

[ ${#missing[@]} -eq 0 ] && exit 0

# Deduplicate (binutils provides two of the commands) and keep a stable order.
mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: missing ${packages[*]} and no apt-get; install them by hand" >&2
    exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-test-deps: need root or sudo to install ${packages[*]}" >&2; exit 1; }
    sudo=(sudo)
fi

echo "install-test-deps: installing ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
