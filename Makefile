# Build, test and benchmark targets. `make test` is the one test command (CI runs it).
# Sources are found by folder: every .c in a library folder goes into libnnv.a,
# every cli/*.c is a program at the top level, every tests/*.c joins one
# Criterion binary.

CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
SAN     ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -MMD -MP $(SAN) \
           -I/usr/include/x86_64-linux-gnu/openblas-pthread
LDFLAGS += $(SAN)
LDLIBS  += -lopenblas -lglpk -lcjson -lz -lpthread -lm
B       ?= build

LIB_DIRS := core models specs bound bab train
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o)
CLI_SRC  := $(wildcard cli/*.c)
PROGS    := $(patsubst cli/%.c,%,$(CLI_SRC))
# `train` is also the trainer's source folder, so that program stays in $(B)/bin.
TOP_PROGS := $(filter-out train,$(PROGS))
TEST_SRC := $(wildcard tests/*.c)
TEST_OBJ := $(TEST_SRC:%.c=$(B)/%.o)

.PHONY: all deps test sanitize bench clean fuzz stress

all: deps $(TOP_PROGS) $(PROGS:%=$(B)/bin/%) $(B)/bin/idx_specs

deps:
	@./scripts/deps.sh

# Order-only on deps: under `make -j` no compiler runs before the packages exist.
$(B)/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/libnnv.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# Programs are built into $(B) and, for the default build, copied to the top.
$(B)/bin/%: $(B)/cli/%.o $(B)/libnnv.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(TOP_PROGS): %: $(B)/bin/%
	cp $< $@

$(B)/tests/run: $(TEST_OBJ) $(B)/libnnv.a
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ -lcriterion $(LDLIBS)

# The whole suite: unit tests, end-to-end checks of the programs, and both again
# under the sanitizers (about 5 minutes on 2 cores).
test: all $(B)/tests/run
	$(B)/tests/run --jobs 2
	./tests/e2e.sh
	$(MAKE) sanitize

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
sanitize: deps
	$(MAKE) B=build-san OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	  build-san/tests/run build-san/bin/verify build-san/bin/convert
	ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=tests/lsan.supp UBSAN_OPTIONS=print_stacktrace=1 build-san/tests/run --jobs 2
	BIN=build-san/bin ASAN_OPTIONS=detect_leaks=1 ./tests/e2e.sh

# libFuzzer runs of the ONNX, JSON and VNNLIB readers: make fuzz FUZZ_SECONDS=600
FUZZ_SECONDS ?= 60
fuzz: deps
	./fuzz/run.sh $(FUZZ_SECONDS)

# The soundness stress test at scale: make stress N=1000000 SAMPLES=100 JOBS=2
N       ?= 10000
SAMPLES ?= 100
JOBS    ?= 2
$(B)/bin/stress: $(B)/scripts/stress.o $(B)/tests/stress_gen.o $(B)/tests/stress_genbab.o $(B)/libnnv.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# robustness specs for IDX test images (scripts/idx_specs.c)
$(B)/bin/idx_specs: $(B)/scripts/idx_specs.o $(B)/libnnv.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

stress: deps $(B)/bin/stress
	$(B)/bin/stress $(N) $(SAMPLES) $(JOBS)

bench: all
	./scripts/bench.sh

clean:
	rm -rf build build-san $(TOP_PROGS)

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(CLI_SRC:%.c=$(B)/%.d) $(B)/scripts/stress.d \
         $(B)/scripts/idx_specs.d
