# libkcp for people who use make: builds the C library with cargo and installs
# it in the same layout as `cmake --install` (see CMakeLists.txt).
#
#   make                         libkcp.a and libkcp.so (release, C API only, no tokio)
#   make install PREFIX=/usr     library, ikcp.h, kcp.pc, CMake package files
#   make examples                the C and C++ programs in c-examples/
#   make demo                    runs the lossy-link demo and a UDP echo pair
#   make test                    every test of the project (installs missing tools first)
#
# ABI=2 selects upstream 2.x's C ABI instead of 1.x's (ikcp_setcc, struct
# IKCPOPS, the 2.x IKCPCB layout, soname libkcp.so.2), for every target above:
#   make ABI=2 && make install ABI=2 PREFIX=/usr
# installs include/v2/ikcp.h as <prefix>/include/ikcp.h, next to libkcp.a
# and libkcp.so.2; pkg-config and find_package(kcp) consumers are unchanged.
#
# The C build has its own cargo target directory (one per ABI), so it never
# swaps the feature set of the libkcp that `cargo build` / `cargo test`
# leave in target/.

CARGO          ?= cargo
CC             ?= cc
CXX            ?= c++
ABI            ?= 1
ifeq ($(ABI),1)
KCP_TARGET_DIR ?= $(CURDIR)/target/capi
KCP_FEATURES   := capi
HEADER_DIR     := include
else ifeq ($(ABI),2)
KCP_TARGET_DIR ?= $(CURDIR)/target/capi2
KCP_FEATURES   := abi2
HEADER_DIR     := include/v2
else
$(error ABI=$(ABI): choose ABI=1 (upstream 1.x) or ABI=2 (upstream 2.x))
endif
EXAMPLES_DIR   ?= $(KCP_TARGET_DIR)/examples

PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DESTDIR    ?=

OUT := $(KCP_TARGET_DIR)/release

# The crate version is the library version. The soname's major version is
# bumped only on an ABI break and must match SONAME_V1 / SONAME_V2 in build.rs.
VERSION         := $(shell sed -n 's/^version = "\([0-9.]*\)"/\1/p' Cargo.toml | head -n 1)
VERSION_MAJOR   := $(word 1,$(subst ., ,$(VERSION)))
SOVERSION       := $(ABI)
SO_FULL_VERSION := $(SOVERSION).$(word 2,$(subst ., ,$(VERSION))).$(word 3,$(subst ., ,$(VERSION)))

# What Rust's standard library inside libkcp.a needs from the system
# (rustc --print native-static-libs, minus -lc). Kept equal to KCP_NATIVE_LIBS
# in CMakeLists.txt; scripts/test-c-builds.sh checks both against rustc.
NATIVE_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl

space := $() $()

EXAMPLE_CFLAGS   ?= -O2 -g -Wall -Wextra
EXAMPLE_CXXFLAGS ?= -O2 -g -Wall -Wextra -std=c++11

.PHONY: all lib install examples demo test clean FORCE

all: lib

# cargo decides what is stale; make just asks every time.
lib $(OUT)/libkcp.a $(OUT)/libkcp.so: FORCE
	$(CARGO) build -p ikcp --release --no-default-features --features $(KCP_FEATURES) --target-dir $(KCP_TARGET_DIR)
	@# The soname's name, so programs linked to the shared library run from the build tree.
	@ln -sfn libkcp.so $(OUT)/libkcp.so.$(SOVERSION)

# The same text substitutions CMake does with configure_file(@ONLY).
SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' \
	-e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|g' \
	-e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|g' \
	-e 's|@INCLUDEDIR_FROM_LIBDIR@|$(shell realpath -m --relative-to=$(LIBDIR) $(INCLUDEDIR))|g' \
	-e 's|@VERSION@|$(VERSION)|g' \
	-e 's|@VERSION_MAJOR@|$(VERSION_MAJOR)|g' \
	-e 's|@SOVERSION@|$(SOVERSION)|g' \
	-e 's|@SO_FULL_VERSION@|$(SO_FULL_VERSION)|g' \
	-e 's|@NATIVE_LIBS@|$(NATIVE_LIBS)|g' \
	-e 's|@NATIVE_LIBS_CMAKE@|$(subst $(space),;,$(patsubst -l%,%,$(NATIVE_LIBS)))|g' \
	-e 's|@SIZEOF_VOID_P@|$(shell expr $$(getconf LONG_BIT) / 8)|g'

install: lib
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(LIBDIR)/cmake/kcp $(DESTDIR)$(INCLUDEDIR)
	install -m 644 $(OUT)/libkcp.a $(DESTDIR)$(LIBDIR)/libkcp.a
	install -m 755 $(OUT)/libkcp.so $(DESTDIR)$(LIBDIR)/libkcp.so.$(SO_FULL_VERSION)
	ln -sfn libkcp.so.$(SO_FULL_VERSION) $(DESTDIR)$(LIBDIR)/libkcp.so.$(SOVERSION)
	ln -sfn libkcp.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libkcp.so
	install -m 644 $(HEADER_DIR)/ikcp.h $(DESTDIR)$(INCLUDEDIR)/ikcp.h
	$(SUBST) kcp.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/kcp.pc
	$(SUBST) cmake/kcp-config.cmake.in > $(DESTDIR)$(LIBDIR)/cmake/kcp/kcp-config.cmake
	$(SUBST) cmake/kcp-config-version.cmake.in > $(DESTDIR)$(LIBDIR)/cmake/kcp/kcp-config-version.cmake

C_EXAMPLES := udp_echo_server udp_echo_client lossy_link_demo

# Linked statically: the programs run from anywhere without LD_LIBRARY_PATH.
$(addprefix $(EXAMPLES_DIR)/,$(C_EXAMPLES)): $(EXAMPLES_DIR)/%: c-examples/%.c $(HEADER_DIR)/ikcp.h $(OUT)/libkcp.a
	@mkdir -p $(@D)
	$(CC) $(EXAMPLE_CFLAGS) -I$(HEADER_DIR) -o $@ $< $(OUT)/libkcp.a $(NATIVE_LIBS)

$(EXAMPLES_DIR)/cpp_loopback: c-examples/cpp_loopback.cpp $(HEADER_DIR)/ikcp.h $(OUT)/libkcp.a
	@mkdir -p $(@D)
	$(CXX) $(EXAMPLE_CXXFLAGS) -I$(HEADER_DIR) -o $@ $< $(OUT)/libkcp.a $(NATIVE_LIBS)

$(EXAMPLES_DIR)/relay: c-examples/drop_in/relay.c $(HEADER_DIR)/ikcp.h $(OUT)/libkcp.a
	$(MAKE) -C c-examples/drop_in KCP_ROOT=$(CURDIR) ABI=$(ABI) KCP_LIB=$(OUT)/libkcp.a O=$(EXAMPLES_DIR)/drop_in
	ln -sfn drop_in/relay $@

examples: $(addprefix $(EXAMPLES_DIR)/,$(C_EXAMPLES) cpp_loopback relay)

# Both programs stop by themselves; timeout is the belt to their braces.
demo: examples
	timeout 60 $(EXAMPLES_DIR)/lossy_link_demo
	@echo
	timeout 60 c-examples/run-echo-pair.sh $(EXAMPLES_DIR)/udp_echo_server $(EXAMPLES_DIR)/udp_echo_client

test:
	bash scripts/install-test-deps.sh
	cargo test --workspace --release
	cargo test --release --features metrics --test metrics_feature
	bash scripts/test-c-builds.sh

clean:
	rm -rf $(KCP_TARGET_DIR)
