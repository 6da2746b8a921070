# nginfer: build, run and test. Plain make; see README.md.
#   make            build the core library, the worker and the tests
#   make run        install missing Debian packages, build, serve models/default.onnx on 127.0.0.1:8080
#   make test       install test dependencies, build, run every test (with 60 s of fuzzing per
#                   target and the sanitizer build); ends with "N passed, N failed, N skipped"
#   make fuzz       each libFuzzer target for FUZZ_SECONDS (300); make fuzz-short: 60 s
#   make bench      benchmark against Flask+gunicorn, ONNX Runtime and the nginx->FastCGI limit
#   make soak       tests/e2e/test_soak.sh for 10 minutes (SOAK_SECONDS=600)
#   make model      remake models/default.onnx from scikit-learn's diabetes data
# Variables: MODEL=path.onnx PORT=8080 WORKERS=N CONFIG=conf/nginfer.cfg SANITIZE=1

CC      ?= gcc
OPT     ?= -O2
CFLAGS  += -std=gnu11 -g $(OPT) -fno-math-errno -Wall -Wextra -Wno-unused-parameter -Wno-psabi -fno-strict-aliasing -pthread -MMD -MP
LDLIBS_CORE = -lprotobuf-c -ldl -lm -pthread

ifeq ($(SANITIZE),1)
BUILD   ?= build/san
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# Both runtimes linked in: with gcc's shared libubsan next to libasan,
# UBSan ignores UBSAN_OPTIONS=log_path and prints to stderr, where a
# worker's report would vanish into the service log; static, ASan and UBSan
# each write the report files tests/run.sh san counts. (clang-14's ASan
# runtime crashes at start in some of our binaries with Debian 12's glibc
# 2.36, in dlsym: gcc it is.)
LDFLAGS += -fsanitize=address,undefined -static-libasan -static-libubsan
else
BUILD   ?= build
endif

PROTO   ?= /usr/include/onnx/onnx.proto
GEN      = $(BUILD)/gen
CPPFLAGS += -I$(GEN) -Icore

CORE_SRC = $(wildcard core/*.c core/ops/*.c)
CORE_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(CORE_SRC)) $(GEN)/onnx.pb-c.o
CORE_LIB = $(BUILD)/libnfcore.a

APP_SRC  = $(filter-out fcgi/main.c,$(wildcard fcgi/*.c))
APP_OBJ  = $(patsubst %.c,$(BUILD)/%.o,$(APP_SRC))
WORKER   = $(BUILD)/nginfer-worker

LAMBDA_SRC = $(wildcard fcgi/lambda/*.c)
LAMBDA_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(LAMBDA_SRC))
LAMBDA   = $(BUILD)/nginfer-lambda

UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
CONF_BIN = $(BUILD)/tests/nf-conformance

PORT    ?=
WORKERS ?=
MODEL   ?=
CONFIG  ?= conf/nginfer.cfg

.PHONY: all run test deps deps-test model clean unit conformance e2e bench soak
all: $(CORE_LIB) $(WORKER) $(UNIT_BIN) $(CONF_BIN) $(if $(LAMBDA_SRC),$(LAMBDA))

$(GEN)/onnx.pb-c.c $(GEN)/onnx.pb-c.h &: $(PROTO)
	@mkdir -p $(GEN)
	cp $(PROTO) $(GEN)/onnx.proto
	cd $(GEN) && protoc-c --c_out=. onnx.proto

$(GEN)/onnx.pb-c.o: $(GEN)/onnx.pb-c.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -w -c -o $@ $<

$(BUILD)/%.o: %.c $(GEN)/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(CORE_LIB): $(CORE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(WORKER): $(BUILD)/fcgi/main.o $(APP_OBJ) $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ -lfcgi -ljson-c -lconfig $(LDLIBS_CORE)

$(LAMBDA): $(LAMBDA_OBJ) $(APP_OBJ) $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ -ljson-c -lconfig $(LDLIBS_CORE)

$(BUILD)/tests/%: tests/unit/%.c $(APP_OBJ) $(CORE_LIB) $(GEN)/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(APP_OBJ) $(CORE_LIB) -ljson-c -lconfig $(LDLIBS_CORE)

$(CONF_BIN): tests/conformance/runner.c $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE_LIB) $(LDLIBS_CORE)

deps:
	tools/deps.sh run

deps-test:
	tools/deps.sh test

run: deps all
	exec tools/nginfer-serve -c $(CONFIG) -b $(BUILD) $(if $(MODEL),-m $(MODEL)) $(if $(PORT),-p $(PORT)) $(if $(WORKERS),-w $(WORKERS))

# make test: every suite, the libFuzzer runs and the sanitizer build
# included (tests/run.sh); make test SANITIZE=1: the sanitizer suite alone,
# against build/san.
test: deps-test all
ifeq ($(SANITIZE),1)
	SAN_BUILD=$(BUILD) BUILD=$(BUILD) tests/run.sh san
else
	BUILD=$(BUILD) tests/run.sh
endif

unit: all
	BUILD=$(BUILD) tests/run.sh unit

conformance: all
	BUILD=$(BUILD) tests/run.sh conformance

e2e: all
	BUILD=$(BUILD) tests/run.sh e2e

bench: all
	tools/deps.sh bench
	BUILD=$(BUILD) bench/run.sh

SOAK_SECONDS ?= 600
soak: deps-test all
	SOAK_SECONDS=$(SOAK_SECONDS) BUILD=$(BUILD) bash tests/e2e/test_soak.sh

model:
	/usr/bin/python3 tools/make_default_model.py

clean:
	rm -rf build

# packaging targets of the deploy targets (make image, make lambda-zip)
-include docker/docker.mk fcgi/lambda/lambda.mk tests/fuzz/fuzz.mk

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
