#!/bin/sh
# boundary.sh MODEL FIRST COUNT STEP MAX ABOVE OUTDIR [TIMEOUT]: robustness
# properties at the edge of what alpha-CROWN proves, for comparing branch and
# bound variants where branching is what decides.
#
# For MNIST test images FIRST .. FIRST+COUNT-1 (../shared/data/mnist) and the
# grid eps = STEP, 2·STEP, ... MAX, benchmarks/compare.c's "alpha" method
# (alpha-CROWN, as GenBaB's root) is run on every grid point; eps* of an image
# is the largest grid eps below which every grid point is proven. The image's
# property is written at eps* + ABOVE·STEP (an image never proven, or one
# proven up to MAX, is left out; so is an image the attack breaks at eps*).
# OUTDIR gets MODEL (linked), imgK_epsE.vnnlib and instances.csv (TIMEOUT,
# default 60 s), for `benchmarks/run_compare.sh OUTDIR`. The rule uses
# alpha-CROWN only, so it favours no branching variant.
# BOUNDARY_GRID=FILE keeps the grid's alpha-CROWN results in FILE, and reuses
# them when FILE exists (the caller keeps MODEL, FIRST, COUNT, STEP and MAX
# the same), so that sets at other ABOVE values cost no new grid.
# BOUNDARY_SCALE=x writes the property at x·eps* instead (4 significant
# digits; ABOVE is then unused), left out when the attack broke the grid
# point at or below it.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
model=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
first=$2 count=$3 step=$4 max=$5 above=$6 out=$7 tmo=${8:-60}
data="$here/../shared/data/mnist"
cd "$here"
make -s build/bin/idx_specs build/libnnv.a
sh benchmarks/run_compare.sh /nonexistent 2>/dev/null || true # builds build/benchmarks/compare
mkdir -p "$out"
out=$(cd "$out" && pwd)
grid=$(mktemp -d)
trap 'rm -rf "$grid"' EXIT
name=$(basename "$model") # the loader goes by the extension
n=$(awk -v s="$step" -v m="$max" 'BEGIN { print int(m / s + 0.5) }')
keep=${BOUNDARY_GRID:-}
if [ -n "$keep" ] && [ -s "$keep" ]; then
    cp "$keep" "$grid/results"
    i=$((n + 1))
else
    i=1
fi
while [ "$i" -le "$n" ]; do
    eps=$(awk -v s="$step" -v i="$i" 'BEGIN { printf "%.6g", s * i }')
    d="$grid/$i"
    mkdir -p "$d"
    ln -sf "$model" "$d/$name"
    build/bin/idx_specs "$data/t10k-images-idx3-ubyte.gz" "$data/t10k-labels-idx1-ubyte.gz" \
        "$first" "$count" "$eps" "$name" "$tmo" "$d"
    # instance,attack,crown,crown_s,alpha,alpha_s,...: keep image, attack, alpha
    build/benchmarks/compare "$d" "$tmo" alpha 2>/dev/null |
        awk -F, -v i="$i" 'NR > 1 { sub(/^img/, "", $1); sub(/\.vnnlib$/, "", $1); print $1, i, $2, $5 }' \
        >> "$grid/results"
    i=$((i + 1))
done
[ -z "$keep" ] || [ -s "$keep" ] || cp "$grid/results" "$keep"
ln -sf "$model" "$out/$name"
: > "$out/instances.csv"
for k in $(seq "$first" $((first + count - 1))); do
    # the longest run of proven grid points from the first one
    best=$(awk -v k="$k" '$1 == k { r[$2] = $4 } END { b = 0; while (r[b + 1] == "unsat") b++; print b }' "$grid/results")
    [ "$best" -ge 1 ] && [ "$best" -lt "$n" ] || continue
    if [ -n "${BOUNDARY_SCALE:-}" ]; then
        at=$(awk -v b="$best" -v x="$BOUNDARY_SCALE" 'BEGIN { print int(b * x + 1e-9) }')
        eps=$(awk -v s="$step" -v b="$best" -v x="$BOUNDARY_SCALE" 'BEGIN { printf "%.4g", s * b * x }')
    else
        at=$((best + above))
        eps=$(awk -v s="$step" -v i="$at" 'BEGIN { printf "%.6g", s * i }')
    fi
    sat=$(awk -v k="$k" -v i="$at" '$1 == k && $2 == i { print $3 }' "$grid/results")
    [ "$sat" != sat ] || continue
    one=$(mktemp -d)
    build/bin/idx_specs "$data/t10k-images-idx3-ubyte.gz" "$data/t10k-labels-idx1-ubyte.gz" \
        "$k" 1 "$eps" x "$tmo" "$one"
    mv "$one/img$k.vnnlib" "$out/img${k}_eps$eps.vnnlib"
    rm -rf "$one"
    echo "$name,img${k}_eps$eps.vnnlib,$tmo" >> "$out/instances.csv"
    echo "img$k: alpha-CROWN proves up to eps $(awk -v s="$step" -v i="$best" 'BEGIN { printf "%.6g", s * i }'); property at $eps" >&2
done
