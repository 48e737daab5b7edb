#!/bin/bash
# The demo behind `make run`: the example FastAPI app on 127.0.0.1:8000 and
# the stock /usr/sbin/nginx with the usage gate on 127.0.0.1:8080, in the
# foreground.  Ctrl-C stops both, prints one line and exits 0.
#
# usage: UG_MODULE=/path/to/ngx_http_usage_gate_module.so t/tools/run-demo.sh

set -u

# On a terminal, Ctrl-C is sent to every process of the foreground process
# group: to make as well, which would then report the demo's clean stop as
# "Interrupt" and exit non-zero.  So the demo runs as its own foreground
# process group, which alone receives Ctrl-C; make waits for it as for any
# recipe and sees its exit status.
if [ -z "${UG_DEMO_FOREGROUND:-}" ] && [ -t 0 ] \
   && (: < /dev/tty) 2>/dev/null; then
    export UG_DEMO_FOREGROUND=1
    exec /usr/bin/python3 -c '
import os, signal, sys
tty = os.open("/dev/tty", os.O_RDWR)
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    os.tcsetpgrp(tty, os.getpgrp())
    signal.signal(signal.SIGTTOU, signal.SIG_DFL)
    os.close(tty)
    os.execv("/bin/bash", ["bash"] + sys.argv[1:])
try:
    os.setpgid(pid, pid)
except OSError:
    pass
signal.signal(signal.SIGINT, signal.SIG_IGN)
_, status = os.waitpid(pid, 0)
os.tcsetpgrp(tty, os.getpgrp())
sys.exit(os.waitstatus_to_exitcode(status) % 256)
' "$0" "$@"
fi

top=$(cd "$(dirname "$0")/../.." && pwd)
module=${UG_MODULE:-$top/build/nginx/objs/ngx_http_usage_gate_module.so}
python=/usr/bin/python3
nginx=/usr/sbin/nginx
app_port=8000
gate_port=8080

die() {
    echo "run-demo: $*" >&2
    exit 1
}

[ -f "$module" ] || die "no module at $module (run: make module)"
module=$(cd "$(dirname "$module")" && pwd)/$(basename "$module")
[ -x "$nginx" ] || die "$nginx is missing (run: make setup)"

port_taken() {
    # true if something accepts connections on 127.0.0.1:$1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

for p in $app_port $gate_port; do
    if port_taken "$p"; then
        die "port $p on 127.0.0.1 is taken; stop what listens there" \
            "(see: ss -ltnp 'sport = :$p') and run make run again"
    fi
done

prefix=$(mktemp -d /tmp/ug-demo.XXXXXX)
chmod 755 "$prefix"
mkdir -p "$prefix/tmp" "$prefix/logs"
sed "s|^load_module .*;|load_module $module;|" "$top/docs/nginx.conf" \
    > "$prefix/nginx.conf"

app_pid=
nginx_pid=

stop() {
    trap - INT TERM EXIT
    # nginx's own notices about shutting down are not shown
    : > "$prefix/stopping"
    [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null
    [ -n "$app_pid" ] && kill -TERM "$app_pid" 2>/dev/null
    [ -n "$nginx_pid" ] && wait "$nginx_pid" 2>/dev/null
    [ -n "$app_pid" ] && wait "$app_pid" 2>/dev/null
    rm -rf "$prefix"
}
# Ctrl-C (or a TERM) is how the demo is meant to end: a clean stop
trap 'stop; echo; echo "run-demo: stopped nginx and the app"; exit 0' INT TERM
trap 'stop' EXIT

"$nginx" -t -q -p "$prefix" -c nginx.conf -e stderr \
    || die "nginx -t failed for $prefix/nginx.conf"

# nginx and the app run in sessions of their own, so that Ctrl-C reaches
# only this script, which stops them in order
setsid "$python" -m uvicorn app:app --app-dir "$top/t/app" \
    --host 127.0.0.1 --port "$app_port" --log-level warning < /dev/null &
app_pid=$!

for _ in $(seq 1 100); do
    port_taken "$app_port" && break
    kill -0 "$app_pid" 2>/dev/null || die "the app did not start"
    sleep 0.1
done
port_taken "$app_port" || die "the app does not answer on port $app_port"

setsid "$nginx" -p "$prefix" -c nginx.conf -e stderr < /dev/null \
    2> >(while IFS= read -r line; do
             [ -e "$prefix/stopping" ] || [ ! -d "$prefix" ] \
                 || printf '%s\n' "$line" >&2
         done) &
nginx_pid=$!

for _ in $(seq 1 100); do
    port_taken "$gate_port" && break
    kill -0 "$nginx_pid" 2>/dev/null || die "nginx did not start"
    sleep 0.1
done
port_taken "$gate_port" || die "nginx does not answer on port $gate_port"

cat <<EOF

The usage gate listens on http://127.0.0.1:$gate_port (app on :$app_port).
Try, in another terminal:

  # 1. an anonymous ask: owner anon:<hmac of your address>, plan free
  curl -si -X POST http://127.0.0.1:$gate_port/ask -H 'Content-Type: application/json' -d '{"agent":"oracle","question":"Will it ship?"}'

  # 2. a trusted proxy (127.0.0.1) asking for a pro user of org acme
  curl -si -X POST http://127.0.0.1:$gate_port/ask -H 'Content-Type: application/json' -H 'X-User-Id: alice' -H 'X-Org-Id: acme' -H 'X-Plan: pro' -d '{"agent":"oracle","question":"Will it ship?"}'

  # 3. a free user hitting the monthly quota (20): 200 x20, then 402
  for i in \$(seq 1 22); do curl -s -o /dev/null -w '%{http_code} ' -X POST http://127.0.0.1:$gate_port/ask -H 'Content-Type: application/json' -H 'X-User-Id: freddie' -d '{"agent":"oracle","question":"again?"}'; done; echo

Ctrl-C stops both.

EOF

# Wait for either to exit (or for Ctrl-C).
while kill -0 "$nginx_pid" 2>/dev/null && kill -0 "$app_pid" 2>/dev/null; do
    wait -n "$nginx_pid" "$app_pid" 2>/dev/null || true
done
if kill -0 "$nginx_pid" 2>/dev/null; then
    echo "run-demo: the app exited by itself; stopping nginx" >&2
else
    echo "run-demo: nginx exited by itself; stopping the app" >&2
fi
exit 1
