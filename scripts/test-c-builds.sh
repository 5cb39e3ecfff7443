#!/usr/bin/env bash
# Every way a C or C++ program can consume libkcp, built and run for real:
#
#   - the top-level Makefile (library, soname, exported symbols);
#   - every program in c-examples/ with gcc, clang, g++ and clang++ at
#     -Wall -Wextra -Wpedantic -Werror, linked statically and dynamically;
#   - the examples run (bounded by `timeout`), the UDP echo pair and the
#     lossy-link demo also under valgrind, with no error and no leak;
#   - the same programs built with upstream's ikcp.c (from the kcp-io crate)
#     must print exactly what they print with libkcp; c-examples/drop_in too;
#   - `make install` and `cmake --install` must produce the same tree;
#   - CMake consumers (add_subdirectory and find_package, C and C++-only,
#     static and shared) and pkg-config;
#   - every recipe of README.md's "Replacing ikcp.c" section, verbatim;
#   - the 2.x flavour (`make ABI=2`, CMake -DKCP_ABI=2): soname libkcp.so.2,
#     the 1.x symbols plus ikcp_setcc, the same install tree both ways with
#     include/v2/ikcp.h installed as ikcp.h, examples built against it.
#
# Run by `make test`, after scripts/install-test-deps.sh. Builds go to a
# temporary directory; the one cargo build lives in target/capi, where the
# Makefile puts it. The last line is `c-builds: N passed, M failed`.
set -uo pipefail

# Used by the checks, which run in child shells (see `check`).
valgrind=(valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect)
strict_c=(-std=c99 -O2 -g -Wall -Wextra -Wpedantic -Werror)
strict_cxx=(-std=c++11 -O2 -g -Wall -Wextra -Wpedantic -Werror)

# ---------------------------------------------------------------- helpers

# Upstream's unmodified ikcp.c, as shipped by the kcp-io crate we test against.
find_reference() {
    cargo metadata --format-version 1 --manifest-path "$repo/Cargo.toml" |
        python3 -c '
import json, os, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "kcp-io":
        print(os.path.join(os.path.dirname(p["manifest_path"]), "kcp"))
        break'
}

# build_static NAME COMPILER SOURCE [FLAGS...] -> $work/bin/NAME, linked with libkcp.a
build_static() {
    local name=$1 compiler=$2 source=$3
    shift 3
    mkdir -p "$work/bin"
    "$compiler" "$@" -I"$repo/include" -o "$work/bin/$name" "$source" "$out/libkcp.a" $native_libs
}

# build_upstream NAME COMPILER SOURCE: the same program with upstream's ikcp.c compiled in.
build_upstream() {
    local name=$1 compiler=$2 source=$3
    mkdir -p "$work/bin"
    # ikcp.c is C; compile it with cc even when the program is C++.
    cc -O2 -c -o "$work/bin/ikcp-upstream.o" "$reference/ikcp.c"
    "$compiler" -O2 -I"$reference" -o "$work/bin/$name" "$source" "$work/bin/ikcp-upstream.o"
}

# same_output A B [ARGS...]: both programs succeed and print the same bytes.
same_output() {
    local a=$1 b=$2
    shift 2
    "$work/bin/$a" "$@" >"$work/$a.out"
    "$work/bin/$b" "$@" >"$work/$b.out"
    diff -u "$work/$b.out" "$work/$a.out"
    echo "identical: $(wc -l <"$work/$a.out") lines"
}

# ---------------------------------------------------------------- checks

# What the examples print with upstream's ikcp.c: every libkcp build must print the same.
expected_outputs() {
    build_upstream lossy_link_demo-upstream cc "$repo/c-examples/lossy_link_demo.c"
    build_upstream cpp_loopback-upstream c++ "$repo/c-examples/cpp_loopback.cpp"
    build_upstream relay-upstream cc "$repo/c-examples/drop_in/relay.c"
    mkdir -p "$work/expected"
    local p
    for p in lossy_link_demo cpp_loopback relay; do
        "$work/bin/$p-upstream" >"$work/expected/$p"
    done
}

# linkage PROGRAM static|shared: fails unless the program got libkcp that way.
linkage() {
    if readelf -d "$1" | grep -q 'NEEDED.*\[libkcp.so.1\]'; then
        [ "$2" = shared ] || { echo "$1 needs libkcp.so.1 but should be static"; return 1; }
    else
        [ "$2" = static ] || { echo "$1 should need libkcp.so.1"; return 1; }
    fi
}

