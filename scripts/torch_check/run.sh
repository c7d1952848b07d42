#!/bin/sh
# run.sh [--key=value ...]: the one-step side-by-side check of the trainer
# against PyTorch (docs/train.md, "Side by side with PyTorch"). Builds
# step_dump against the library, dumps one step of the configured model
# (default: the reference run's) and recomputes it with check.py.
# Needs Debian's python3-torch (apt-get install python3-torch). check.py
# assumes cnn7 width 4 / linear 32 unless given WIDTH LINEAR_SIZE.
set -e
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
make -s build/libnnv.a
mkdir -p build/scripts
cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I/usr/include/x86_64-linux-gnu/openblas-pthread \
   scripts/torch_check/step_dump.c build/libnnv.a -o build/scripts/step_dump \
   -lopenblas -lglpk -lcjson -lz -lpthread -lm
out=$(mktemp -d)
build/scripts/step_dump "$out" "$@"
/usr/bin/python3 scripts/torch_check/check.py "$out"
rm -rf "$out"
