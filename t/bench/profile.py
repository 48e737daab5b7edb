#!/usr/bin/python3
"""Where the gate's time goes: instructions per request, row by row.

Throughput on a shared 2-CPU machine is noisy; instruction counts are not.
This runs the bench's nginx configuration (the same locations and plans
as bench.py) as a single process (master_process off) under
valgrind --tool=callgrind, sends each row's workload over keep-alive
connections, and reads callgrind's counters per row:

  - total instructions (Ir) per request, and the difference from the
    ungated location: the gate's whole cost, including what it makes
    others do (more headers for the proxy to send and the upstream to
    parse, more for the header filters to write);
  - the inclusive cost of the gate's own functions per request, and of
    what they call that matters (OpenSSL's HMAC, snprintf, the zone).

A request here is the whole loopback round trip through one process:
front server, proxy, the upstream `return 200` server, back.  Kernel
time (most of the real cost on loopback) is not in these counts, so
the percentages overstate the gate's share of the wall-clock time.

  /usr/bin/python3 t/bench/profile.py [-n REQUESTS] [--rows one,anon,...]
                                    [--keep] [--update-doc]

Needs valgrind (callgrind_control, callgrind_annotate).  About a minute.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402

# Functions whose inclusive cost is reported, by callgrind's exact name
# for them.  A later capability adds its own (JWT verify, the token
# cache, the DynamoDB client).  Static functions the compiler inlined do
# not appear (their cost is in the caller's).
FUNCS = [
    ("access handler, all of it", "ngx_http_usage_gate_handler"),
    ("  anonymous owner (keyed HMAC, last address kept)",
     "ug_anon_owner_cached"),
    ("  bearer token: cache lookup", "ug_jwt_cache_get"),
    ("  bearer token: full verification", "ug_jwt_verify"),
    ("  upstream identity headers", "ngx_http_usage_gate_upstream_headers"),
    ("  zone: lock, lookup/insert, decide", "ngx_http_usage_gate_zone_decide"),
    ("header filter and the headers it adds, vs ungated (*)",
     "ngx_http_usage_gate_header_filter"),
    ("  RateLimit-Policy formatting", "ug_fmt_policy"),
    ("  RateLimit formatting", "ug_fmt_ratelimit"),
    ("usage headers added, all calls (both directions)",
     "ngx_http_usage_gate_push_header"),
    ("nginx header parsing, whole request (**)",
     "ngx_http_parse_header_line"),
]

# Rows whose figure is shown as the difference from the ungated row:
# the filter runs (and passes through) on ungated requests too, and the
# upstream parses every request's headers.
DELTA = {"ngx_http_usage_gate_header_filter", "ngx_http_parse_header_line"}


def send(port: int, row: B.Row, n: int, start: int = 0) -> None:
    """n requests of the row's workload, pipelined in batches on one
    keep-alive connection."""
    conn = B.Pipeline(port)
    try:
        k = 0
        while k < n:
            reqs = []
            for i in range(k, min(n, k + 50)):
                h = list(row.headers)
                if row.owners:
                    h.append(f"X-User-Id: u{(start + i) % row.owners}")
                reqs.append((f"GET {row.path} HTTP/1.1\r\nHost: bench\r\n"
                             + "".join(x + "\r\n" for x in h)
                             + "\r\n").encode())
            for status, head in conn.batch(reqs):
                if status != 200:
                    raise RuntimeError(f"{row.key}: status {status}")
            k += len(reqs)
    finally:
        conn.close()


def ctl(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)],
                   capture_output=True, timeout=60, check=True)


def annotate(path: str) -> Tuple[int, Dict[str, int]]:
    """(total Ir, {function: inclusive Ir}) of one callgrind dump."""
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--tree=none",
         "--auto=no", "--threshold=100", path],
        capture_output=True, text=True, timeout=120).stdout
    total = 0
    incl: Dict[str, int] = {}
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$", line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        what = m.group(2)
        if "PROGRAM TOTALS" in what:
            total = ir
            continue
        # "file:function [object]"
        fn = what.split(" [", 1)[0].rsplit(":", 1)[-1]
        incl[fn] = max(incl.get(fn, 0), ir)
    return total, incl


def valgrind_version() -> str:
    p = subprocess.run(["valgrind", "--version"], capture_output=True,
                       text=True)
    return p.stdout.strip().replace("valgrind-", "")


def update_doc(block: str) -> None:
    begin, end = "<!-- profile:begin -->", "<!-- profile:end -->"
    with open(B.DOC) as f:
        text = f.read()
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < 0:
        raise RuntimeError(f"{B.DOC} has no {begin} ... {end} block")
    text = text[:i + len(begin)] + "\n" + block + "\n" + text[j:]
    with open(B.DOC, "w") as f:
        f.write(text)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=3000,
                    help="measured requests per row (default 3000)")
    ap.add_argument("--rows", default="ungated,one,one-off,owners,anon")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--update-doc", action="store_true",
                    help="replace the profile block of docs/benchmarks.md")
    args = ap.parse_args()

    if not os.path.exists(B.MODULE):
        print(f"profile: no module at {B.MODULE}", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="ug-prof-")
    module = os.path.join(tmp, os.path.basename(B.MODULE))
    shutil.copy2(B.MODULE, module)
    outdir = os.path.join(tmp, "cg")
    os.makedirs(outdir)

    rows = {r.key: r for r in B.ROWS}
    keys = [k for k in args.rows.split(",") if k]
    bench = B.Bench(module)
    wrapper = ["valgrind", "--tool=callgrind",
               f"--callgrind-out-file={outdir}/cg.out",
               "--dump-instr=no", "--compress-strings=no"]
    results = []
    try:
        for k in keys:
            if rows[k].prepare:
                rows[k].prepare(bench)
        bench.start(workers=0, wrapper=wrapper)
        pid = bench.nginx.proc.pid
        for k in keys:
            row = rows[k]
            # warm-up: pools, the upstream keepalive, owners into the zone
            send(bench.port, row, min(args.n, 5000))
            ctl(pid, "-z")
            send(bench.port, row, args.n)
            ctl(pid, "-d", k)
            time.sleep(0.2)
            dumps = sorted(glob.glob(f"{outdir}/cg.out*"),
                           key=os.path.getmtime)
            total, incl = annotate(dumps[-1])
            results.append((row, total / args.n, {
                fn: incl.get(fn, 0) / args.n for _, fn in FUNCS}))
            print(f"  {row.label:<40} {total / args.n:10,.0f} Ir/request",
                  flush=True)
    finally:
        bench.stop()
        if bench.nginx:
            bench.nginx.cleanup()
        shutil.rmtree(bench.workdir, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"callgrind dumps kept in {outdir}")

    out = []
    first = next(((t, f) for r, t, f in results if r.baseline),
                 (None, None))
    bases = {r.key: (t, f) for r, t, f in results if r.baseline}

    def base_of(row: B.Row):
        # the row's own baseline if it was profiled, else the first one
        return bases.get(row.base, first)

    out.append("| row | instructions / request | gate's extra | extra % |")
    out.append("|---|---:|---:|---:|")
    for r, t, _ in results:
        base = base_of(r)[0]
        extra = "—" if base is None or r.baseline else f"{t - base:,.0f}"
        pct = "—" if base is None or r.baseline else \
            f"{100 * (t - base) / base:.1f}%"
        out.append(f"| {r.label} | {t:,.0f} | {extra} | {pct} |")
    out.append("")
    gated = [(r, t, f) for r, t, f in results if not r.baseline]
    if gated:
        out.append("| instructions / request, inclusive | "
                   + " | ".join(r.label for r, _, _ in gated) + " |")
        out.append("|---|" + "---:|" * len(gated))
        for label, fn in FUNCS:
            vals = []
            for r, _, f in gated:
                v = f[fn]
                basef = base_of(r)[1]
                if fn in DELTA and basef is not None:
                    v -= basef[fn]
                vals.append(f"{v:,.0f}")
            out.append(f"| {label} | " + " | ".join(vals) + " |")
        out.append("")
        out.append("(*) the filter's inclusive cost minus the ungated "
                   "row's: its own work plus the later filters writing the "
                   "extra headers.  (**) minus the ungated row's: parsing "
                   "the extra headers the gate sends upstream (the upstream "
                   "here is the same nginx).  Static functions the "
                   "compiler inlined are counted in their callers.")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")
    block = (f"Run {stamp}, `/usr/bin/python3 t/bench/profile.py -n {args.n}` "
             f"(valgrind {valgrind_version()}, module built -O2):\n\n"
             + "\n".join(out))
    print()
    print(block)
    if args.update_doc:
        update_doc(block)
        print(f"\nupdated {os.path.relpath(B.DOC, B.TOP)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