# run_example_set DIR static|shared: runs every example built in DIR (by
# `make examples`, a CMake consumer or pkg-config), checks how each was linked
# and that each prints what upstream's build prints. Programs named *_shared
# are shared-library variants.
run_example_set() {
    local dir=$1 kind=$2 p variant
    for p in lossy_link_demo cpp_loopback relay udp_echo_server udp_echo_client; do
        linkage "$dir/$p" "$kind"
    done
    for p in lossy_link_demo cpp_loopback relay; do
        for variant in "$p" "${p}_shared"; do
            [ -e "$dir/$variant" ] || continue
            [ "$variant" = "$p" ] || linkage "$dir/$variant" shared
            timeout 60 "$dir/$variant" >"$dir/$variant.out"
            diff -u "$work/expected/$p" "$dir/$variant.out"
            echo "$variant: prints what upstream prints"
        done
    done
    timeout 120 "$repo/c-examples/run-echo-pair.sh" "$dir/udp_echo_server" "$dir/udp_echo_client"
}

make_examples() {
    make -C "$repo" examples EXAMPLES_DIR="$work/make-examples"
    run_example_set "$work/make-examples" static
}

# consumer_project DIR FIND_KCP: a CMake project that builds every example
# against kcp::kcp, and two against kcp::kcp_shared. FIND_KCP is the line
# that brings kcp in (add_subdirectory or find_package).
consumer_project() {
    local dir=$1 find_kcp=$2
    mkdir -p "$dir"
    cat >"$dir/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(consumer C CXX)
$find_kcp
set(src "$repo/c-examples")
foreach(p udp_echo_server udp_echo_client lossy_link_demo)
  add_executable(\${p} \${src}/\${p}.c)
  target_link_libraries(\${p} PRIVATE kcp::kcp)
endforeach()
add_executable(relay \${src}/drop_in/relay.c)
target_link_libraries(relay PRIVATE kcp::kcp)
add_executable(cpp_loopback \${src}/cpp_loopback.cpp)
target_link_libraries(cpp_loopback PRIVATE kcp::kcp)
add_executable(lossy_link_demo_shared \${src}/lossy_link_demo.c)
target_link_libraries(lossy_link_demo_shared PRIVATE kcp::kcp_shared)
add_executable(cpp_loopback_shared \${src}/cpp_loopback.cpp)
target_link_libraries(cpp_loopback_shared PRIVATE kcp::kcp_shared)
CMAKE
}

cmake_add_subdirectory_examples() {
    local dir="$work/consumer-subdir"
    consumer_project "$dir" "add_subdirectory(ikcp)"
    ln -s "$repo" "$dir/ikcp"
    cmake -S "$dir" -B "$dir/build"
    cmake --build "$dir/build"
    run_example_set "$dir/build" static
}

cmake_find_package_examples() {
    local dir="$work/consumer-find"
    consumer_project "$dir" "find_package(kcp CONFIG REQUIRED)"
    cmake -S "$dir" -B "$dir/build" -DCMAKE_PREFIX_PATH="$work/cmake-prefix"
    cmake --build "$dir/build"
    run_example_set "$dir/build" static
}

pkg_config_examples() {
    local dir="$work/consumer-pkg-config" p
    export PKG_CONFIG_PATH="$work/make-prefix/lib/pkgconfig"
    mkdir -p "$dir"
    for p in udp_echo_server udp_echo_client lossy_link_demo drop_in/relay; do
        cc -O2 -Wall -Wextra -Werror -o "$dir/${p#drop_in/}" "$repo/c-examples/$p.c" \
            $(pkg-config --cflags --libs kcp) -Wl,-rpath,"$(pkg-config --variable=libdir kcp)"
    done
    c++ "${strict_cxx[@]}" -o "$dir/cpp_loopback" "$repo/c-examples/cpp_loopback.cpp" \
        $(pkg-config --cflags --libs kcp) -Wl,-rpath,"$(pkg-config --variable=libdir kcp)"
    run_example_set "$dir" shared
}


