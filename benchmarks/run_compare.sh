#!/bin/sh
# run_compare.sh [BENCH_DIR] [TIMEOUT] [METHODS]: build benchmarks/compare.c against the
# library and run the GenBaB comparison (see compare.c) on BENCH_DIR
# (default benchmarks/mnist_nonlin, each instance's own timeout; TIMEOUT 0 keeps
# them; METHODS e.g. crown,alpha,genbab picks some of the five).
set -e
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
make -s build/libnnv.a
mkdir -p build/benchmarks
cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror benchmarks/compare.c build/libnnv.a \
   -o build/benchmarks/compare -lopenblas -lglpk -lcjson -lz -lpthread -lm
build/benchmarks/compare "${1:-benchmarks/mnist_nonlin}" ${2:-} ${3:-}
