# orch — build, test, benchmark.  `make check` is what CI runs.
#
# Sources are picked up by directory: every runtime/**.c goes into
# libruntime.a, common/*.c into libcommon.a, netd/*.c (but main.c) into
# libnetd.a, orchestrator/*/*.c into build/orch (its folders: compose/,
# build/, engine/, supervisor/, cli/).  A cmocka test is
# tests/unit/test_<name>.c; a shell suite is tests/e2e/<name>.sh.

CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. -fno-strict-aliasing
# One section per function, so that programs can drop what they never call
# (and the shared libraries only that code needed).
CFLAGS  += -ffunction-sections -fdata-sections
PKGS    := yaml-0.1 libnl-3.0 libnl-route-3.0 libnftables libcap libseccomp libarchive libcrypto ldns jansson libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libcurl is opened when a registry is first asked (runtime/registry/curl.c),
# not linked: loading it costs every command about 9 ms.
PKG_LIBS   := $(shell pkg-config --libs $(filter-out libcurl,$(PKGS)) 2>/dev/null)
CFLAGS  += $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -lpthread

B       := build
Q       := @

# Debian packages needed to build, test and run (make deps).
DEB_PKGS := build-essential pkg-config libyaml-dev libnl-3-dev libnl-route-3-dev \
	libnftables-dev nftables libcap-dev libseccomp-dev libcmocka-dev \
	libarchive-dev libssl-dev libldns-dev libjansson-dev libzstd-dev zstd \
	libcurl4-openssl-dev docker-registry skopeo apache2-utils curl openssl \
	busybox-static iproute2 umoci clang valgrind python3 procps util-linux \
	iputils-ping netcat-openbsd debootstrap lld uidmap libmd-dev \
	openssh-client git
# What only the tests need besides (make check installs them too): the
# checks of orch kube generate (tests/e2e/kube.sh).
TEST_PKGS := python3-yaml nodejs podman runc netavark aardvark-dns iptables catatonit

