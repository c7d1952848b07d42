#!/bin/sh
# run_instance.sh v1 CATEGORY ONNX VNNLIB RESULT_FILE TIMEOUT (VNN-COMP interface).
# Writes sat (+ counterexample) / unsat / unknown / timeout / error to RESULT_FILE.
[ "$1" = "v1" ] || { echo "expected version v1, got '$1'" >&2; exit 1; }
here=$(cd "$(dirname "$0")/.." && pwd)
onnx=$3; vnnlib=$4; result=$5; timeout=$6
# The verifier stops itself at the timeout; the outer limit only guards against the unexpected.
timeout -k 2 $(( ${timeout%.*} + 5 )) "$here/build/bin/verify" "$onnx" "$vnnlib" \
    --timeout "$timeout" --result "$result" > /dev/null
rc=$?
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo timeout > "$result"    # stopped by the outer limit: past the timeout
elif [ $rc -ne 0 ]; then
    [ -s "$result" ] || echo error > "$result"
fi
