# tests/fuzz/fuzz.mk: libFuzzer targets (included by the top Makefile).
#
#   make fuzz-build     build every target in $(FUZZ_BUILD) with clang
#                       -fsanitize=fuzzer,address,undefined, from the sources
#   make fuzz           tests/fuzz/run.sh $(FUZZ_SECONDS): regressions first,
#                       then each target for FUZZ_SECONDS (default 300)
#   make fuzz-short     the same for 60 s each (make test runs this: tests/run.sh fuzz)
#
# The sources are compiled again here (not $(CORE_LIB)): libFuzzer needs
# every file instrumented for coverage, and ASan/UBSan see the core's own
# bugs. One object set serves all targets; fuzz_<name>.c holds the entry
# point. Debian packages: clang and libclang-rt-14-dev (tools/deps.sh test).
# Variables: FUZZ_CC=clang  FUZZ_SECONDS=300  FUZZ_BUILD=build/fuzz

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 300
FUZZ_BUILD   ?= build/fuzz
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS   = -std=gnu11 -g -O1 -fno-math-errno -fno-strict-aliasing -pthread -MMD -MP \
                -Wall -Wextra -Wno-unused-parameter $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_CPPFLAGS = -I$(GEN) -Icore -Ifcgi -DNF_FUZZ_ROOT='"$(abspath .)"'
FUZZ_LIBS     = -ljson-c -lconfig -lprotobuf-c -ldl -lm -pthread

FUZZ_NAMES   = json csv jsonl lambda_event config onnx
FUZZ_SRC     = $(wildcard core/*.c core/ops/*.c) $(filter-out fcgi/main.c,$(wildcard fcgi/*.c)) fcgi/lambda/event.c
FUZZ_OBJ     = $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_SRC)) $(FUZZ_BUILD)/obj/gen/onnx.pb-c.o
FUZZ_BINS    = $(patsubst %,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_NAMES))

.PHONY: fuzz fuzz-short fuzz-build
# objects made through the fuzz_% pattern rule are kept (not intermediate)
.SECONDARY: $(FUZZ_OBJ)
fuzz-build: $(FUZZ_BINS)

fuzz:
	FUZZ_BUILD=$(FUZZ_BUILD) tests/fuzz/run.sh $(FUZZ_SECONDS)

fuzz-short:
	FUZZ_BUILD=$(FUZZ_BUILD) tests/fuzz/run.sh 60

$(FUZZ_BUILD)/obj/gen/onnx.pb-c.o: $(GEN)/onnx.pb-c.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -w -c -o $@ $<

$(FUZZ_BUILD)/obj/%.o: %.c $(GEN)/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(FUZZ_LIBS)

-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
