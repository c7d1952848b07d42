#!/bin/sh
# run.sh SECONDS [TARGET...]: build the libFuzzer harnesses with clang and run each
# target (onnx, json, vnnlib, and bound: eval + IBP/CROWN on models that load;
# default onnx json vnnlib) for SECONDS, seeded from the shared
# benchmarks, the conformance models and tests/data. The corpus is kept in
# build-fuzz/corpus-<target> between runs, so time adds up across sessions.
# PARALLEL=1 runs the targets at the same time (one core each) instead of in turn.
# Crashes, leaks, timeouts (> 10 s) and slow units (> 2 s) are written to
# fuzz/crashes/; copy each into tests/data/fuzz/<target>/
# as a regression input (tests/test_fuzz_regressions.c loads every file there).
set -e
export OPENBLAS_NUM_THREADS=1
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-onnx json vnnlib}
B=build-fuzz
mkdir -p $B fuzz/crashes
FLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer-no-link,address,undefined -I/usr/include/x86_64-linux-gnu/openblas-pthread"
objs=""
for f in core/*.c models/*.c specs/*.c bound/*.c; do
    o=$B/$(echo "$f" | tr / _).o
    stale=0
    [ -f "$o" ] || stale=1
    for h in "$f" $(dirname "$f")/*.h models/nn.h core/*.h specs/spec.h; do
        [ "$h" -nt "$o" ] && stale=1
    done
    [ $stale = 1 ] && clang $FLAGS -c "$f" -o "$o"
    objs="$objs $o"
done
for t in $targets; do
    clang $FLAGS -fsanitize=fuzzer fuzz/fuzz_$t.c $objs -o $B/fuzz_$t -lopenblas -lglpk -lcjson -lz -lm -lpthread
done
S=../shared
mkdir -p $B/corpus-onnx $B/corpus-json $B/corpus-vnnlib $B/corpus-bound \
    $B/seed-onnx $B/seed-json $B/seed-vnnlib $B/seed-bound
for f in $S/conformance/*/model.onnx; do cp "$f" "$B/seed-onnx/$(basename $(dirname $f)).onnx"; done
cp $S/benchmarks/acasxu/onnx/ACASXU_run2a_1_1_batch_2000.onnx $B/seed-onnx/
cp examples/*.onnx $B/seed-onnx/
cp tests/data/json/*.json $B/seed-json/ 2>/dev/null || true
# JSON seeds from the ONNX ones when the converter is built (make)
if [ -x ./convert ]; then
    for f in $B/seed-onnx/*.onnx; do
        j=$B/seed-json/$(basename "$f" .onnx).json
        [ -f "$j" ] || ./convert "$f" "$j" >/dev/null 2>&1 || rm -f "$j"
    done
    find $B/seed-json -size +200k -delete
fi
for f in $S/benchmarks/*/vnnlib/*.vnnlib tests/data/vnnlib/*.vnnlib examples/*.vnnlib; do
    [ -f "$f" ] && [ "$(stat -c %s "$f")" -lt 200000 ] && cp "$f" "$B/seed-vnnlib/$(basename $(dirname $(dirname $f)))_$(basename $f)"
done
cp $B/seed-onnx/* $B/seed-bound/
for t in onnx json vnnlib bound; do
    [ -d tests/data/fuzz/$t ] && cp tests/data/fuzz/$t/* $B/seed-$t/ 2>/dev/null || true
done
run_one() {
    t=$1
    dict=""
    [ -f fuzz/$t.dict ] && dict="-dict=fuzz/$t.dict"
    [ "$t" = bound ] && dict="-dict=fuzz/onnx.dict"
    echo "== fuzz_$t for ${secs}s"
    $B/fuzz_$t -max_total_time=$secs -max_len=200000 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -report_slow_units=2 $dict -artifact_prefix=fuzz/crashes/${t}- \
        $B/corpus-$t $B/seed-$t > $B/log-$t.txt 2>&1 || echo "fuzz_$t stopped with a finding (see $B/log-$t.txt)"
    grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" $B/log-$t.txt || tail -5 $B/log-$t.txt
}
if [ -n "$PARALLEL" ]; then
    for t in $targets; do run_one $t & done
    wait
else
    for t in $targets; do run_one $t; done
fi
