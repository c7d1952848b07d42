#!/bin/sh
# install_tool.sh v1: install dependencies and build (VNN-COMP interface).
set -e
cd "$(dirname "$0")/.."
make -j2
