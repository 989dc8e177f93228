# Melodic Mind — build, test and run.
#   make run    install what is needed, build, run the main job on the default data
#   make test   install what is needed, build, run every test (also under ASan/UBSan)
#   make        build build/melodic and build/libmelodic.a
#   make deps   install the Debian packages that the build, tests and scripts need
#   make fuzz   build the libFuzzer targets and run each briefly
#   make bench  run the side-by-side benchmark scripts (slow; not part of test)
#   make serve  build the default models if missing, then start the web server (scripts/serve.sh)
#   make test-browser  the web page in chromium (part of test; skips without the data)

SHELL := /bin/bash
# This machine kind documents OPENBLAS_CORETYPE=Haswell in its environment (older
# OpenBLAS builds misbehave on AVX-512); where it is missing OpenBLAS 0.3.21 falls
# back to its slow Prescott kernels, so make supplies it — an existing value wins.
export OPENBLAS_CORETYPE ?= Haswell
CC ?= gcc
BUILD ?= build
PKGS := openblas sndfile fftw3f hdf5 soxr yaml-0.1 sqlite3 libmicrohttpd jansson ompi-c taglib_c
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# Portable by default: the binary runs on any x86-64 CPU. The AVX2/AVX-512
# kernels carry target attributes and are chosen at run time (cpuid), and
# -ffp-contract=off keeps the compiler from fusing a*b+c differently per
# call site or per ISA, so results never depend on the CPU the binary was
# built on (MELODIC_NO_AVX512=1 forces the portable kernels).
OPT ?= -O3
CFLAGS ?= $(OPT) -ffp-contract=off -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter -fopenmp -fPIC
CPPFLAGS += -Isrc $(PKG_CFLAGS) -D_GNU_SOURCE
LDLIBS += $(PKG_LIBS) -lm -lpthread
LDFLAGS += -fopenmp

# Debian packages: build, tests (cmocka), reference libraries for fixtures and benchmarks.
DEB_BUILD := build-essential pkg-config libopenblas-dev libsndfile1-dev libfftw3-dev \
             libhdf5-dev hdf5-tools libsoxr-dev libyaml-dev libcmocka-dev clang libclang-rt-14-dev \
             libsqlite3-dev libmicrohttpd-dev libjansson-dev openmpi-bin libopenmpi-dev libtagc0-dev
DEB_PY := python3-numpy python3-scipy python3-h5py python3-torch python3-torchaudio \
          python3-sklearn python3-xgboost python3-imblearn python3-matplotlib python3-yaml python3-flask
DEB_ALL := $(DEB_BUILD) $(DEB_PY)

SRC := $(shell find src -name '*.c' ! -path 'src/cli/*' | sort)
CLI_SRC := $(shell find src/cli -name '*.c' | sort)
OBJ := $(SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TESTS := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIB := $(BUILD)/libmelodic.a
SO := $(BUILD)/libmelodic.so
BIN := $(BUILD)/melodic
PREFIX ?= /usr/local

.PHONY: all deps run test test-unit test-portable test-third-party test-asan test-browser fuzz bench clean weights format install serve

all: $(BIN) $(LIB) $(SO)

# Registries (learners, feature sets, commands) are constant tables that name
# their entries, so the static library links like any other (no --whole-archive).

# Idempotent: only packages that are missing are installed.
deps:
	@missing=$$(for p in $(DEB_ALL); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  SUDO=$$( [ $$(id -u) = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SO): $(OBJ)
	$(CC) -shared -Wl,-soname,libmelodic.so.0 $(LDFLAGS) -o $@ $(OBJ) $(LDLIBS)

# make install PREFIX=DIR: the melodic command, src/melodic.h, the static and
# shared libraries, a pkg-config file (melodic.pc) and, under share/melodic,
# the files the commands read by default (the valence–arousal tables; the web
# page is embedded in the binary).
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -d $(DESTDIR)$(PREFIX)/share/melodic/configs/recommend
	install -m 644 configs/recommend/*.yaml $(DESTDIR)$(PREFIX)/share/melodic/configs/recommend/
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/melodic
	install -m 644 src/melodic.h $(DESTDIR)$(PREFIX)/include/melodic.h
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libmelodic.a
	install -m 755 $(SO) $(DESTDIR)$(PREFIX)/lib/libmelodic.so.0
	ln -sf libmelodic.so.0 $(DESTDIR)$(PREFIX)/lib/libmelodic.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|0.1.0|' -e 's|@REQUIRES@|$(PKGS)|' \
	  scripts/melodic.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/melodic.pc

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/testutil.h tests/skdata.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $(shell pkg-config --cflags cmocka) -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS) $(shell pkg-config --libs cmocka)

test: deps
	$(MAKE) -j2 all
	$(MAKE) -j2 test-unit
	$(MAKE) test-portable
	$(MAKE) test-third-party
	$(MAKE) -j2 test-asan
	$(MAKE) test-browser
	$(MAKE) test-install
	$(MAKE) test-layers
	@echo "all test suites passed"

# Folders of src/ as layers: no upward include, no cycle (tests/check_layers.sh).
.PHONY: test-layers
test-layers:
	tests/check_layers.sh

# The page in Debian's chromium through playwright-core (installs chromium and
# the npm package on first use; exits 0 with a message when the data is absent).
test-browser: all
	tests/browser/run.sh

serve: all
	scripts/serve.sh $(SERVE_ARGS)

# make install into a temporary prefix, then the commands from an unrelated
# folder (exits 0 with a message when the data is absent).
.PHONY: test-install
test-install: all
	BUILD=$(BUILD) tests/test_install.sh

test-unit: $(TESTS) $(BIN)
	@MELODIC_BIN=$(BIN) tests/run_tests.sh $(TESTS)

# third_party/ against what the project uses (values, checksums, linked libraries).
test-third-party: $(BIN)
	@MELODIC_BIN=$(BIN) tests/check_third_party.sh

# The same binaries on the portable kernels (AVX2 / scalar instead of AVX-512):
# every test, fixture comparisons and bit-for-bit checks included, must hold
# on a CPU without AVX-512 too.
test-portable: $(TESTS) $(BIN)
	@MELODIC_NO_AVX512=1 MELODIC_BIN=$(BIN) tests/run_tests.sh $(TESTS)
	@MELODIC_BIN=$(BIN) tests/check_portable_results.sh

# The same suite built with AddressSanitizer and UBSan (no OpenMP to keep ASan quiet about the runtime).
test-asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fopenmp -fsanitize=address,undefined" build-asan/melodic $(TESTS:$(BUILD)/%=build-asan/%)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 MELODIC_ASAN=1 MELODIC_BIN=build-asan/melodic \
	  tests/run_tests.sh $(TESTS:$(BUILD)/%=build-asan/%)

run: deps
	$(MAKE) -j2 all
	scripts/run_main.sh

fuzz: deps
	scripts/fuzz.sh

bench: all
	scripts/bench_all.sh

weights:
	scripts/fetch_weights.sh

clean:
	rm -rf build build-asan build-fuzz

# the page is embedded with .incbin, which -MMD cannot see
$(BUILD)/obj/src/runtime/http_assets.o: $(wildcard src/runtime/web/*)

-include $(OBJ:.o=.d) $(CLI_OBJ:.o=.d)
