#!/bin/sh
# bench.sh: timings that later changes compare against (make bench).
# Writes bench/results.txt: median IBP and CROWN bound times per network
# (scripts/bench_bounds.c), with OpenBLAS's own core choice and with forced
# cores, and the start-up time of `verify` (load + parse + IBP of one box).
# BENCH_VNNCOMP=1 also runs the ACAS Xu benchmark through vnncomp/run_benchmark.sh.
set -eu
cd "$(dirname "$0")/.."
S=../shared/benchmarks
out=bench/results.txt
mkdir -p bench build
cc -O2 -std=c11 -D_GNU_SOURCE -I/usr/include/x86_64-linux-gnu/openblas-pthread \
    scripts/bench_bounds.c build/libnnv.a -o build/bench_bounds -lopenblas -lglpk -lcjson -lz -lpthread -lm
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
{
    echo "# bench/results.txt — written by scripts/bench.sh"
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')  commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "## Bound computations (median of 100 runs, first box of the spec; OpenBLAS threads default)"
    for case in \
        "acasxu/onnx/ACASXU_run2a_1_1_batch_2000.onnx acasxu/vnnlib/prop_3.vnnlib" \
        "mnist_fc/onnx/mnist-net_256x2.onnx mnist_fc/vnnlib/prop_0_0.03.vnnlib" \
        "mnist_fc/onnx/mnist-net_256x4.onnx mnist_fc/vnnlib/prop_0_0.03.vnnlib" \
        "mnist_fc/onnx/mnist-net_256x6.onnx mnist_fc/vnnlib/prop_0_0.03.vnnlib" \
        "collins_rul_cnn/onnx/NN_rul_small_window_20.onnx collins_rul_cnn/vnnlib/robustness_2perturbations_delta5_epsilon10_w20.vnnlib" \
        "collins_rul_cnn/onnx/NN_rul_full_window_20.onnx collins_rul_cnn/vnnlib/robustness_2perturbations_delta5_epsilon10_w20.vnnlib" \
        "collins_rul_cnn/onnx/NN_rul_full_window_40.onnx collins_rul_cnn/vnnlib/robustness_2perturbations_delta5_epsilon10_w40.vnnlib"; do
        set -- $case
        for core in default SkylakeX Prescott; do
            echo "### $(basename "$1") — OpenBLAS core: $core"
            if [ $core = default ]; then
                env -u OPENBLAS_CORETYPE build/bench_bounds "$S/$1" "$S/$2" 100
            else
                OPENBLAS_CORETYPE=$core build/bench_bounds "$S/$1" "$S/$2" 100
            fi
        done
    done
    echo
    echo "## verify start-up (whole process: exec, load, parse, IBP of one box; mean of 50 runs)"
    for m in acasxu/onnx/ACASXU_run2a_1_1_batch_2000.onnx:acasxu/vnnlib/prop_3.vnnlib \
             mnist_fc/onnx/mnist-net_256x6.onnx:mnist_fc/vnnlib/prop_0_0.03.vnnlib; do
        model=${m%%:*}; spec=${m##*:}
        t0=$(date +%s%N)
        for i in $(seq 50); do ./verify --bounds ibp "$S/$model" "$S/$spec" > /dev/null; done
        t1=$(date +%s%N)
        echo "$(basename "$model"): $(( (t1 - t0) / 50000 )) us per run"
        ./verify "$S/$model" "$S/$spec" --stats --timeout 1 2> "$tmp" > /dev/null || true
        echo "  in-process load+parse: $(grep -o '"load_s":[0-9.]*' "$tmp" | cut -d: -f2) s"
    done
    if [ "${BENCH_VNNCOMP:-0}" = 1 ]; then
        echo
        echo "## ACAS Xu, all instances (vnncomp/run_benchmark.sh)"
        mkdir -p vnncomp/results
        ./vnncomp/run_benchmark.sh "$S/acasxu" vnncomp/results/acasxu.csv 2>&1 | tail -1 \
            | tee vnncomp/results/acasxu.summary
        {
            echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
            echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
            echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
            echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
            cat vnncomp/results/acasxu.summary
        } > vnncomp/results/acasxu.meta
    fi
} > "$out"
cat "$out"
