#!/bin/sh
# deps.sh: install the Debian packages the project builds and tests with, if any is missing.
# Runs apt-get only when something is absent, so repeated builds stay fast and offline.
set -e
PKGS="build-essential libopenblas-dev libglpk-dev libcjson-dev libcriterion-dev zlib1g-dev pkg-config python3"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
