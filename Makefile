# xvrrp — build, test, generate, demo, bench.
#
# `make test` and `make demo` install what they need from Debian's packages when it
# is missing (they run as root on the machines this project targets); Go modules
# come from the module proxy at the versions go.mod pins.

GO      ?= go
CLANG   ?= clang
# Pinned for reproducible objects: Debian 12's clang/llvm 14.
CFLAGS  := -O2 -g -Wall -Werror
export BPF_CLANG := $(CLANG)
export BPF_CFLAGS := $(CFLAGS)

APT_PACKAGES := clang llvm bpftool keepalived tcpdump iproute2 libbpf-dev nftables systemd prometheus
# One command or file per package above, to tell whether it is there.
APT_PROBES   := clang llvm-strip bpftool keepalived tcpdump ip /usr/include/bpf/bpf_helpers.h nft systemd-analyze promtool

FUZZTIME ?= 20s

.PHONY: all build test vet generate vmlinux demo bench fuzz deps clean install

all: build

COMMIT  := $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo +dirty)
LDFLAGS := -X main.commit=$(COMMIT)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/xvrrp ./cmd/xvrrp

# Installing the tools must start no service on the host (Debian starts the
# prometheus server that promtool comes with, and keepalived): policy-rc.d
# says so for the install, unless the host has one of its own, and the
# prometheus server we brought is not left enabled for the next boot.
deps:
	@missing=""; \
	for p in $(APT_PROBES); do \
		case $$p in /*) [ -e $$p ] ;; *) command -v $$p >/dev/null ;; esac || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages (missing:$$missing)"; \
		own=""; if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own=1; \
		fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
		rc=$$?; [ -z "$$own" ] || rm -f /usr/sbin/policy-rc.d; \
		case "$$missing " in *" promtool "*) systemctl disable prometheus >/dev/null 2>&1 || true ;; esac; \
		exit $$rc; \
	fi

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt would change:"; echo "$$out"; exit 1; }

# Every test, privileged ones included: they need root and fail (not skip) when
# CI=true and the kernel or privileges are missing.
test: deps vet build
	$(GO) test -count=1 -timeout 30m ./...

# Coverage-guided runs of every fuzz target, FUZZTIME each (`make test` runs only
# their seed corpora); CI runs it after the tests. Targets are found in the
# sources, so that listing them builds nothing and a new one is never missed.
# Each costs FUZZTIME and a build: at 20s, the few we have take minutes of CI's 90.
fuzz:
	@set -e; for file in $$(git grep -l '^func Fuzz' -- '*_test.go'); do \
		for f in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
			echo "fuzz ./$$(dirname $$file) $$f for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./$$(dirname $$file); \
		done; \
	done

# Rebuilds the BPF objects with bpf2go from bpf/*.c and the committed vmlinux.h.
# vmlinux.h is a pinned input: generate never reads the running kernel, so the
# objects are the same on every machine of this kind, whatever its kernel build.
generate: deps
	$(GO) generate ./...

# Refreshes vmlinux.h from this machine's kernel BTF. Only on purpose: commit the
# result with the objects `make generate` then rebuilds from it.
vmlinux: deps
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h.tmp
	mv vmlinux.h.tmp vmlinux.h

demo: deps build
	./bin/xvrrp demo

bench:
	$(GO) test -run XXX -bench . -benchmem ./...

# The binary, the systemd unit and the manual page, where they usually go.
PREFIX ?= /usr/local
install: build
	install -D -m 0755 bin/xvrrp $(DESTDIR)$(PREFIX)/sbin/xvrrp
	install -D -m 0644 deploy/xvrrp.service $(DESTDIR)/etc/systemd/system/xvrrp.service
	install -D -m 0644 docs/xvrrp.8 $(DESTDIR)$(PREFIX)/share/man/man8/xvrrp.8

clean:
	rm -rf bin
