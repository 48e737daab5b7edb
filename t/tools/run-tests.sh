#!/bin/bash
# Runs the test suites and ends with one line: "N passed, N failed".
#
# usage: run-tests.sh unit|integration|all [UNIT_BINARIES...]
# UG_MODULE names the built module for the integration tests.

set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
what=$1
shift

passed=0
failed=0
log=$(mktemp -d /tmp/ug-tests.XXXXXX)

run_unit() {
    local bin out checks fails errs
    for bin in "$@"; do
        out="$log/$(basename "$bin").log"
        CK_FORK=yes "$bin" > "$out" 2>&1
        cat "$out"
        # Check's summary: "100%: Checks: 12, Failures: 0, Errors: 0"
        read -r checks fails errs < <(sed -n \
            's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' \
            "$out" | tail -1)
        if [ -z "${checks:-}" ]; then
            echo "$(basename "$bin"): no Check summary (crashed?)"
            failed=$((failed + 1))
            continue
        fi
        passed=$((passed + checks - fails - errs))
        failed=$((failed + fails + errs))
    done
}

run_counted() {
    # a runner whose last line is "N passed, N failed"
    local name=$1 out p f
    shift
    out="$log/$name.log"
    "$@" 2>&1 | tee "$out"
    read -r p f < <(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' \
        "$out" | tail -1)
    if [ -z "${p:-}" ]; then
        echo "$name: no summary line (crashed?)"
        failed=$((failed + 1))
        return
    fi
    passed=$((passed + p))
    failed=$((failed + f))
}

case "$what" in
unit)
    run_unit "$@"
    ;;
integration)
    run_counted integration /usr/bin/python3 "$top/t/integration/run.py"
    ;;
all)
    run_unit "$@"
    if [ -x "$top/t/tools/fuzz.sh" ]; then
        run_counted fuzz "$top/t/tools/fuzz.sh" smoke
    fi
    run_counted integration /usr/bin/python3 "$top/t/integration/run.py"
    ;;
esac

rm -rf "$log"
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
