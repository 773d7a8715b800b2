# Forge build. `make` builds build/forge, build/libforge.a and build/libforge.so.
#   make test        the test suite (prints "N passed, N failed" last); FORGE_CPU=scalar|avx2|avx512
#                    forces a kernel set, `make test-sets` runs the suite once per set
#   make asan        the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz        libFuzzer targets, FUZZ_SECONDS each (clang)
#   make bench       speed benchmarks (see docs/benchmarks.md)
#   make install     PREFIX=/usr/local: binary, libraries, forge.h, forge.pc, forge-server.pc
#   make CUDA=1      also the CUDA backend, build/libforge-cuda.so (CUDA_ARCH=sm_90)
#   make CROSS=aarch64            an AArch64 build in build-aarch64 with Debian's cross compiler and
#                                 arm64 libraries (scripts/install-cross-deps.sh installs them)
#   make test-aarch64             that build's tests under qemu-user (scripts/ci-aarch64.sh, docs/arm.md)
#   make FORGE_PORTABLE=1 BUILD=build-portable test
#                                 only the POSIX fallbacks of src/base/port.c (what macOS/BSD lack)
# SIMD kernels (*_avx2.c, *_avx512.c on x86-64; *_neon.c, *_neon_dotprod.c, *_neon_i8mm.c on AArch64) get their ISA
# flags per file; the rest of the build is plain C11 for the baseline CPU, and kernels are chosen at
# run time. ARCH (default: this machine's, from uname -m) picks which set is compiled.

ifeq ($(CROSS),aarch64)
  CC    := aarch64-linux-gnu-gcc
  ARCH  := aarch64
  BUILD ?= build-aarch64
  # the arm64 multiarch libraries; libevent-dev:arm64 (not Multi-Arch: same) is unpacked in a
  # private sysroot by scripts/install-cross-deps.sh, searched first
  FORGE_CROSS_SYSROOT ?= /opt/forge-cross/aarch64
  PKG_CONFIG := PKG_CONFIG_LIBDIR=$(FORGE_CROSS_SYSROOT)/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig PKG_CONFIG_PATH= pkg-config
else ifneq ($(CROSS),)
  $(error CROSS=$(CROSS): only CROSS=aarch64 is known; or set CC, ARCH and PKG_CONFIG_LIBDIR yourself)
endif
CC       ?= cc
BUILD    ?= build
UNAME_S  := $(shell uname -s)
HOST_ARCH := $(shell uname -m)
PKG_CONFIG ?= pkg-config
ARCH     ?= $(HOST_ARCH)
# macOS says arm64, the BSDs amd64
override ARCH := $(patsubst arm64,aarch64,$(patsubst amd64,x86_64,$(ARCH)))
# tools run during the build (scripts/embed.c) are built for this machine
HOST_CC  ?= $(if $(filter $(ARCH),$(patsubst arm64,aarch64,$(patsubst amd64,x86_64,$(HOST_ARCH)))),$(CC),cc)
PREFIX   ?= /usr/local
OPT      ?= -O2
# the inference core needs the first three; the Hub (libcurl, libcrypto) and the server
# (libevent) the rest: forge.pc and forge-server.pc list them apart for static linking
CORE_DEPS := libpcre2-8 libutf8proc yajl
NET_DEPS  := libcurl libevent libcrypto
DEPS     := $(CORE_DEPS) $(NET_DEPS)
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(DEPS))
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(DEPS))

# Versions and the shared library's names: libforge.so.X.Y.Z, its SONAME libforge.so.MAJOR
# (libforge.so.0.MINOR before 1.0, where a minor release may break the ABI), libforge.so.
VERSION := $(shell sed -n 's/^\#define FORGE_VERSION "\(.*\)"/\1/p' include/forge.h)
VMAJOR  := $(word 1,$(subst ., ,$(VERSION)))
VMINOR  := $(word 2,$(subst ., ,$(VERSION)))
SOVER   := $(if $(filter 0,$(VMAJOR)),0.$(VMINOR),$(VMAJOR))
SONAME  := libforge.so.$(SOVER)
SHLIB      := libforge.so
SHLIB_REAL := libforge.so.$(VERSION)
SHLIB_LINK  = -shared -Wl,-soname,$(SONAME)
# macOS names it libforge.X.Y.Z.dylib, install name @rpath/libforge.MAJOR.dylib
ifeq ($(UNAME_S),Darwin)
  SONAME     := libforge.$(SOVER).dylib
  SHLIB      := libforge.dylib
  SHLIB_REAL := libforge.$(VERSION).dylib
  SHLIB_LINK  = -dynamiclib -install_name @rpath/$(SONAME) -current_version $(VERSION) -compatibility_version $(SOVER)
