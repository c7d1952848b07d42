#!/bin/sh
# run_benchmark.sh BENCH_DIR [OUT.csv]: run every instance of BENCH_DIR/instances.csv
# (onnx,vnnlib,timeout) through run_instance.sh, write onnx,vnnlib,result,seconds
# per instance to OUT.csv, check every counterexample with `verify --check`, and
# print a summary (counts per answer, total and median time).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${1:?usage: run_benchmark.sh BENCH_DIR [OUT.csv]}
out=${2:-/dev/stdout}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat=$(basename "$bench")
echo "onnx,vnnlib,result,seconds" > "$tmp/out.csv"
bad_cex=0
while IFS=, read -r onnx vnnlib tmo; do
    [ -n "$onnx" ] || continue
    tmo=$(echo "$tmo" | tr -d '\r ')
    rm -f "$tmp/res"
    "$here/vnncomp/prepare_instance.sh" v1 "$cat" "$bench/$onnx" "$bench/$vnnlib"
    t0=$(date +%s.%N)
    "$here/vnncomp/run_instance.sh" v1 "$cat" "$bench/$onnx" "$bench/$vnnlib" "$tmp/res" "$tmo"
    t1=$(date +%s.%N)
    res=$(head -1 "$tmp/res" 2>/dev/null || echo error)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    if [ "$res" = sat ]; then
        if ! "$here/build/bin/verify" --check "$tmp/res" "$bench/$onnx" "$bench/$vnnlib" > /dev/null 2>&1; then
            res="sat-INVALID"; bad_cex=$((bad_cex + 1))
        fi
    fi
    echo "$onnx,$vnnlib,$res,$secs" >> "$tmp/out.csv"
    echo "$onnx,$vnnlib,$res,$secs" >&2
done < "$bench/instances.csv"
cp "$tmp/out.csv" "$out" 2>/dev/null || cat "$tmp/out.csv"
tail -n +2 "$tmp/out.csv" | sort -t, -k4,4g | awk -F, -v bad="$bad_cex" '
    { n++; c[$3]++; t += $4; s[n] = $4 }
    END {
        med = n ? (n % 2 ? s[(n+1)/2] : (s[n/2] + s[n/2+1]) / 2) : 0
        printf "summary: %d instances;", n; for (k in c) printf " %s %d;", k, c[k]
        printf " total %.1f s; median %.3f s; invalid counterexamples %d\n", t, med, bad
    }' >&2
