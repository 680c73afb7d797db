# SPDX-License-Identifier: MIT
#
# dstack-p2p: a plain Makefile in the style of wireguard-tools and iproute2.
#
#   make            build the library, the agent/CLI and the guest-agent simulator
#   make check      install what is missing, build, run every test suite
#   make demo       a local multi-node mesh on anvil and the simulator (N=3)
#   make demo-counter  a replicated counter through a leader failover (N=3; N=5 works)
#   make demo-db    the same with Redis primary/replica following the contract's leader
#   make bench      benchmarks; figures are printed, never asserted
#   make image      the agent's OCI image (build/image/dstack-p2p.oci.tar), no docker needed
#   make install    PREFIX=/usr/local DESTDIR= (the agent/CLI, library, header, man pages,
#                   the dashboard's page and the contract artifacts `cluster deploy` sends)
#   make contracts  the contract artifacts (forge build; forge is node_modules/.bin/forge)
#   make install-sim  the guest-agent simulator, for development and tests only
#
# Variables: V=1 (show commands), SANITIZE=address,undefined, CC, CFLAGS, PKG_CONFIG.

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/dstack-p2p
# What the CLI reads at run time: the `cluster serve` page (web/) and the artifacts of the
# contracts `cluster deploy` and `cluster deploy-kms` send (contracts/out/). A binary built in
# a checkout prefers the checkout's own.
DATADIR ?= $(PREFIX)/share/dstack-p2p
WEBDIR ?= $(DATADIR)/web
CONTRACTSDIR ?= $(DATADIR)/contracts
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
PKG_CONFIG ?= pkg-config
CC ?= cc
OBJCOPY ?= objcopy
FUZZ_CC ?= clang
SANITIZE ?=
O ?= build

# The release is the VERSION file; a build from git says which commit and whether the tree
# was modified (0.1.0-g6bed044-dirty); a tagged release (v0.1.0) is its tag. Without git
# (a docker build, a tarball) it is VERSION alone.
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --exact-match --dirty 2>/dev/null | sed 's/^v//' || true)
ifeq ($(VERSION),)
override VERSION := $(shell cat VERSION 2>/dev/null || echo unknown)$(shell git describe --always --dirty --abbrev=7 2>/dev/null | sed 's/^/-g/')
endif
SOVERSION := 0

ifeq ($(V),1)
Q :=
quiet = @true
else
Q := @
quiet = @printf '  %-7s %s\n'
MAKEFLAGS += --no-print-directory
endif

PKGS := libmnl libcurl libsecp256k1 hogweed nettle libssl libcrypto

WARNINGS := -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wshadow -Wformat=2 \
	    -Wno-unused-parameter -Wvla -Wdeclaration-after-statement
CFLAGS ?= -O2 -g
override CFLAGS += -std=gnu11 $(WARNINGS) -fPIC -fvisibility=hidden -I. \
	-D_GNU_SOURCE -DDSTACK_P2P_VERSION='"$(VERSION)"' -DDSTACK_P2P_WEBDIR='"$(WEBDIR)"' \
	-DDSTACK_P2P_CONTRACTSDIR='"$(CONTRACTSDIR)"' \
	$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null) -MMD -MP
# Debian's libcurl flavours share one API. The GnuTLS one (libcurl3-gnutls) keeps OpenSSL
# out of the agent's resident pages (libssh2 still maps it, see net/http.c): a process
# that only loads and initialises it is 7.4 MB RSS against 9.8 MB with the OpenSSL one
# (docs/memory.md). Linked by its file name, as it ships no development symlink;
# CURL_LIBS=-lcurl builds with the default flavour.
CURL_LIBS ?= $(if $(filter /%,$(shell $(CC) -print-file-name=libcurl-gnutls.so.4)),-l:libcurl-gnutls.so.4,-lcurl)
LDLIBS += $(filter-out -lcurl,$(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)) $(CURL_LIBS) -lpthread
ifneq ($(SANITIZE),)
override CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=$(SANITIZE)
endif