endif

# -fvisibility=hidden: libforge.so exports only the FORGE_API functions of forge.h. The
# static archive keeps every symbol linkable, so the CLI and the tests that use internal
# modules (json, strbuf, ...) link libforge.a; embedders use either.
# macOS: _DARWIN_C_SOURCE exposes what glibc's _GNU_SOURCE does (MAP_ANON, dladdr, ...);
# Homebrew's libraries come through pkg-config (README, "Building on macOS")
OS_CFLAGS := $(if $(filter Darwin,$(UNAME_S)),-D_DARWIN_C_SOURCE)
OS_CFLAGS += $(if $(filter 1,$(FORGE_PORTABLE)),-DFORGE_PORTABLE)
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE $(OS_CFLAGS) $(OPT) -g -fPIC -fvisibility=hidden -pthread -Wall -Wextra -Werror \
             -Iinclude -Isrc $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lpthread -lm -ldl $(EXTRA_LDFLAGS)

LIB_SRC := $(filter-out src/cli/%,$(wildcard src/*/*.c src/*/*/*.c))
ifeq ($(ARCH),x86_64)
  LIB_SRC := $(filter-out %_neon.c %_neon_dotprod.c %_neon_i8mm.c,$(LIB_SRC))
else ifeq ($(ARCH),aarch64)
  LIB_SRC := $(filter-out %_avx2.c %_avx512.c,$(LIB_SRC))
else
  LIB_SRC := $(filter-out %_avx2.c %_avx512.c %_neon.c %_neon_dotprod.c %_neon_i8mm.c,$(LIB_SRC))
endif
CLI_SRC  := $(wildcard src/cli/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/webui_assets.o
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(wildcard tests/*/test_*.c)
# allocation fault injection wraps malloc with GNU ld's --wrap, which Apple's linker lacks
ifeq ($(UNAME_S),Darwin)
  TEST_SRC := $(filter-out tests/fault/%,$(TEST_SRC))
endif
TEST_BIN := $(TEST_SRC:%.c=$(BUILD)/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:%.c=$(BUILD)/%)

$(BUILD)/obj/%_avx2.o: SIMD_FLAGS = -mavx2 -mfma -mf16c -O3
$(BUILD)/obj/%_avx512.o: SIMD_FLAGS = -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -O3
# quantized dot products use VNNI (chosen at run time only where the CPU has it)
$(BUILD)/obj/src/kernels/quant_avx512.o: SIMD_FLAGS = -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512vnni -O3
$(BUILD)/obj/src/kernels/quant_r16_avx512.o: SIMD_FLAGS = -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512vnni -O3
# AArch64: NEON is baseline (the flag only states it); SDOT needs ARMv8.2's dotprod extension
$(BUILD)/obj/%_neon.o: SIMD_FLAGS = -march=armv8-a+simd -O3
$(BUILD)/obj/%_neon_dotprod.o: SIMD_FLAGS = -march=armv8.2-a+dotprod -O3
# SMMLA needs FEAT_I8MM (ARMv8.6, optional from 8.2)
$(BUILD)/obj/%_neon_i8mm.o: SIMD_FLAGS = -march=armv8.2-a+dotprod+i8mm -O3
$(BUILD)/obj/src/kernels/%.o: OPT = -O3

# CUDA backend (optional): build/libforge-cuda.so, which libforge dlopens at run time
# (src/backend/cuda_loader.c), so nothing else links CUDA and one binary runs everywhere.
# cudart is linked statically, cuBLAS dynamically (libcublas.so.13, found through RUNPATH
# $ORIGIN and $(CUDA_HOME)/lib64, or LD_LIBRARY_PATH); never libcuda. `make CUDA=1 cuda`
# also builds the GPU check programs of tests/cuda/ into build/cuda/ (see docs/cuda.md).
CUDA_HOME ?= /usr/local/cuda
CUDA_ARCH ?= sm_90
NVCC      ?= $(shell command -v nvcc 2>/dev/null || echo $(CUDA_HOME)/bin/nvcc)
CUDA_VIRT := $(subst sm_,compute_,$(CUDA_ARCH))
NVCCFLAGS := -O3 -std=c++17 -gencode arch=$(CUDA_VIRT),code=$(CUDA_ARCH) -gencode arch=$(CUDA_VIRT),code=$(CUDA_VIRT) \
             -Xcompiler -fPIC,-fvisibility=hidden,-Wall,-Wextra --Werror all-warnings -Iinclude -Isrc \
             -DFORGE_CUDA_ARCH=\"$(CUDA_ARCH)\"
CUDA_SRC  := $(wildcard src/backend/cuda/*.cu)
CUDA_OBJ  := $(CUDA_SRC:%.cu=$(BUILD)/obj/%.o)
CUDA_TOOLS := $(patsubst tests/cuda/%.c,$(BUILD)/cuda/%,$(wildcard tests/cuda/*.c))
ifeq ($(CUDA),1)
  CUDA_LIB := $(BUILD)/libforge-cuda.so $(CUDA_TOOLS)
endif

.PHONY: all test test-sets test-aarch64 asan fuzz bench install clean cuda cuda-emu
all: $(BUILD)/forge $(BUILD)/libforge.a $(BUILD)/$(SHLIB) $(CUDA_LIB)

# V=1 shows the full commands
Q := $(if $(filter 1,$(V)),,@)

$(BUILD)/obj/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS_ALL) $(SIMD_FLAGS) -MMD -MP -c $< -o $@

# The chat page of `forge serve` (src/server/webui/): scripts/embed.c, built and run here for
# the build machine, writes its files as C byte arrays (URL, Content-Type, file).
WEBUI_DIR    := src/server/webui
WEBUI_ASSETS := / "text/html; charset=utf-8" $(WEBUI_DIR)/index.html \
                /webui/app.js "text/javascript; charset=utf-8" $(WEBUI_DIR)/app.js \
                /webui/app.css "text/css; charset=utf-8" $(WEBUI_DIR)/app.css \
                /webui/icon.svg "image/svg+xml" $(WEBUI_DIR)/icon.svg
$(BUILD)/gen/embed: scripts/embed.c
	@mkdir -p $(dir $@)
	$(Q)$(HOST_CC) -std=c11 -O1 -Wall -Wextra -Werror -o $@ $<

$(BUILD)/gen/webui_assets.c: $(BUILD)/gen/embed $(wildcard $(WEBUI_DIR)/*) Makefile
	@$(if $(Q),echo "  GEN   $@")
	$(Q)$(BUILD)/gen/embed $@ $(WEBUI_ASSETS)

$(BUILD)/obj/gen/webui_assets.o: $(BUILD)/gen/webui_assets.c src/server/webui.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libforge.a: $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/$(SHLIB_REAL): $(LIB_OBJ)
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) $(SHLIB_LINK) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/$(SHLIB): $(BUILD)/$(SHLIB_REAL)
	$(Q)ln -sf $(SHLIB_REAL) $(BUILD)/$(SONAME)
	$(Q)ln -sf $(SONAME) $@

$(BUILD)/forge: $(CLI_OBJ) $(BUILD)/libforge.a
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) $(EXTRA_CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libforge.a $(LDLIBS_ALL)

$(BUILD)/tests/%: tests/%.c tests/test.h $(BUILD)/libforge.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST  $<")
	$(Q)$(CC) $(CFLAGS_ALL) -Itests -o $@ $< $(BUILD)/libforge.a $(LDLIBS_ALL)

# allocation fault injection: the library's allocations go through the test's counters
$(BUILD)/tests/fault/test_fault_alloc: EXTRA_LDFLAGS += -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc \
  -Wl,--wrap=aligned_alloc,--wrap=strdup,--wrap=strndup,--wrap=vasprintf

$(BUILD)/bench/%: bench/%.c $(BUILD)/libforge.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libforge.a $(LDLIBS_ALL)

test: all $(TEST_BIN)
	@BUILD=$(BUILD) bash tests/run.sh

# the whole suite once per kernel set (a set the CPU lacks falls back to the next lower one)
test-sets: all $(TEST_BIN)
	@set -e; for s in scalar avx2 avx512; do echo "== FORGE_CPU=$$s"; FORGE_CPU=$$s BUILD=$(BUILD) bash tests/run.sh; done

# the AArch64 cross build's tests under qemu-user (kernels, backend parity, engine, ...)
test-aarch64:
	bash scripts/ci-aarch64.sh

asan:
	$(MAKE) BUILD=build-asan OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  FORGE_SANITIZE=1 test

# libFuzzer targets: tests/fuzz/fuzz_*.c, each linked with an instrumented copy of the library.
FUZZ_SECONDS ?= 20
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
fuzz:
	$(MAKE) BUILD=build-fuzz CC=clang OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
	  build-fuzz/libforge.a
	@mkdir -p build-fuzz/fuzz
	@set -e; for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  clang $(filter-out $(EXTRA_CFLAGS),$(CFLAGS_ALL)) -O1 -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined -o build-fuzz/fuzz/$$n $$f build-fuzz/libforge.a $(LDLIBS_ALL); \
	  done
	@BUILD=build-fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh

bench: all $(BENCH_BIN)
	bash bench/run.sh

cuda: $(BUILD)/libforge-cuda.so $(CUDA_TOOLS)

$(BUILD)/obj/%.o: %.cu $(wildcard src/backend/cuda/*.h) include/forge.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC  $<")
	$(Q)$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(BUILD)/libforge-cuda.so: $(CUDA_OBJ)
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(NVCC) -shared -cudart static -o $@ $^ -lcublas -lrt -lpthread -ldl \
	  -Xlinker -rpath,'$$ORIGIN:$(CUDA_HOME)/lib64'

# The CPU emulator of the CUDA backend (tests/cuda/emu/): the same .cu sources compiled as
# host C++ against a fake runtime, so the kernels and the whole CUDA forward run here without
# a GPU (FORGE_CUDA_LIB=build/emu/libforge-cuda.so). Needs only the CUDA headers.
EMU_CXXFLAGS := -std=c++17 -O2 -g -fPIC -Wall -Wextra -Werror -Wno-unknown-pragmas -ffp-contract=off -DFORGE_CUDA_EMU \
                -include tests/cuda/emu/emu.h -isystem $(CUDA_HOME)/include -Iinclude -Isrc
cuda-emu: $(BUILD)/emu/libforge-cuda.so $(CUDA_TOOLS)
$(BUILD)/emu/libforge-cuda.so: $(CUDA_SRC) $(wildcard src/backend/cuda/*.h) $(wildcard tests/cuda/emu/*)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX   $@ (CUDA emulator)")
	$(Q)$(CXX) $(EMU_CXXFLAGS) -shared -o $@ -x c++ $(CUDA_SRC) -x none tests/cuda/emu/emu_runtime.cpp

# the GPU check programs: plain C on libforge.a; --as-needed keeps their dependencies to
# what they use, so scripts/gpu-bundle.sh has little to carry
$(BUILD)/cuda/%: tests/cuda/%.c $(wildcard tests/cuda/*.h) tests/test.h $(BUILD)/libforge.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS_ALL) -Itests -o $@ $< $(BUILD)/libforge.a -Wl,--as-needed $(LDLIBS_ALL)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(BUILD)/forge $(DESTDIR)$(PREFIX)/bin/forge
	install -m 644 $(BUILD)/libforge.a $(DESTDIR)$(PREFIX)/lib/libforge.a
	install -m 755 $(BUILD)/$(SHLIB_REAL) $(DESTDIR)$(PREFIX)/lib/$(SHLIB_REAL)
	ln -sf $(SHLIB_REAL) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/$(SHLIB)
	if [ -f $(BUILD)/libforge-cuda.so ]; then install -m 755 $(BUILD)/libforge-cuda.so $(DESTDIR)$(PREFIX)/lib/; fi
	install -m 644 include/forge.h $(DESTDIR)$(PREFIX)/include/forge.h
	install -d $(DESTDIR)$(PREFIX)/share/forge/models/stories260K
	install -m 644 models/stories260K/* $(DESTDIR)$(PREFIX)/share/forge/models/stories260K/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	  -e 's|@CORE_LIBS@|$(shell $(PKG_CONFIG) --libs $(CORE_DEPS))|' forge.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/forge.pc
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	  -e 's|@CORE_LIBS@|$(shell $(PKG_CONFIG) --libs $(CORE_DEPS))|' -e 's|@NET_LIBS@|$(shell $(PKG_CONFIG) --libs $(NET_DEPS))|' \
	  forge-server.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/forge-server.pc

clean:
	rm -rf build build-asan build-fuzz build-aarch64 build-portable

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
