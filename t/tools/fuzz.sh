#!/bin/bash
# Builds and runs every libFuzzer target t/fuzz/fuzz_*.c.
#
# usage: fuzz.sh smoke|long [NAME...]     (NAME: jwt, state, ... ; default all)
#
#   smoke  15 s per target (part of `make test`)
#   long   300 s per target (`make fuzz`); FUZZ_SECONDS overrides either
#
# Each target is built with clang -fsanitize=fuzzer,address,undefined
# against all of src/*.c into build/fuzz/, and run on a copy of its seed
# corpus t/fuzz/corpus/NAME/ (if any) in a temporary directory, so the seeds
# in the repository stay as they are; t/t/fuzz/fuzz_NAME.dict, if present, is
# given as a libFuzzer dictionary.  A target passes when the fuzzer
# found nothing; otherwise the input that broke it is kept under
# build/fuzz/artifacts/NAME/ and shown.  The last line is
# "N passed, N failed", one count per target.

set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
mode=${1:-smoke}
[ $# -gt 0 ] && shift

case "$mode" in
smoke) secs=${FUZZ_SECONDS:-15} ;;
long)  secs=${FUZZ_SECONDS:-300} ;;
*)
    echo "usage: $0 smoke|long [NAME...]" >&2
    exit 2
    ;;
esac

cc=${FUZZ_CC:-clang}
out=$top/build/fuzz
mkdir -p "$out"

passed=0
failed=0

targets=()
if [ $# -gt 0 ]; then
    for name in "$@"; do
        targets+=("$top/t/fuzz/fuzz_$name.c")
    done
else
    for src in "$top"/t/fuzz/fuzz_*.c; do
        [ -f "$src" ] && targets+=("$src")
    done
fi

if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz: no t/fuzz/fuzz_*.c targets"
fi

for src in "${targets[@]}"; do
    base=$(basename "$src" .c)
    name=${base#fuzz_}
    bin=$out/$base

    if [ ! -f "$src" ]; then
        echo "fuzz $name: no $src"
        failed=$((failed + 1))
        continue
    fi

    echo "fuzz $name: building"

    # -fno-sanitize-recover: an undefined-behaviour report must stop the
    # run, or libFuzzer would count it as a pass
    if ! "$cc" -g -O1 -fsanitize=fuzzer,address,undefined \
            -fno-sanitize-recover=all -I"$top/src" \
            -o "$bin" "$src" "$top"/src/*.c -ljansson -lcrypto -lcurl \
            > "$out/$base.build.log" 2>&1
    then
        cat "$out/$base.build.log"
        echo "fuzz $name: FAILED to build"
        failed=$((failed + 1))
        continue
    fi

    work=$(mktemp -d /tmp/ug-fuzz-"$name".XXXXXX)
    mkdir -p "$work/corpus"

    if [ -d "$top/t/fuzz/corpus/$name" ]; then
        cp -R "$top/t/fuzz/corpus/$name/." "$work/corpus/"
    fi

    dict=
    if [ -f "$top/t/fuzz/$base.dict" ]; then
        dict=-dict=$top/t/fuzz/$base.dict
    fi

    echo "fuzz $name: running ${secs}s on $(ls "$work/corpus" | wc -l) seeds"

    # -timeout: one input taking over 10 s is a finding (bounded work)
    (cd "$work" && "$bin" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
        -artifact_prefix="$work/" $dict corpus > "$work/log" 2>&1)
    rc=$?

    found=$(find "$work" -maxdepth 1 -type f \
                \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
                   -o -name 'oom-*' -o -name 'slow-unit-*' \) | head -1)

    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$work/log" \
        | sed "s/^/fuzz $name: /"

    if [ "$rc" -eq 0 ] && [ -z "$found" ]; then
        echo "fuzz $name: passed ($(ls "$work/corpus" | wc -l) inputs in" \
             "corpus)"
        passed=$((passed + 1))

    else
        keep=$out/artifacts/$name
        mkdir -p "$keep"
        cp "$work/log" "$keep/log"
        [ -n "$found" ] && cp "$work"/crash-* "$work"/leak-* \
            "$work"/timeout-* "$work"/oom-* "$keep/" 2>/dev/null

        # the report, from the sanitizer's or libFuzzer's first line to its
        # summary, without the shadow-byte legend
        sed -n '/ERROR: \|runtime error/,/SUMMARY/p' "$work/log" | head -50
        echo "fuzz $name: FAILED (exit $rc); log and inputs in $keep/"
        [ -n "$found" ] && echo "fuzz $name: crash input" \
                                "$keep/$(basename "$found")"
        failed=$((failed + 1))
    fi

    rm -rf "$work"
done

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
