# capkv — plain Makefile. `make` builds build/capkv; `make test` runs every check.
# Variables: WERROR=1 turns warnings into errors (CI sets it); BUILD=dir changes the output;
# SAN adds sanitizer flags (see `sanitize`).

CC       ?= cc
BUILD    ?= build
OPT      ?= -O2
WARN     := -Wall -Wextra -Wshadow -Wconversion -Wstrict-prototypes -Wimplicit-fallthrough \
            -Wformat=2 -Wvla -Wno-missing-field-initializers
ifeq ($(WERROR),1)
WARN     += -Werror
endif
SAN      ?=
CFLAGS   := -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) $(SAN) -Isrc -MMD -MP
LDLIBS   := -luv -linih -lxxhash -lpthread -lm
TEST_LIBS := -lcmocka

# Every source below src/ except the program's entry point goes into a library that the
# binary, the unit tests and the fuzz targets share. The simulator (sim/) is linked into
# capkv-sim, lincheck and the unit tests only: build/capkv carries none of it.
LIB_SRC  := $(sort $(shell find src -name '*.c' ! -path 'src/cli/main.c'))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
SIM_SRC  := $(sort $(wildcard sim/*.c))
SIM_OBJ  := $(SIM_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/src/cli/main.o
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_HELPERS := $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c))
UNIT_HELPER_OBJ := $(UNIT_HELPERS:%.c=$(BUILD)/obj/%.o)

.SECONDARY:

.PHONY: all test unit sanitize integration fuzz fuzz-build tidy demo bench format clean deps \
        sim sim-seeds

all: $(BUILD)/capkv $(BUILD)/lincheck $(BUILD)/capkv-sim

$(BUILD)/capkv: $(LIB_OBJ) $(MAIN_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/capkv-sim: $(BUILD)/obj/sim/main/capkv_sim.o $(SIM_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/lincheck: $(BUILD)/obj/tools/lincheck_main.o $(SIM_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# The simulator, its entry point, lincheck's and the unit tests see sim/'s headers; src/
# never does.
$(BUILD)/obj/sim/%.o $(BUILD)/obj/tools/%.o $(BUILD)/obj/tests/%.o: CFLAGS += -Isim

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(UNIT_HELPER_OBJ) $(SIM_OBJ) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

unit: $(UNIT_BIN)
	@scripts/run-unit.sh $(UNIT_BIN)

# ASan + UBSan build of the unit tests, in its own build directory.
sanitize:
	UNIT_LABEL="unit (ASan+UBSan)" $(MAKE) -j2 unit BUILD=build-asan OPT="-O1" CC=clang \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined \
	         -fno-omit-frame-pointer -DCAPKV_DEBUG"

# The fixed simulator seeds that `make test` runs, and a long run for as long as it is given:
# make sim SECONDS=3600
sim-seeds: $(BUILD)/capkv-sim
	@CAPKV_SIM=$(BUILD)/capkv-sim scripts/sim.sh

sim: $(BUILD)/capkv-sim
	$(BUILD)/capkv-sim --seconds $(or $(SECONDS),60)

integration: $(BUILD)/capkv $(BUILD)/lincheck
	@scripts/run-integration.sh

fuzz-build:
	@scripts/fuzz.sh build

fuzz:
	@scripts/fuzz.sh run $(FUZZ_SECONDS)

tidy:
	@scripts/tidy.sh

test: tidy
	$(MAKE) unit
	$(MAKE) sanitize
	$(MAKE) fuzz FUZZ_SECONDS=$${FUZZ_SECONDS:-20}
	$(MAKE) sim-seeds
	$(MAKE) integration

deps:
	@scripts/install-deps.sh

demo: deps all
	@$(BUILD)/capkv demo

bench: all
	@bench/redis-compare.sh

format:
	clang-format -i $$(find src tests -name '*.[ch]')

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) build-asan -name '*.d' 2>/dev/null)
