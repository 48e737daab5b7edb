#!/bin/bash
# Installs what the build, the demo and the tests need on Debian 12, and
# only what is missing: apt-get for system packages, npm for test servers.

set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)

# usage: setup.sh build|deb|run|test
#   build  what building the module needs (nginx-dev, the libraries)
#   deb    build + what building the Debian package needs (make deb)
#   run    build + the example app and the stock nginx (make run)
#   test   run + deb + Check, fuzzing, load and test servers, promtool
#          (make test)
profile=${1:-test}

build_pkgs="nginx nginx-dev build-essential pkg-config libjansson-dev
            libssl-dev libcurl4-openssl-dev"
deb_pkgs="debhelper dpkg-dev"
run_pkgs="python3-fastapi python3-uvicorn curl"
test_pkgs="check libsubunit-dev python3-jwt python3-cryptography
           python3-prometheus-client wrk faketime clang libclang-rt-14-dev
           prometheus python3-yaml git"

case "$profile" in
build) pkgs="$build_pkgs" ;;
deb)   pkgs="$build_pkgs $deb_pkgs" ;;
run)   pkgs="$build_pkgs $run_pkgs" ;;
test)  pkgs="$build_pkgs $deb_pkgs $run_pkgs $test_pkgs" ;;
*)
    echo "usage: $0 build|deb|run|test" >&2
    exit 2
    ;;
esac

missing=
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
        || missing="$missing $p"
done

# Node.js (the test servers only) may come from a package other than
# Debian's: ask for the commands.
if [ "$profile" = test ]; then
    command -v node > /dev/null || missing="$missing nodejs"
    command -v npm > /dev/null || missing="$missing npm"
fi

if [ -n "$missing" ]; then
    echo "setup: installing$missing"
    sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        --no-install-recommends $missing > /dev/null
fi

# The distro's nginx starts itself on port 80 when installed; the demo and
# tests run their own instances and need nothing of it.  Of the prometheus
# package the tests use promtool only: a Prometheus server it started on
# :9090 is stopped and not started at boot.
case " $missing " in
*" prometheus "*)
    if command -v systemctl > /dev/null \
       && systemctl is-enabled prometheus > /dev/null 2>&1; then
        $sudo systemctl disable --now prometheus > /dev/null 2>&1 || true
    fi
    ;;
esac

if [ "$profile" = test ] && [ -f "$top/t/package.json" ] \
   && [ ! -d "$top/t/node_modules" ]; then
    echo "setup: npm install (test servers)"
    (cd "$top/t" && npm install --no-audit --no-fund --silent > /dev/null)
fi