# Each module is one folder with one header that is its whole interface.
MODULES := common net crypto chain attest registry ops netlink relay dns mesh api
LIB_SRCS := $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(O)/%.o)
CLI_SRCS := $(wildcard cli/*.c)
CLI_OBJS := $(CLI_SRCS:%.c=$(O)/%.o)
SIM_SRCS := $(wildcard attest/sim/*.c)
SIM_OBJS := $(SIM_SRCS:%.c=$(O)/%.o)
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(O)/%.o)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz-*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(O)/fuzz/%)
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(O)/bench/%)
# LD_PRELOAD observers the benchmarks run wg(8) and our tools under.
BENCH_PRELOADS := $(patsubst bench/preload/%.c,$(O)/bench/%.so,$(wildcard bench/preload/*.c))
MAN_PAGES := $(wildcard docs/man/*.[1-8])

# Two libraries. The internal one (every module) is what the agent, the CLI and the
# tests link. The app library, libdstack-p2p, is the C API and the control socket's
# client only: libc and pthreads, exporting only dstack_p2p_* (docs/api.md).
INTERNAL_LIB := $(O)/libdstack-p2p-internal.a
APP_SRCS := $(wildcard api/*.c) common/buf.c common/hex.c common/json.c common/unix.c common/util.c
APP_OBJS := $(APP_SRCS:%.c=$(O)/%.o)
APP_LDLIBS := -lpthread
STATIC_LIB := $(O)/libdstack-p2p.a
SHARED_LIB := $(O)/libdstack-p2p.so.$(SOVERSION)
PROGRAMS := $(O)/dstack-p2p $(if $(SIM_SRCS),$(O)/dstack-sim)
# What `make install` puts on a production machine: no simulator (make install-sim).
SIM_MAN := docs/man/dstack-sim.1
PROD_MAN_PAGES := $(filter-out $(SIM_MAN),$(MAN_PAGES))
DOCS := $(wildcard docs/*.md)
UNIT_TESTS := $(O)/tests/unit-tests

all: $(INTERNAL_LIB) $(STATIC_LIB) $(SHARED_LIB) $(PROGRAMS)

$(O)/%.o: %.c
	@mkdir -p $(@D)
	$(quiet) CC $@
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(INTERNAL_LIB): $(LIB_OBJS)
	$(quiet) AR $@
	$(Q)rm -f $@ && $(AR) rcs $@ $^

# One relocatable object whose hidden symbols are made local: a static link exposes
# only dstack_p2p_* too, so buf_init or json_parse never clash with an app's own.
$(O)/libdstack-p2p.o: $(APP_OBJS)
	$(quiet) LD $@
	$(Q)$(CC) -r -nostdlib -o $@.tmp $^ && $(OBJCOPY) --localize-hidden $@.tmp $@ && rm -f $@.tmp

$(STATIC_LIB): $(O)/libdstack-p2p.o
	$(quiet) AR $@
	$(Q)rm -f $@ && $(AR) rcs $@ $^

# --no-undefined: anything the app objects need beyond libc and pthreads fails the link.
$(SHARED_LIB): $(APP_OBJS)
	$(quiet) LD $@
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,-soname,libdstack-p2p.so.$(SOVERSION) -Wl,--no-undefined \
		-Wl,--as-needed -o $@ $^ $(APP_LDLIBS)
	$(Q)ln -sf libdstack-p2p.so.$(SOVERSION) $(O)/libdstack-p2p.so

$(O)/dstack-p2p: $(CLI_OBJS) $(INTERNAL_LIB)
	$(quiet) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CLI_OBJS) $(INTERNAL_LIB) $(LDLIBS)

# The objects that print the version are rebuilt when it changes (a new commit, a
# modified tree), not only when their source does.
$(O)/version.stamp: FORCE
	@mkdir -p $(@D)
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' >$@
$(O)/cli/dstack-p2p.o $(O)/attest/sim/dstack-sim.o: $(O)/version.stamp
# And those that name the installed data (the page, the contract artifacts) when WEBDIR,
# CONTRACTSDIR (or PREFIX) change.
$(O)/webdir.stamp: FORCE
	@mkdir -p $(@D)
	@echo '$(WEBDIR) $(CONTRACTSDIR)' | cmp -s - $@ || echo '$(WEBDIR) $(CONTRACTSDIR)' >$@
$(O)/cli/cmd-cluster.o $(O)/cli/cmd-cluster-serve.o $(O)/cli/cmd-cluster-deploy.o: $(O)/webdir.stamp
FORCE:

$(O)/dstack-sim: $(SIM_OBJS) $(INTERNAL_LIB)
	$(quiet) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $(SIM_OBJS) $(INTERNAL_LIB) $(LDLIBS)

# The pkg-config file is written at install time so it names the PREFIX installed to;
# libdir and includedir under PREFIX are written ${prefix}-relative, so a tool that moves
# the tree (pkg-config --define-prefix, a relocated SDK) moves them too.
pc_dir = $(if $(filter $(PREFIX)/%,$(1)),$${prefix}/$(patsubst $(PREFIX)/%,%,$(1)),$(1))
define PC_FILE
prefix=$(PREFIX)
libdir=$(call pc_dir,$(LIBDIR))
includedir=$(call pc_dir,$(INCLUDEDIR))

Name: dstack-p2p
Description: peers of a dstack TEE WireGuard mesh, for apps
Version: $(VERSION)
Libs: -L$${libdir} -ldstack-p2p
Libs.private: $(APP_LDLIBS)
Cflags: -I$${includedir}
endef
export PC_FILE

# ---- tests ------------------------------------------------------------------------

# criterion's assertion macros declare after statements: the unit tests are exempt.
$(UNIT_OBJS): override CFLAGS += -Wno-declaration-after-statement

$(UNIT_TESTS): $(UNIT_OBJS) $(INTERNAL_LIB)
	@mkdir -p $(@D)
	$(quiet) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $(UNIT_OBJS) $(INTERNAL_LIB) $(LDLIBS) \
	  $(shell $(PKG_CONFIG) --libs criterion 2>/dev/null)

# Fuzz targets: the library rebuilt with clang + libFuzzer + ASan/UBSan.
FUZZ_CFLAGS := -std=gnu11 -g -O1 -I. -D_GNU_SOURCE -DDSTACK_P2P_VERSION='"$(VERSION)"' \
	-fsanitize=fuzzer-no-link,address,undefined $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(O)/fuzz-obj/%.o)
$(O)/fuzz-obj/%.o: %.c
	@mkdir -p $(@D)
	$(quiet) FUZZCC $@
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<
$(O)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_OBJS)
	@mkdir -p $(@D)
	$(quiet) FUZZLD $@
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJS) $(LDLIBS)

$(O)/bench/%: bench/%.c $(INTERNAL_LIB)
	@mkdir -p $(@D)
	$(quiet) LD $@
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(INTERNAL_LIB) $(LDLIBS)

$(O)/bench/%.so: bench/preload/%.c
	@mkdir -p $(@D)
	$(quiet) LD $@
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -shared -o $@ $< -ldl

tests: $(UNIT_TESTS)
fuzz: $(FUZZ_BINS)

deps:
	$(Q)scripts/deps.sh

# Every suite prints its own runner's summary; tests/check.sh adds one line per suite
# and fails when a suite fails or silently ran nothing.
check: deps-image
	$(Q)$(MAKE) check-build
	$(Q)O=$(O) PREFIX=$(CHECK_PREFIX) tests/check.sh $(CHECK_SUITES)

# Everything the suites run, built once before any starts, so that no test script builds
# (scripts that call make find it up to date, and never build at the same time as the
# others run it): the plain tree with the VM's and test-netlink-uapi's helpers, the fuzz
# targets, and the unit tests, agent and simulator again with the sanitizers in
# $(ASAN_O) (suite asan). Built for PREFIX=/usr, the prefix the install tests use: any
# other would make their `make install PREFIX=/usr` relink the agent under the feet of
# the scripts running beside them (the web folder is compiled in). Both builds use every
# core unless make was given -j.
ASAN_O := $(O)/asan
CHECK_PREFIX := /usr
CHECK_BINS := all tests fuzz $(O)/bench/netlink-wgtool $(O)/bench/dns-serve $(O)/bench/wg-call-window.so
CHECK_J = $(if $(filter -j%,$(MAKEFLAGS)),,-j$(shell nproc 2>/dev/null || echo 2))
check-build:
	$(Q)$(MAKE) $(CHECK_J) PREFIX=$(CHECK_PREFIX) $(CHECK_BINS)
	$(Q)$(MAKE) $(CHECK_J) PREFIX=$(CHECK_PREFIX) O=$(ASAN_O) SANITIZE=address,undefined all tests

# The host suite runs the agent from its container image (tests/host/test-image.sh).
deps-image:
	$(Q)scripts/deps.sh image

check-host: deps-image
	$(Q)$(MAKE) check-build
	$(Q)O=$(O) PREFIX=$(CHECK_PREFIX) tests/check.sh host

check-%: deps
	$(Q)$(MAKE) check-build
	$(Q)O=$(O) PREFIX=$(CHECK_PREFIX) tests/check.sh $*

demo: deps all
	$(Q)netns-harness/demo.sh $(if $(N),$(N),3)

demo-counter: deps all
	$(Q)netns-harness/demo-counter.sh $(if $(N),$(N),3)

demo-db: deps all
	$(Q)DB=1 netns-harness/demo-counter.sh $(if $(N),$(N),3)

bench: deps all $(BENCH_BINS) $(BENCH_PRELOADS)
	$(Q)bench/run.sh

print-version:
	@echo '$(VERSION)'

# The container image: mmdebstrap + a deterministic OCI archive (scripts/image.sh); it
# installs only what building it needs, not the test toolchain.
image:
	$(Q)scripts/deps.sh image-build
	$(Q)scripts/image.sh

# ---- contracts ----------------------------------------------------------------------

# What `cluster deploy` and `cluster deploy-kms` send, built by forge from node_modules
# (make deps-image installs it; solc-js, no network). One forge run makes both.
FORGE ?= node_modules/.bin/forge
CONTRACT_NAMES := DstackClusterNFT LocalDstackKms
CONTRACT_ARTIFACTS := $(foreach n,$(CONTRACT_NAMES),contracts/out/$(n).sol/$(n).json)
contracts: $(CONTRACT_ARTIFACTS)
$(CONTRACT_ARTIFACTS) &: $(wildcard contracts/src/*.sol) contracts/foundry.toml
	@[ -x $(FORGE) ] || { echo "make contracts: $(FORGE) missing: run make deps-image (npm ci) first" >&2; exit 1; }
	$(quiet) FORGE contracts/out
	$(Q)cd contracts && flock .forge.lock ../$(FORGE) build $(if $(V),,--quiet)
	$(Q)touch $(CONTRACT_ARTIFACTS)

# ---- install ----------------------------------------------------------------------

# Man pages point at the docs where they are installed ($(DOCDIR)), and name the
# simulator as a page only where it is installed too. install_man PAGES, SED ARGS
install_man = for m in $(1); do \
	sed -e 's|docs/\([A-Za-z0-9_-]*\.md\)|$(DOCDIR)/\1|g' $(2) $$m >$(DESTDIR)$(MANDIR)/man1/$${m\#\#*/} && \
	chmod 0644 $(DESTDIR)$(MANDIR)/man1/$${m\#\#*/} || exit 1; done
NO_SIM_PAGE := -e 's|^\.BR dstack-sim (1)\(.*\)$$|.BR dstack-sim " (make install-sim)\1"|'

install: $(O)/dstack-p2p $(STATIC_LIB) $(SHARED_LIB) $(CONTRACT_ARTIFACTS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DOCDIR)
	install -m 0755 $(O)/dstack-p2p $(DESTDIR)$(BINDIR)/
	install -m 0644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/
	install -m 0755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libdstack-p2p.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libdstack-p2p.so
	printf '%s\n' "$$PC_FILE" > $(DESTDIR)$(PKGCONFIGDIR)/dstack-p2p.pc
	$(if $(wildcard api/dstack-p2p.h),install -m 0644 api/dstack-p2p.h $(DESTDIR)$(INCLUDEDIR)/)
	install -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	$(call install_man,$(PROD_MAN_PAGES),$(NO_SIM_PAGE))
	install -d $(DESTDIR)$(WEBDIR)
	install -m 0644 web/index.html web/app.js web/style.css $(DESTDIR)$(WEBDIR)/
	install -d $(DESTDIR)$(CONTRACTSDIR)
	install -m 0644 $(CONTRACT_ARTIFACTS) $(DESTDIR)$(CONTRACTSDIR)/

# The guest-agent simulator: for development and tests, never on a production machine.
install-sim: $(O)/dstack-sim install
	install -m 0755 $(O)/dstack-sim $(DESTDIR)$(BINDIR)/
	$(call install_man,$(MAN_PAGES),)

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(PROGRAMS)))
	rm -f $(DESTDIR)$(LIBDIR)/libdstack-p2p.a $(DESTDIR)$(LIBDIR)/libdstack-p2p.so \
	      $(DESTDIR)$(LIBDIR)/libdstack-p2p.so.$(SOVERSION)
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/dstack-p2p.pc $(DESTDIR)$(INCLUDEDIR)/dstack-p2p.h
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN_PAGES)))
	rm -rf $(DESTDIR)$(DOCDIR) $(DESTDIR)$(WEBDIR) $(DESTDIR)$(CONTRACTSDIR)
	rmdir $(DESTDIR)$(DATADIR) 2>/dev/null || true

clean:
	rm -rf $(O)

.PHONY: all tests fuzz deps deps-image check check-build check-host demo demo-counter demo-db bench image print-version contracts install install-sim uninstall clean FORCE
.DELETE_ON_ERROR:
# Keep the fuzz build objects: they are intermediates of a pattern chain.
.SECONDARY: $(FUZZ_LIB_OBJS)

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(SIM_OBJS:.o=.d) $(UNIT_OBJS:.o=.d)
