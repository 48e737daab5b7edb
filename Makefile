# ngx_http_usage_gate_module: build, demo, tests and package.
#
#   make run     set up, build, start the example app and nginx on :8080
#   make test    set up, build, run unit, fuzz-smoke and integration tests
#   make deb     build/deb/libnginx-mod-http-usage-gate_<version>_<arch>.deb
#
# Each target installs what it needs and is missing first
# (t/tools/setup.sh: apt-get, and npm for the test servers).  No tool flag
# is computed when this file is read: variables that ask pkg-config are
# expanded only when a recipe runs, after setup has installed the package.

SHELL      := /bin/bash
TOP        := $(CURDIR)
BUILD      := $(TOP)/build
NGX_BUILD  := $(BUILD)/nginx
MODULE     := $(NGX_BUILD)/objs/ngx_http_usage_gate_module.so
ASAN_BUILD := $(BUILD)/nginx-asan
ASAN_MODULE := $(ASAN_BUILD)/objs/ngx_http_usage_gate_module.so
DEB_DIR    := $(BUILD)/deb
PYTHON     := /usr/bin/python3
TOOLS      := t/tools

CC         ?= cc
UG_CFLAGS  := -std=gnu99 -g -O1 -Wall -Wextra -Werror -Isrc
UG_LIBS    := -ljansson -lcrypto -lcurl
CHECK_LIBS  = $(shell pkg-config --libs check)

UG_SRCS    = $(wildcard src/ug_*.c)
UNIT_SRCS  = $(wildcard t/unit/check_*.c)
UNIT_BINS  = $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))

.PHONY: all setup setup-build setup-run setup-deb module run test unit \
        integration fuzz fuzz-smoke asan bench deb clean

all: module

setup:
	@$(TOOLS)/setup.sh test

setup-build:
	@$(TOOLS)/setup.sh build

setup-run:
	@$(TOOLS)/setup.sh run

setup-deb:
	@$(TOOLS)/setup.sh deb

module: setup-build
	@$(TOOLS)/build-module.sh $(NGX_BUILD)

$(BUILD)/unit/%: t/unit/%.c $(UG_SRCS) $(wildcard src/*.h t/unit/*.h) | setup
	@mkdir -p $(dir $@)
	$(CC) $(UG_CFLAGS) -It/unit -o $@ $< $(UG_SRCS) $(CHECK_LIBS) $(UG_LIBS)

unit: setup $(UNIT_BINS)
	@$(TOOLS)/run-tests.sh unit $(UNIT_BINS)

integration: setup module
	@UG_MODULE=$(MODULE) $(TOOLS)/run-tests.sh integration

fuzz-smoke: setup
	@$(TOOLS)/fuzz.sh smoke

fuzz: setup
	@$(TOOLS)/fuzz.sh long

test: setup module $(UNIT_BINS)
	@UG_MODULE=$(MODULE) $(TOOLS)/run-tests.sh all $(UNIT_BINS)

asan: setup
	@$(TOOLS)/build-module.sh $(ASAN_BUILD) "-fsanitize=address -fno-omit-frame-pointer"
	@UG_MODULE=$(ASAN_MODULE) UG_ASAN=1 $(TOOLS)/run-tests.sh integration

run: setup-run module
	@UG_MODULE=$(MODULE) $(TOOLS)/run-demo.sh

bench: setup module
	@UG_MODULE=$(MODULE) $(PYTHON) t/bench/bench.py

deb: setup-deb
	@$(TOOLS)/build-deb.sh $(DEB_DIR)

clean:
	rm -rf $(BUILD)
