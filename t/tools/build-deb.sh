#!/bin/bash
# Builds the Debian package libnginx-mod-http-usage-gate from debian/ with
# dpkg-buildpackage and dh's nginx add-on, in a copy of the sources under
# OUT_DIR so that the source tree stays clean.  Prints the path of the .deb.
# The version comes from debian/changelog.  An existing .deb newer than
# every source file is kept.
#
# usage: build-deb.sh OUT_DIR

set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
cd "$top"

# one build at a time in OUT_DIR (make deb and the package test may overlap)
exec 9> "$out/.lock"
flock 9

# what the package is built from (nothing else is copied)
sources="config ngx_http_usage_gate_module.c src debian README.md docs"

pkg=$(dpkg-parsechangelog -l debian/changelog -S Source)
version=$(dpkg-parsechangelog -l debian/changelog -S Version)
arch=$(dpkg --print-architecture)
deb="$out/${pkg}_${version}_${arch}.deb"

if [ -f "$deb" ] && [ -z "$(find $sources -newer "$deb" -print -quit)" ]; then
    echo "$deb"
    exit 0
fi

copy="$out/src"
rm -rf "$copy" "$deb"
mkdir -p "$copy"
# shellcheck disable=SC2086
cp -a $sources "$copy/"

log="$out/build.log"
if ! (cd "$copy" && dpkg-buildpackage -b -us -uc) > "$log" 2>&1; then
    tail -40 "$log" >&2
    echo "build-deb.sh: dpkg-buildpackage failed; full log: $log" >&2
    exit 1
fi
[ -f "$deb" ] || {
    echo "build-deb.sh: dpkg-buildpackage did not write $deb (log: $log)" >&2
    exit 1
}
rm -rf "$copy"
echo "$deb"
