#!/bin/sh
# setup.sh: the one command for a fresh Debian 12 machine. Installs the Debian
# packages the project needs (build tools, OpenBLAS, GLPK, cJSON, Criterion,
# zlib, the Fashion-MNIST dataset), builds everything, and verifies a bundled
# ACAS Xu network against property 3.
set -e
cd "$(dirname "$0")"
if ! dpkg-query -W -f='${Status}' dataset-fashion-mnist 2>/dev/null | grep -q "ok installed"; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist
fi
make -j2
echo "== verify examples/acasxu_1_1.onnx examples/acasxu_prop_3.vnnlib"
./verify examples/acasxu_1_1.onnx examples/acasxu_prop_3.vnnlib --timeout 60
