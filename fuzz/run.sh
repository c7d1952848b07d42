#!/bin/sh
# run.sh SECONDS: build the libFuzzer harnesses with clang and run each for SECONDS,
# seeded from the shared benchmarks and conformance models. Crashes are written to
# fuzz/crashes/; copy each into tests/data/fuzz/<target>/ as a regression input.
set -e
cd "$(dirname "$0")/.."
secs=${1:-60}
B=build-fuzz
mkdir -p $B fuzz/crashes
FLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer-no-link,address,undefined -I/usr/include/x86_64-linux-gnu/openblas-pthread"
objs=""
for f in core/*.c models/*.c specs/*.c; do
    o=$B/$(echo "$f" | tr / _).o
    clang $FLAGS -c "$f" -o "$o"
    objs="$objs $o"
done
for t in onnx json vnnlib; do
    clang $FLAGS -fsanitize=fuzzer fuzz/fuzz_$t.c $objs -o $B/fuzz_$t -lopenblas -lcjson -lz -lm -lpthread
done
S=../shared
mkdir -p $B/corpus-onnx $B/corpus-json $B/corpus-vnnlib
cp $S/conformance/*/model.onnx $B/corpus-onnx/ 2>/dev/null || true
for f in $S/conformance/*/model.onnx; do cp "$f" "$B/corpus-onnx/$(basename $(dirname $f)).onnx"; done
cp $S/benchmarks/acasxu/onnx/ACASXU_run2a_1_1_batch_2000.onnx $B/corpus-onnx/
cp tests/data/json/*.json $B/corpus-json/ 2>/dev/null || true
for f in $S/benchmarks/*/vnnlib/*.vnnlib; do
    [ "$(stat -c %s "$f")" -lt 200000 ] && cp "$f" "$B/corpus-vnnlib/$(basename $(dirname $(dirname $f)))_$(basename $f)"
done
for t in onnx json vnnlib; do
    echo "== fuzz_$t for ${secs}s"
    $B/fuzz_$t -max_total_time=$secs -max_len=200000 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix=fuzz/crashes/${t}- $B/corpus-$t 2>&1 | tail -3
done
