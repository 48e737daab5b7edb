#!/bin/bash
# Build ngx_http_usage_gate_module.so against Debian's nginx-dev tree.
#
# The module must be configured with the same flags as /usr/sbin/nginx
# (conf_flags, which include --with-compat), or nginx refuses to load it as
# "not binary compatible".  configure runs only when the set of source files
# or the build flavour changes; otherwise make rebuilds what changed.
#
# usage: build-module.sh BUILD_DIR [EXTRA_CFLAGS]

set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$1"
bdir=$(cd "$1" && pwd)
extra=${2:-}
src=/usr/share/nginx/src

if [ ! -f "$src/conf_flags" ]; then
    echo "build-module.sh: $src/conf_flags is missing; install nginx-dev" >&2
    exit 1
fi

# configure again when the addon file, the set of sources or the flags change
stamp=$( (cd "$top" && cat config && ls ngx_http_usage_gate_module.c \
          src/ug_*.[ch] src/nginx/*.[ch]; echo "$extra") | cksum | cut -d' ' -f1)

if [ ! -f "$bdir/objs/Makefile" ] || [ "$(cat "$bdir/.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$bdir"
    mkdir -p "$bdir"
    cp -a "$src/." "$bdir/"
    cd "$bdir"
    # shellcheck disable=SC1091
    . ./conf_flags
    ./configure "${NGX_CONF_FLAGS[@]}" \
        --with-cc-opt="-g -O2 -fPIC -Wall -Wextra -Werror \
-Wno-unused-parameter $extra" \
        --add-dynamic-module="$top" > configure.log 2>&1 || {
            tail -30 configure.log >&2
            exit 1
        }
    echo "$stamp" > .stamp
fi

cd "$bdir"
make -s -f objs/Makefile modules
