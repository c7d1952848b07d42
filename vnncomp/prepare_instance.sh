#!/bin/sh
# prepare_instance.sh v1 CATEGORY ONNX VNNLIB: nothing to prepare; checks the files exist.
[ "$1" = "v1" ] || { echo "expected version v1, got '$1'" >&2; exit 1; }
[ -r "$3" ] || { echo "cannot read $3" >&2; exit 1; }
[ -r "$4" ] || { echo "cannot read $4" >&2; exit 1; }
exit 0
