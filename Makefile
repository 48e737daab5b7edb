# ngx_http_usage_gate_module: build, demo and tests.
#
#   make run     set up, build, start the example app and nginx on :8080
#   make test    set up, build, run unit, fuzz-smoke and integration tests
#
# Both install what is missing first (scripts/setup.sh: apt-get, npm).

SHELL      := /bin/bash
TOP        := $(CURDIR)
BUILD      := $(TOP)/build
NGX_BUILD  := $(BUILD)/nginx
MODULE     := $(NGX_BUILD)/objs/ngx_http_usage_gate_module.so
ASAN_BUILD := $(BUILD)/nginx-asan
ASAN_MODULE := $(ASAN_BUILD)/objs/ngx_http_usage_gate_module.so
PYTHON     := /usr/bin/python3

CC         ?= cc
UG_CFLAGS  := -std=gnu99 -g -O1 -Wall -Wextra -Werror -Isrc
UG_LIBS    := -ljansson -lcrypto -lcurl
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)

UG_SRCS    = $(wildcard src/ug_*.c)
UNIT_SRCS  = $(wildcard t/unit/check_*.c)
UNIT_BINS  = $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))

.PHONY: all setup module run test unit integration fuzz fuzz-smoke asan \
        bench clean

all: module

setup:
	@scripts/setup.sh

module: setup
	@scripts/build-module.sh $(NGX_BUILD)

$(BUILD)/unit/%: t/unit/%.c $(UG_SRCS) $(wildcard src/*.h t/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(UG_CFLAGS) -It/unit -o $@ $< $(UG_SRCS) $(CHECK_LIBS) $(UG_LIBS)

unit: setup $(UNIT_BINS)
	@scripts/run-tests.sh unit $(UNIT_BINS)

integration: module
	@UG_MODULE=$(MODULE) scripts/run-tests.sh integration

fuzz-smoke: setup
	@scripts/fuzz.sh smoke

fuzz: setup
	@scripts/fuzz.sh long

test: module $(UNIT_BINS)
	@UG_MODULE=$(MODULE) scripts/run-tests.sh all $(UNIT_BINS)

asan: setup
	@scripts/build-module.sh $(ASAN_BUILD) "-fsanitize=address -fno-omit-frame-pointer"
	@UG_MODULE=$(ASAN_MODULE) UG_ASAN=1 scripts/run-tests.sh integration

run: module
	@UG_MODULE=$(MODULE) scripts/run-demo.sh

bench: module
	@UG_MODULE=$(MODULE) $(PYTHON) bench/bench.py

clean:
	rm -rf $(BUILD)
