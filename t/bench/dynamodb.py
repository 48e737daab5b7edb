#!/usr/bin/python3
"""DynamoDB modes against the zone-only gate, with wrk.

Kept apart from bench.py (whose rows share one zone): here each mode has
a zone of its own, all in one nginx (2 workers, access_log off), each
location proxying to a `return 200` upstream in the same nginx:

    /ungated   no usage_gate
    /zone      usage_gate on a zone without DynamoDB
    /async     zone with usage_gate_dynamodb mode=async
    /auto      zone with usage_gate_dynamodb mode=auto
    /strict    zone with usage_gate_dynamodb mode=strict

The table is dynalite (t/node_modules) on loopback.  One owner, far from
its limit: the steady state.  Prints requests/s per location and, for the
DynamoDB ones, the UpdateItem calls per allowed request (from the metrics
endpoint, after a sync).

usage: UG_MODULE=.../ngx_http_usage_gate_module.so /usr/bin/python3 \\
           t/bench/dynamodb.py [SECONDS]
"""

import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from harness import Nginx, free_port, request        # noqa: E402
from test_dynamodb import Dynalite                    # noqa: E402

WRK = "/usr/bin/wrk"
MODES = ("async", "auto", "strict")


def config(endpoint: str, port: int, upstream: int) -> str:
    zones = "".join(f"""
    usage_gate_zone      z_{m}:16m;
    usage_gate_dynamodb  zone=z_{m} table=sentientiq-usage region=us-east-1
                         endpoint={endpoint} mode={m};""" for m in MODES)
    gated = "".join(f"""
        location /{m} {{ usage_gate z_{m}; proxy_pass http://back; }}"""
                    for m in ("zone",) + MODES)
    return f"""
    access_log off;
    keepalive_requests 1000000;
    usage_gate_zone z_zone:16m;{zones}
    usage_gate_plan big month=1000000000 minute=1000000000;
    usage_gate_default_plan big;
    usage_gate_identity header;
    usage_gate_trusted_proxies 127.0.0.1;
    usage_gate_anon_salt bench-salt-not-a-secret;
    upstream back {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{upstream};
        location / {{ return 200 '{{"answer":"ok"}}'; }}
    }}
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location /ungated {{ proxy_pass http://back; }}{gated}
        location /metrics {{ usage_gate_metrics; }}
    }}
"""


def wrk(port: int, path: str, seconds: int) -> float:
    out = subprocess.run(
        [WRK, "-t2", "-c50", f"-d{seconds}s", "-H", "X-User-Id: u0",
         f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def zone_metrics(port: int, name: str) -> dict:
    for z in json.loads(request(port, "/metrics?format=json").body)["zones"]:
        if z["zone"] == name:
            return z
    raise KeyError(name)


def allowed(z: dict) -> int:
    return sum(p["allowed"] for p in z["requests"].values())


def main() -> int:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    ddb = Dynalite().start()
    ng = None
    try:
        ddb.create_table()
        port, upstream = free_port(), free_port()
        ng = Nginx(config(ddb.endpoint, port, upstream),
                   main="env AWS_ACCESS_KEY_ID=bench;\n"
                        "env AWS_SECRET_ACCESS_KEY=bench;\n"
                        "worker_rlimit_nofile 10000;", workers=2)
        ng.start()
        print(f"{'location':10s} {'req/s':>9s}  DynamoDB writes per allowed "
              f"request", flush=True)
        for path in ("/ungated", "/zone") + tuple("/" + m for m in MODES) \
                + ("/ungated",):
            wrk(port, path, 1)                       # warm up
            name = "z_" + path[1:]
            before = zone_metrics(port, name) if path != "/ungated" else None
            rps = wrk(port, path, seconds)
            line = f"{path:10s} {rps:9.0f}"
            if before and before.get("dynamodb"):
                time.sleep(2.5)                      # a sync lands
                after = zone_metrics(port, name)
                n = allowed(after) - allowed(before)
                w = after["dynamodb"]["writes"] - before["dynamodb"]["writes"]
                line += (f"  {w} writes / {n} allowed = {w / max(n, 1):.4f}"
                         f" (backlog {after['dynamodb']['sync_backlog']})")
            print(line, flush=True)
    finally:
        if ng:
            ng.stop()
            ng.cleanup()
        ddb.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
