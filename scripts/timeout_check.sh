#!/bin/sh
# timeout_check.sh: is `verify --timeout T` honoured within 1 s?
# Runs verify on hard instances of the largest shared benchmark networks
# with short timeouts and prints, per run, the wall time from start to exit
# (/usr/bin/time, so loading and freeing count), the CPU time, the answer
# and the overshoot past T. Exits 1 if any run takes longer than T + 1 s.
# Usage: scripts/timeout_check.sh [T...]   (default: 2 5 10)
# VERIFY=path picks the binary (default ./verify); EXTRA="..." adds options.
set -u
cd "$(dirname "$0")/.."
S=../shared/benchmarks
V=${VERIFY:-./verify}
T=${*:-2 5 10}
tmp=$(mktemp); trap 'rm -f "$tmp" "$tmp.t"' EXIT
fail=0
echo "# $(date -u '+%F %H:%M UTC')  load: $(cut -d' ' -f1-3 /proc/loadavg)  $(nproc) cores  commit $(git rev-parse --short HEAD 2>/dev/null)"
printf '| %-62s | %4s | %6s | %6s | %6s | %-7s |\n' instance T wall user over answer
for case in \
    "acasxu/onnx/ACASXU_run2a_3_3_batch_2000.onnx acasxu/vnnlib/prop_2.vnnlib" \
    "mnist_fc/onnx/mnist-net_256x6.onnx mnist_fc/vnnlib/prop_1_0.03.vnnlib" \
    "mnist_fc/onnx/mnist-net_256x6.onnx mnist_fc/vnnlib/prop_0_0.05.vnnlib" \
    "collins_rul_cnn/onnx/NN_rul_full_window_40.onnx collins_rul_cnn/vnnlib/robustness_2perturbations_delta40_epsilon10_w40.vnnlib" \
    "collins_rul_cnn/onnx/NN_rul_full_window_20.onnx collins_rul_cnn/vnnlib/if_then_7levels_w20.vnnlib" \
    "dist_shift/onnx/mnist_concat.onnx dist_shift/vnnlib/index9192_delta0.13.vnnlib"; do
    set -- $case
    name="$(basename "$1" .onnx) $(basename "$2" .vnnlib)"
    for t in $T; do
        /usr/bin/time -o "$tmp.t" -f "%e %U" $V "$S/$1" "$S/$2" --timeout "$t" ${EXTRA:-} >"$tmp" 2>/dev/null
        wall=$(cut -d' ' -f1 "$tmp.t"); user=$(cut -d' ' -f2 "$tmp.t")
        ans=$(head -n1 "$tmp")
        over=$(awk -v w="$wall" -v t="$t" 'BEGIN{printf "%+.2f", w - t}')
        if awk -v w="$wall" -v t="$t" 'BEGIN{exit !(w > t + 1)}'; then
            fail=1; ans="$ans OVERSHOOT"
        fi
        printf '| %-62s | %4s | %6s | %6s | %6s | %-7s |\n' "$name" "$t" "$wall" "$user" "$over" "$ans"
    done
done
exit $fail