tools_present() {
    local missing=()
    for tool in cc gcc g++ clang clang++ cmake pkg-config valgrind readelf nm python3 timeout cargo rustc; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    [ ${#missing[@]} -eq 0 ] || { echo "missing: ${missing[*]} (run scripts/install-test-deps.sh)"; return 1; }
}

# The system libraries listed for libkcp.a (Makefile, CMakeLists.txt, README,
# drop_in) include every one rustc says its standard library needs. A
# throwaway staticlib asks the same toolchain without rebuilding libkcp.
native_libs_match_rustc() {
    local probe="$work/native-libs" said lib
    mkdir -p "$probe"
    echo 'pub fn probe() {}' >"$probe/lib.rs"
    said=$(rustc --edition 2021 --crate-type staticlib --print native-static-libs -o "$probe/libprobe.a" \
        "$probe/lib.rs" 2>&1 | sed -n 's/.*native-static-libs: //p')
    echo "rustc:           $said"
    echo "Makefile:        $native_libs"
    [ -n "$said" ]
    for lib in $said; do
        # libc comes with every C compiler driver.
        [ "$lib" = -lc ] || [[ " $native_libs " == *" $lib "* ]] || { echo "missing $lib"; return 1; }
    done
    local cmake_list
    cmake_list=$(sed -n 's/^set(KCP_NATIVE_LIBS \(.*\))$/\1/p' "$repo/CMakeLists.txt" | sed 's/\([^ ]*\)/-l\1/g')
    echo "CMakeLists.txt:  $cmake_list"
    [ "$cmake_list" = "$native_libs" ]
    grep -qF -- "$native_libs" "$repo/README.md"
    grep -qF -- "$native_libs" "$repo/c-examples/drop_in/Makefile"
}

library_builds_with_make() {
    make -C "$repo" lib
    test -f "$out/libkcp.a" && test -f "$out/libkcp.so" && test -L "$out/libkcp.so.1"
}

soname_is_libkcp_so_1() {
    readelf -d "$out/libkcp.so" | tee /dev/stderr | grep -q 'Library soname: \[libkcp.so.1\]'
}

only_ikcp_symbols_exported() {
    local expected actual
    expected=$(printf '%s\n' ikcp_allocator ikcp_check ikcp_create ikcp_flush ikcp_getconv ikcp_input \
        ikcp_interval ikcp_log ikcp_nodelay ikcp_peeksize ikcp_recv ikcp_release ikcp_send ikcp_setmtu \
        ikcp_setoutput ikcp_update ikcp_waitsnd ikcp_wndsize)
    actual=$(nm -D --defined-only "$out/libkcp.so" | awk '{print $3}' | sort)
    diff <(echo "$expected") <(echo "$actual")
}

# ---------------------------------------------------------------- 2.x flavour
# ($out2 is the 2.x build's cargo output, where `make ABI=2` puts it.)

abi2_library_builds_with_make() {
    make -C "$repo" lib ABI=2
    test -f "$out2/libkcp.a" && test -f "$out2/libkcp.so" && test -L "$out2/libkcp.so.2"
    readelf -d "$out2/libkcp.so" | tee /dev/stderr | grep -q 'Library soname: \[libkcp.so.2\]'
}

abi2_exports_the_1x_symbols_and_ikcp_setcc() {
    local expected actual
    expected=$(printf '%s\n' ikcp_allocator ikcp_check ikcp_create ikcp_flush ikcp_getconv ikcp_input \
        ikcp_interval ikcp_log ikcp_nodelay ikcp_peeksize ikcp_recv ikcp_release ikcp_send ikcp_setcc \
        ikcp_setmtu ikcp_setoutput ikcp_update ikcp_waitsnd ikcp_wndsize)
    actual=$(nm -D --defined-only "$out2/libkcp.so" | awk '{print $3}' | sort)
    diff <(echo "$expected") <(echo "$actual")
    echo "$actual" | tr '\n' ' '
}

abi2_make_and_cmake_install_the_same_tree() {
    make -C "$repo" install ABI=2 PREFIX="$work/make2-prefix"
    KCP_CARGO_TARGET_DIR="$repo/target/capi2" cmake -S "$repo" -B "$work/kcp2-build" -DKCP_ABI=2 \
        -DCMAKE_INSTALL_PREFIX="$work/cmake2-prefix"
    cmake --build "$work/kcp2-build"
    cmake --install "$work/kcp2-build"
    (cd "$work/make2-prefix" && find . -printf '%y %p %l\n' | sort) >"$work/make2-tree"
    (cd "$work/cmake2-prefix" && find . -printf '%y %p %l\n' | sort) >"$work/cmake2-tree"
    diff -u "$work/cmake2-tree" "$work/make2-tree"
    cat "$work/make2-tree"
    local f
    for f in $(cd "$work/make2-prefix" && find . -type f ! -name kcp.pc); do
        cmp "$work/make2-prefix/$f" "$work/cmake2-prefix/$f"
    done
    cmp "$repo/include/v2/ikcp.h" "$work/make2-prefix/include/ikcp.h"
    readelf -d "$work/make2-prefix/lib/libkcp.so.2."* | grep -q 'soname: \[libkcp.so.2\]'
    test -L "$work/make2-prefix/lib/libkcp.so.2"
}

# A find_package(kcp) consumer, unchanged, against the 2.x install tree: the
# examples (1.x programs, which 2.x's API still serves) and a 2.x program
# that installs a controller, static and shared.
abi2_find_package_consumer() {
    local dir="$work/consumer2-find"
    consumer_project "$dir" "find_package(kcp CONFIG REQUIRED)"
    cat >>"$dir/CMakeLists.txt" <<CMAKE
add_executable(uses_v2 \${src}/../ffi-tests/c/uses_everything.c)
target_compile_definitions(uses_v2 PRIVATE IKCP_USES_V2)
target_link_libraries(uses_v2 PRIVATE kcp::kcp_shared)
CMAKE
    cmake -S "$dir" -B "$dir/build" -DCMAKE_PREFIX_PATH="$work/cmake2-prefix"
    cmake --build "$dir/build"
    readelf -d "$dir/build/uses_v2" | grep -q 'NEEDED.*\[libkcp.so.2\]'
    readelf -d "$dir/build/cpp_loopback_shared" | grep -q 'NEEDED.*\[libkcp.so.2\]'
    "$dir/build/uses_v2"
    local p
    for p in lossy_link_demo lossy_link_demo_shared cpp_loopback cpp_loopback_shared relay; do
        timeout 60 "$dir/build/$p" >/dev/null
        echo "$p: ran"
    done
    timeout 120 "$repo/c-examples/run-echo-pair.sh" "$dir/build/udp_echo_server" "$dir/build/udp_echo_client"
}

# Upstream 2.1.1's sources (the tests' 2.x oracle), as ffi-tests finds
# them: prints their directory, or nothing after a skip line when they are
# missing; fails instead when IKCP_REQUIRE_2X=1 (CI).
find_reference2() {
    local ref2=${IKCP_REF_2X:-$repo/../shared/reference/kcp-2.1.1}
    if [ -f "$ref2/ikcp.c" ]; then
        echo "$ref2"
    elif [ "${IKCP_REQUIRE_2X:-}" = 1 ]; then
        echo "IKCP_REQUIRE_2X=1 but $ref2 holds no ikcp.c" >&2
        return 1
    else
        echo "2.x comparison skipped: set IKCP_REF_2X to a checkout of upstream kcp tag 2.1.1" >&2
    fi
}

abi2_examples_print_what_upstream_2x_prints() {
    local ref2
    ref2=$(find_reference2)
    [ -n "$ref2" ] || return 0
    mkdir -p "$work/bin"
    cc -O2 -c -o "$work/bin/ikcp2-upstream.o" "$ref2/ikcp.c"
    cc -O2 -I"$ref2" -o "$work/bin/lossy_link_demo-upstream2" \
        "$repo/c-examples/lossy_link_demo.c" "$work/bin/ikcp2-upstream.o"
    c++ -O2 -I"$ref2" -o "$work/bin/cpp_loopback-upstream2" \
        "$repo/c-examples/cpp_loopback.cpp" "$work/bin/ikcp2-upstream.o"
    cc "${strict_c[@]}" -I"$repo/include/v2" -o "$work/bin/lossy_link_demo-abi2" \
        "$repo/c-examples/lossy_link_demo.c" "$out2/libkcp.a" $native_libs
    c++ "${strict_cxx[@]}" -I"$repo/include/v2" -o "$work/bin/cpp_loopback-abi2" \
        "$repo/c-examples/cpp_loopback.cpp" "$out2/libkcp.a" $native_libs
    same_output lossy_link_demo-abi2 lossy_link_demo-upstream2
    same_output lossy_link_demo-abi2 lossy_link_demo-upstream2 -r 300 -j 80 -l 30 -n 200 -g 30 -s 12345
    same_output cpp_loopback-abi2 cpp_loopback-upstream2
}

abi2_drop_in_relay() {
    cp -r "$repo/c-examples/drop_in" "$work/drop_in2"
    make -C "$work/drop_in2" KCP_ROOT="$repo" ABI=2
    "$work/drop_in2/out/libkcp2/relay" >"$work/relay2-libkcp.out"
    # Upstream 2.1.1's ikcp.c must print the same.
    local ref2
    ref2=$(find_reference2)
    [ -n "$ref2" ] || return 0
    make -C "$work/drop_in2" IKCP_C="$ref2/ikcp.c" O=out/upstream2
    "$work/drop_in2/out/upstream2/relay" >"$work/relay2-upstream.out"
    diff -u "$work/relay2-upstream.out" "$work/relay2-libkcp.out"
    cat "$work/relay2-libkcp.out"
}

# run_echo_pair SERVER CLIENT [WRAPPER...]
run_echo_pair() {
    local server=$1 client=$2
    shift 2
    "$repo/c-examples/run-echo-pair.sh" "$work/bin/$server" "$work/bin/$client" "$@"
}

shared_link_works() {
    mkdir -p "$work/bin"
    cc "${strict_c[@]}" -I"$repo/include" -o "$work/bin/lossy_link_demo-shared" \
        "$repo/c-examples/lossy_link_demo.c" -L"$out" -lkcp -Wl,-rpath,"$out"
    readelf -d "$work/bin/lossy_link_demo-shared" | grep -q 'NEEDED.*\[libkcp.so.1\]'
    ldd "$work/bin/lossy_link_demo-shared" | grep 'libkcp.so.1'
    same_output lossy_link_demo-shared lossy_link_demo-gcc
}

drop_in_same_output_both_ways() {
    cp -r "$repo/c-examples/drop_in" "$work/drop_in"
    make -C "$work/drop_in" KCP_ROOT="$repo"
    make -C "$work/drop_in" IKCP_C="$reference/ikcp.c"
    "$work/drop_in/out/libkcp/relay" >"$work/relay-libkcp.out"
    "$work/drop_in/out/upstream/relay" >"$work/relay-upstream.out"
    diff -u "$work/relay-upstream.out" "$work/relay-libkcp.out"
    # The program must really have been linked two ways.
    nm "$work/drop_in/out/upstream/relay" | grep -q ' ikcp_qprint$'
    if nm "$work/drop_in/out/libkcp/relay" | grep -q ' ikcp_qprint$'; then
        echo "the libkcp build contains upstream's code"
        return 1
    fi
    cat "$work/relay-libkcp.out"
}

make_and_cmake_install_the_same_tree() {
    make -C "$repo" install PREFIX="$work/make-prefix"
    cmake -S "$repo" -B "$work/kcp-build" -DCMAKE_INSTALL_PREFIX="$work/cmake-prefix"
    cmake --build "$work/kcp-build"
    cmake --install "$work/kcp-build"
    (cd "$work/make-prefix" && find . -printf '%y %p %l\n' | sort) >"$work/make-tree"
    (cd "$work/cmake-prefix" && find . -printf '%y %p %l\n' | sort) >"$work/cmake-tree"
    diff -u "$work/cmake-tree" "$work/make-tree"
    cat "$work/make-tree"
    local f
    for f in $(cd "$work/make-prefix" && find . -type f ! -name kcp.pc); do
        cmp "$work/make-prefix/$f" "$work/cmake-prefix/$f"
    done
    # kcp.pc differs only in the prefix it names.
    diff <(sed "s|$work/make-prefix|PREFIX|" "$work/make-prefix/lib/pkgconfig/kcp.pc") \
        <(sed "s|$work/cmake-prefix|PREFIX|" "$work/cmake-prefix/lib/pkgconfig/kcp.pc")
    readelf -d "$work/make-prefix/lib/libkcp.so.1."* | grep -q 'soname: \[libkcp.so.1\]'
}

pkg_config_metadata() {
    export PKG_CONFIG_PATH="$work/make-prefix/lib/pkgconfig"
    local cflags libs static_libs
    # echo without quotes: pkg-config pads with a trailing space.
    cflags=$(echo $(pkg-config --cflags kcp))
    libs=$(echo $(pkg-config --libs kcp))
    static_libs=$(echo $(pkg-config --libs --static kcp))
    printf '%s\n' "version $(pkg-config --modversion kcp)" "$cflags" "$libs" "$static_libs"
    [ "$cflags" = "-I$work/make-prefix/include" ]
    [ "$libs" = "-L$work/make-prefix/lib -lkcp" ]
    [ "$static_libs" = "-L$work/make-prefix/lib -lkcp $native_libs" ]
    # The static list is enough to link libkcp.a by hand.
    cc "${strict_c[@]}" $(pkg-config --cflags kcp) -o "$work/bin/lossy-pc-static" \
        "$repo/c-examples/lossy_link_demo.c" "$(pkg-config --variable=libdir kcp)/libkcp.a" \
        $(pkg-config --libs-only-l --static kcp | sed 's/-lkcp //')
    if readelf -d "$work/bin/lossy-pc-static" | grep -q libkcp; then
        echo "linked libkcp.so, not libkcp.a"
        return 1
    fi
    same_output lossy-pc-static lossy_link_demo-gcc
}

# A C++-only project (no C enabled) finds the installed package and links the
# shared library; version requests are honoured.
cmake_find_package_cxx_shared() {
    local dir="$work/consumer-find-cxx" version
    version=$(sed -n 's/^version = "\([0-9.]*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)
    mkdir -p "$dir"
    cp "$repo/c-examples/cpp_loopback.cpp" "$dir/"
    cat >"$dir/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.16)
project(consumer CXX)
find_package(kcp $version CONFIG REQUIRED)
add_executable(cpp_loopback cpp_loopback.cpp)
target_link_libraries(cpp_loopback PRIVATE kcp::kcp_shared)
add_executable(cpp_loopback_static cpp_loopback.cpp)
target_link_libraries(cpp_loopback_static PRIVATE kcp::kcp)
EOF
    cmake -S "$dir" -B "$dir/build" -DCMAKE_PREFIX_PATH="$work/cmake-prefix"
    cmake --build "$dir/build"
    readelf -d "$dir/build/cpp_loopback" | grep -q 'NEEDED.*\[libkcp.so.1\]'
    ldd "$dir/build/cpp_loopback" | grep "libkcp.so.1 => $work/cmake-prefix/lib/libkcp.so.1"
    "$dir/build/cpp_loopback"
    "$dir/build/cpp_loopback_static"

    mkdir -p "$dir/too-new"
    cat >"$dir/too-new/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(too_new NONE)
find_package(kcp 999.0 CONFIG QUIET)
if(kcp_FOUND)
  message(FATAL_ERROR "kcp 999.0 should not be found")
endif()
EOF
    cmake -S "$dir/too-new" -B "$dir/too-new/build" -DCMAKE_PREFIX_PATH="$work/cmake-prefix"
}

# add_subdirectory from a C++ project, shared library, run from the build tree.
cmake_add_subdirectory_cxx_shared() {
    local dir="$work/consumer-subdir-cxx"
    mkdir -p "$dir"
    ln -s "$repo" "$dir/ikcp"
    cp "$repo/c-examples/cpp_loopback.cpp" "$dir/"
    cat >"$dir/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(consumer CXX)
add_subdirectory(ikcp)
add_executable(cpp_loopback cpp_loopback.cpp)
target_link_libraries(cpp_loopback PRIVATE kcp_shared)
add_executable(cpp_loopback_static cpp_loopback.cpp)
target_link_libraries(cpp_loopback_static PRIVATE kcp)
EOF
    cmake -S "$dir" -B "$dir/build"
    cmake --build "$dir/build"
    readelf -d "$dir/build/cpp_loopback" | grep -q 'NEEDED.*\[libkcp.so.1\]'
    "$dir/build/cpp_loopback"
    "$dir/build/cpp_loopback_static"
    # Built as a subproject, kcp installs nothing unless asked (KCP_INSTALL).
    if grep -q libkcp "$dir/build/cmake_install.cmake"; then
        echo "installs libkcp although KCP_INSTALL is off"
        return 1
    fi
}

# Splits README's recipe section into files and shell blocks, in order:
# $work/recipes/<recipe>/<nn>-file-<name> or <nn>-run.
extract_recipes() {
    python3 - "$repo/README.md" "$work/recipes" <<'EOF'
import os, re, sys
readme, dest = sys.argv[1], sys.argv[2]
text = open(readme).read()
begin, end = text.index("<!-- c-recipes:begin -->"), text.index("<!-- c-recipes:end -->")
blocks = re.findall(r"<!-- test-c-builds: (\S+) (\S+) -->\n```[a-z]*\n(.*?)```", text[begin:end], re.S)
counts = {}
for recipe, kind, body in blocks:
    n = counts[recipe] = counts.get(recipe, 0) + 1
    os.makedirs(os.path.join(dest, recipe), exist_ok=True)
    name = "%02d-run" % n if kind == "run" else "%02d-file-%s" % (n, kind)
    open(os.path.join(dest, recipe, name), "w").write(body)
print(" ".join(sorted(counts)))
EOF
}

# readme_recipe NAME: a fresh project with app.c and third_party/ikcp (this
# checkout) and a fresh $HOME; the recipe's files are written and its shell
# blocks run, in README order, exactly as printed.
readme_recipe() {
    local recipe=$1 dir="$work/readme-$1" step
    mkdir -p "$dir/third_party" "$dir/home"
    ln -s "$repo" "$dir/third_party/ikcp"
    cp "$repo/c-examples/drop_in/relay.c" "$dir/app.c"
    # cargo and rustup keep their own homes when $HOME moves.
    export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
    export HOME="$dir/home"
    cd "$dir"
    for step in "$work/recipes/$recipe"/*; do
        case "$step" in
        *-run)
            echo "+++ $(basename "$step")"
            cat "$step"
            bash -euo pipefail "$step"
            ;;
        *-file-*) cp "$step" "$dir/${step##*-file-}" ;;
        esac
    done
    [ -n "$(ls "$work/recipes/$recipe"/*-run)" ]
}

pkg_config_recipe_links_shared() {
    readelf -d "$work/readme-pkg-config/app" | grep -q 'NEEDED.*\[libkcp.so.1\]'
}

if [ "${1:-}" = --functions-only ]; then
    return 0 2>/dev/null || exit 0
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/kcp-c-builds.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/logs"

# Every CMake tree below shares the Makefile's cargo build instead of
# compiling the crate (and cbindgen) once per tree.
export KCP_CARGO_TARGET_DIR="$repo/target/capi"
out="$KCP_CARGO_TARGET_DIR/release"
out2="$repo/target/capi2/release"
native_libs=$(sed -n 's/^NATIVE_LIBS := //p' "$repo/Makefile")
export repo work out out2 native_libs

passed=0
failed=0
failures=()

# check NAME TIMEOUT_S COMMAND...: one test, in a child shell that has this
# script's functions and runs under `set -euo pipefail`. Its output goes to a
# log that is shown only on failure; outliving TIMEOUT_S is a failure.
check() {
    local name=$1 limit=$2
    shift 2
    local log="$work/logs/$((passed + failed)).log"
    if timeout -k 10 "$limit" bash -c 'set -euo pipefail; source "$0" --functions-only; "$@"' \
        "${BASH_SOURCE[0]}" "$@" >"$log" 2>&1; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "FAIL $name"
        tail -n 60 "$log" | sed 's/^/     | /'
    fi
}


# ---------------------------------------------------------------- run

check "tools installed" 30 tools_present
check "native libs of libkcp.a agree with rustc" 120 native_libs_match_rustc
check "make lib builds libkcp.a and libkcp.so" 900 library_builds_with_make
check "readelf: soname libkcp.so.1" 30 soname_is_libkcp_so_1
check "nm: exactly the 18 ikcp_* symbols exported" 30 only_ikcp_symbols_exported

reference=$(find_reference)
export reference
check "upstream ikcp.c found via cargo metadata" 10 test -f "$reference/ikcp.c"

for program in udp_echo_server udp_echo_client lossy_link_demo; do
    for compiler in gcc clang; do
        check "$compiler -Werror: $program.c" 120 \
            build_static "$program-$compiler" "$compiler" "$repo/c-examples/$program.c" "${strict_c[@]}"
    done
done
for compiler in gcc clang; do
    check "$compiler -std=c89 -Werror: drop_in/relay.c" 120 \
        build_static "relay-$compiler" "$compiler" "$repo/c-examples/drop_in/relay.c" \
        -std=c89 -O2 -Wall -Wextra -Wpedantic -Werror
done
for compiler in g++ clang++; do
    check "$compiler -Werror: cpp_loopback.cpp" 120 \
        build_static "cpp_loopback-$compiler" "$compiler" "$repo/c-examples/cpp_loopback.cpp" "${strict_cxx[@]}"
done

check "run lossy_link_demo" 60 "$work/bin/lossy_link_demo-gcc"
check "run lossy_link_demo (clang build, other settings)" 60 \
    "$work/bin/lossy_link_demo-clang" -r 300 -j 50 -l 25 -n 100 -g 50 -s 7
check "run cpp_loopback (g++)" 60 "$work/bin/cpp_loopback-g++"
check "run cpp_loopback (clang++)" 60 "$work/bin/cpp_loopback-clang++"
check "run relay (clang)" 60 "$work/bin/relay-clang"
check "UDP echo pair on 127.0.0.1 (gcc)" 120 run_echo_pair udp_echo_server-gcc udp_echo_client-gcc
check "UDP echo pair on 127.0.0.1 (clang)" 120 run_echo_pair udp_echo_server-clang udp_echo_client-clang
check "UDP echo pair under valgrind" 300 \
    run_echo_pair udp_echo_server-gcc udp_echo_client-gcc "${valgrind[@]}"
check "lossy_link_demo under valgrind" 300 "${valgrind[@]}" "$work/bin/lossy_link_demo-gcc"
check "cpp_loopback under valgrind" 300 "${valgrind[@]}" "$work/bin/cpp_loopback-g++"

check "build the examples with upstream ikcp.c" 300 expected_outputs
check "lossy_link_demo: libkcp prints what upstream prints" 60 \
    same_output lossy_link_demo-gcc lossy_link_demo-upstream
check "lossy_link_demo: same again on a harsher link" 60 \
    same_output lossy_link_demo-gcc lossy_link_demo-upstream -r 300 -j 80 -l 30 -n 200 -g 30 -s 12345
check "cpp_loopback: libkcp prints what upstream prints" 60 same_output cpp_loopback-g++ cpp_loopback-upstream
check "drop_in: relay built with ikcp.c and with libkcp prints the same" 300 drop_in_same_output_both_ways
check "shared link: lossy_link_demo against libkcp.so" 120 shared_link_works

check "make examples: build and run them all" 600 make_examples
check "cmake add_subdirectory: build and run every example (kcp::kcp, kcp::kcp_shared)" 900 \
    cmake_add_subdirectory_examples
check "make install and cmake --install produce the same tree" 900 make_and_cmake_install_the_same_tree
check "cmake find_package: build and run every example (kcp::kcp, kcp::kcp_shared)" 900 \
    cmake_find_package_examples
check "pkg-config: cflags, libs, --static libs" 120 pkg_config_metadata
check "pkg-config: build and run every example (shared)" 300 pkg_config_examples
check "cmake find_package from C++: kcp::kcp_shared, kcp::kcp, version check" 600 \
    cmake_find_package_cxx_shared
check "cmake add_subdirectory from C++: kcp_shared, kcp" 600 cmake_add_subdirectory_cxx_shared

recipes=$(extract_recipes)
check "README has the four recipes (found: $recipes)" 10 \
    test "$recipes" = "add-subdirectory find-package makefile pkg-config"
for recipe in $recipes; do
    check "README recipe, verbatim: $recipe" 900 readme_recipe "$recipe"
done
check "README pkg-config recipe links libkcp.so.1" 10 pkg_config_recipe_links_shared

check "make ABI=2: libkcp.a, libkcp.so with soname libkcp.so.2" 900 abi2_library_builds_with_make
check "nm (2.x): the 18 ikcp_* symbols and ikcp_setcc" 30 abi2_exports_the_1x_symbols_and_ikcp_setcc
check "make install ABI=2 and cmake -DKCP_ABI=2 --install produce the same tree" 900 \
    abi2_make_and_cmake_install_the_same_tree
check "cmake find_package (2.x tree): build and run the examples and a 2.x program" 900 \
    abi2_find_package_consumer
check "drop_in: relay built with make ABI=2 prints what upstream 2.1.1 prints" 300 abi2_drop_in_relay
check "lossy_link_demo, cpp_loopback on libkcp 2.x print what upstream 2.1.1 prints" 300 \
    abi2_examples_print_what_upstream_2x_prints

if [ "$failed" -gt 0 ]; then
    printf 'failed: %s\n' "${failures[@]}"
fi
echo "c-builds: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