COMMON_SRC  := $(wildcard common/*.c common/*/*.c)
RUNTIME_SRC := $(filter-out runtime/main.c,$(wildcard runtime/*.c runtime/*/*.c))
NETD_SRC    := $(filter-out netd/main.c,$(wildcard netd/*.c))
ORCH_SRC    := $(filter-out orchestrator/supervisor/main.c,$(wildcard orchestrator/*/*.c))
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
HDRS        := $(wildcard */*.h */*/*.h)

all:

.SECONDEXPANSION:
obj = $(patsubst %.c,$(B)/$(1)/%.o,$(2))

all: $(B)/orch-runtime $(B)/orch $(B)/netd $(B)/orch-supervisor $(B)/rootfs/.done

# ---- objects: normal (obj) and sanitized (asan) ----------------------------
$(B)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
$(B)/asan/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -O1 $(SAN) -c -o $@ $<

$(B)/%/libcommon.a: $$(call obj,$$*,$(COMMON_SRC))
	$(Q)rm -f $@ && ar rcs $@ $^
$(B)/%/libruntime.a: $$(call obj,$$*,$(RUNTIME_SRC))
	$(Q)rm -f $@ && ar rcs $@ $^
$(B)/%/libnetd.a: $$(call obj,$$*,$(NETD_SRC))
	$(Q)rm -f $@ && ar rcs $@ $^

LIBS_obj  := $(B)/obj/libnetd.a $(B)/obj/libruntime.a $(B)/obj/libcommon.a
LIBS_asan := $(B)/asan/libnetd.a $(B)/asan/libruntime.a $(B)/asan/libcommon.a

# orch-runtime's start-up is on every container's start: lld's --gc-sections
# drops unused code before --as-needed decides, so the image store's
# archive and crypto libraries are not loaded for `run` (GNU ld keeps them).
$(B)/orch-runtime: $(B)/obj/runtime/main.o $(LIBS_obj)
	$(Q)$(CC) $(CFLAGS) -fuse-ld=lld -Wl,--gc-sections,--as-needed -o $@ $^ $(LDLIBS)
# The per-project supervisor stays resident: only what it uses is linked.
SUP_SRC := $(wildcard orchestrator/supervisor/*.c) orchestrator/engine/state.c \
	orchestrator/engine/ctrspec.c
$(B)/orch-supervisor: $(call obj,obj,$(SUP_SRC)) $(B)/obj/libnetd.a $(B)/obj/libruntime.a $(B)/obj/libcommon.a
	$(Q)$(CC) $(CFLAGS) -fuse-ld=lld -Wl,--gc-sections,--as-needed,-z,now -o $@ $^ $(LDLIBS)
# netd stays resident too; it loads libnftables itself, when it changes rules.
$(B)/netd: $(B)/obj/netd/main.o $(LIBS_obj)
	$(Q)$(CC) $(CFLAGS) -fuse-ld=lld -Wl,--gc-sections,--as-needed -o $@ $^ $(LDLIBS)
$(B)/orch: $(call obj,obj,$(ORCH_SRC)) $(LIBS_obj)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests link everything but the programs' main files.  The orchestrator's
# main.c is excluded so tests can link the orchestrator's logic.
ORCH_LIB_SRC := $(filter-out orchestrator/cli/main.c,$(ORCH_SRC))
$(B)/%/liborch.a: $$(call obj,$$*,$(ORCH_LIB_SRC))
	$(Q)rm -f $@ && ar rcs $@ $^
# The compose loader depends on common/ alone: its tests (and its fuzz
# target) link that folder and nothing else, which keeps it so.
COMPOSE_SRC := $(wildcard orchestrator/compose/*.c)
$(B)/%/libcompose.a: $$(call obj,$$*,$(COMPOSE_SRC))
	$(Q)rm -f $@ && ar rcs $@ $^

COMPOSE_UNIT := $(patsubst tests/unit/%.c,%,$(filter tests/unit/test_compose%,$(UNIT_SRC)))
$(COMPOSE_UNIT:%=$(B)/tests/%): $(B)/tests/%: $(B)/obj/tests/unit/%.o $(B)/obj/libcompose.a $(B)/obj/libcommon.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -lcmocka
$(COMPOSE_UNIT:%=$(B)/tests-asan/%): $(B)/tests-asan/%: $(B)/asan/tests/unit/%.o $(B)/asan/libcompose.a $(B)/asan/libcommon.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS) -lcmocka
$(B)/tests/%: $(B)/obj/tests/unit/%.o $(B)/obj/liborch.a $(LIBS_obj)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -lcmocka
$(B)/tests-asan/%: $(B)/asan/tests/unit/%.o $(B)/asan/liborch.a $(LIBS_asan)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS) -lcmocka

UNIT_BINS      := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
UNIT_ASAN_BINS := $(patsubst tests/unit/%.c,$(B)/tests-asan/%,$(UNIT_SRC))

# ---- the busybox fixture rootfs ---------------------------------------------
$(B)/rootfs/.done: tests/fixtures/make-rootfs.sh
	$(Q)tests/fixtures/make-rootfs.sh $(B)/rootfs $(B)/busybox-rootfs.tar
	@touch $@

# ---- targets ------------------------------------------------------------------
deps:
	@tools=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$tools" ]; then \
		echo "installing:" $$tools; \
		apt-get update -qq -o DPkg::Lock::Timeout=600 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 $$tools >/dev/null; \
	fi

test-deps:
	$(Q)$(MAKE) --no-print-directory deps DEB_PKGS="$(TEST_PKGS)"

unit: $(UNIT_BINS) $(UNIT_ASAN_BINS)
	$(Q)tests/run-unit.sh $(UNIT_BINS) $(UNIT_ASAN_BINS)

# The Debian base for the build tests: debootstrapped once on the host's
# network (the e2e suites run in network namespaces of their own).
$(B)/debian-bookworm.tar: examples/images/debian-base.sh
	$(Q)examples/images/debian-base.sh --tar-only >/dev/null

# The Kubernetes schemas and tools that check `orch kube generate`
# (tests/kube/package.json, versions pinned by its lock file), from the
# npm registry.
$(B)/kube-tools/.done: tests/kube/package.json tests/kube/package-lock.json tests/kube/validate.mjs
	@mkdir -p $(dir $@)
	$(Q)cp tests/kube/package.json tests/kube/package-lock.json tests/kube/validate.mjs $(dir $@)
	@# npm comes with some builds of nodejs, else in Debian's own package.
	$(Q)command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 npm >/dev/null
	$(Q)cd $(dir $@) && for i in 1 2 3; do \
		npm ci --no-audit --no-fund --loglevel=error >/dev/null && exit 0; sleep 5; \
	done; echo "npm ci failed 3 times (is the npm registry reachable?)" >&2; exit 1
	@touch $@

# Every suite runs with user namespaces (orch's default); those that make
# containers of every kind run again without (ORCH_USERNS=host).
E2E_HOSTNS := lifecycle lifecycle_links lifecycle_restart lifecycle_down \
	lifecycle_hooks build build_image compose_volumes compose_secrets ipv6 \
	security_devices
e2e: all $(B)/debian-bookworm.tar $(B)/kube-tools/.done
	$(Q)tests/run-e2e.sh $(filter-out tests/e2e/lib.sh,$(wildcard tests/e2e/*.sh))
	$(Q)ORCH_USERNS=host tests/run-e2e.sh $(E2E_HOSTNS:%=tests/e2e/%.sh)

# Folders depend downwards only, through public headers (tests/layering.sh).
layering:
	$(Q)tests/layering.sh --self-test

test: all
	$(Q)$(MAKE) --no-print-directory layering
	$(Q)$(MAKE) --no-print-directory unit
	$(Q)$(MAKE) --no-print-directory e2e

check: deps test-deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory test

# Not in check (CI runs it after check when it has the time): the suites
# that touch cgroups, devices, the supervisor or netd, and make demo, in a
# Debian 12 VM with systemd on cgroup v2 (tests/vm/; the image is built
# once under build/vm/, with DEB_PKGS preinstalled).
VM_DEB_PKGS := qemu-system-x86 e2fsprogs
# and inside the VM, to print the backtrace of any crash from its core.
VM_IMAGE_PKGS := gdb file dbus-user-session
check-vm:
	$(Q)$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) $(VM_DEB_PKGS)"
	$(Q)$(MAKE) --no-print-directory all
	$(Q)DEB_PKGS="$(DEB_PKGS) $(VM_IMAGE_PKGS)" tests/vm/check-vm.sh

fuzz:
	$(Q)tests/fuzz/run.sh $(FUZZ_SECONDS)

# The peers measured side by side (podman for pulls and builds).
BENCH_DEB_PKGS := podman podman-compose iperf3 slirp4netns uidmap crun
bench:
	$(Q)$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) $(BENCH_DEB_PKGS)"
	$(Q)$(MAKE) --no-print-directory all $(B)/debian-bookworm.tar
	$(Q)tests/bench/run.sh

# Not in check: CYCLES (200) cycles of up, faults and down on two stacks,
# with a leak census after each; SEED replays a run.
soak: all
	$(Q)CYCLES=$(or $(CYCLES),200) $(if $(SEED),SEED=$(SEED)) tests/soak/soak.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)examples/demo.sh

PREFIX ?= /usr/local
install: all
	install -D -m 0755 $(B)/orch $(DESTDIR)$(PREFIX)/bin/orch
	install -D -m 0755 $(B)/netd $(DESTDIR)$(PREFIX)/bin/orch-netd
	install -D -m 0755 $(B)/orch-runtime $(DESTDIR)$(PREFIX)/bin/orch-runtime
	install -D -m 0644 orchestrator/cli/orch.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/orch
	install -D -m 0755 $(B)/orch-supervisor $(DESTDIR)$(PREFIX)/bin/orch-supervisor

clean:
	rm -rf $(B)

.PHONY: all deps test-deps layering unit e2e test check check-vm fuzz bench soak demo install clean
.SECONDARY:

# ---- fuzz targets (clang, libFuzzer) -------------------------------------------
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -I. $(PKG_CFLAGS) -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined
FUZZ_LIB_SRC := $(COMMON_SRC) $(RUNTIME_SRC) $(NETD_SRC) $(ORCH_LIB_SRC)
# The compose loader's target links the loader and common/ alone.
build/fuzz/fuzz_compose: FUZZ_LIB_SRC := $(COMMON_SRC) $(COMPOSE_SRC)
build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB_SRC) $(LDLIBS)
