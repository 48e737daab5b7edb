#!/usr/bin/python3
"""make bench: what the usage gate costs, measured with wrk on loopback.

One nginx (the stock /usr/sbin/nginx, `worker_processes 2`, access_log off)
serves every row in the same run (but the JWT cache-off rows, below):

    wrk --> :PORT  location /ungated      proxy_pass --> :UPSTREAM  return 200
                   location /gated        (usage_gate)       (a second server
                   location /gated-anon   (usage_gate, anon)  block, same nginx)
                   location /gated-rs256  (usage_gate, identity from a
                   location /gated-es256   verified bearer token)

The upstream is a `return 200` of a small JSON body in a second server
block of the same nginx, reached over a keepalive upstream: the cheapest
real proxy hop there is, so the gate's own cost is what the ratios show
and no application is the bottleneck.

The many-owner rows put 100,000 and 1,000,000 owners into zones of the
gate and of nginx's limit_req (the same keys) before the runs, and are
measured twice: through the proxy hop, and with nginx answering itself
(empty_gif, wrk -t1 -c32), the setting the owner index was first measured
in.  Each has a baseline of its own: the ungated location sent the same
ids, since walking a million request lines costs wrk more than one.

Every row's seconds are cut into slices (UG_BENCH_ROUNDS), and the whole
schedule runs once per slice, so that the VM's drift over tens of seconds
falls on a row and its baselines alike.

The JWT rows measure the verified-token identity with the
per-worker token cache on (`usage_gate_jwt_cache 1024;`, the default)
and off.  The cache size is an http-level directive, so the cache-off
rows run against a second nginx, started with the main one and
identical to it but for `usage_gate_jwt_cache off;` (INSTANCES); each
cache-off row runs right after its cache-on row, between the same two
ungated runs of the main nginx, and its figure is printed beside the
cached one's.  Keys (RSA 2048, EC P-256) are made at bench time with
python3-cryptography, tokens minted with PyJWT (python3-jwt).

Then another, separate nginx measures the zone's bytes per owner: it
fills small zones (1m and 2m) with distinct owners until the gate says it
is full, and divides.

Rows are data (ROWS below).  A later capability adds a row by adding a
Row, and, if it needs them, a location (LOCATIONS), http-level lines
(HTTP_EXTRA), a second nginx with other http-level lines (INSTANCES,
Row.instance), a fixture (Row.setup/teardown: mint tokens, start a store),
extra figures (Row.metrics, shown in the notes column) and a row it is
printed beside (Row.beside).

Environment:
  UG_MODULE          the .so to load (make bench sets it)
  UG_BENCH_DURATION  seconds per measured row (default 8)
  UG_BENCH_ROUNDS    slices each row's seconds are cut into, the
                     schedule run once per slice (default 4)
  UG_BENCH_BUDGET    seconds the measured runs may take, estimated
                     before they start (default 360; filling the zones
                     is not counted)
  UG_BENCH_WARMUP    seconds of warm-up per workload (default 1)
  UG_BENCH_THREADS   wrk threads (default 2)
  UG_BENCH_CONNS     wrk connections (default 50)
  UG_BENCH_PIN       none (default) | split: nginx workers and wrk on
                     disjoint CPUs with taskset | spread: one nginx worker
                     per CPU (worker_cpu_affinity), wrk unpinned
  UG_BENCH_ONLY      comma-separated row keys to run (the baseline rows
                     always run)
  UG_BENCH_QUIET_WAIT  seconds to wait, at most, for other processes to
                     quieten before the run (default 15)
  UG_BENCH_NICE      niceness for nginx and wrk (default 0; e.g. -10 on a
                     machine others are busy on: steadier figures, at
                     their expense)
  UG_BENCH_RETRIES   how many runs during which other processes were busy
                     may be run once more, within the time budget
                     (default 4)
  UG_BENCH_KEEP=1    keep the temp dirs (configs, error logs)

Options:
  --update-doc       also replace the results block of docs/benchmarks.md
  --no-zone          skip the bytes-per-owner measurement
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
WRK_DIR = os.path.join(HERE, "wrk")
DOC = os.path.join(TOP, "docs", "benchmarks.md")
OUT_DIR = os.path.join(TOP, "build", "bench")

NGINX = "/usr/sbin/nginx"
WRK = "/usr/bin/wrk"
TASKSET = shutil.which("taskset") or "/usr/bin/taskset"

MODULE = os.path.abspath(os.environ.get("UG_MODULE") or os.path.join(
    TOP, "build", "nginx", "objs", "ngx_http_usage_gate_module.so"))

DURATION = int(os.environ.get("UG_BENCH_DURATION", "8"))
# Each run is made of ROUNDS slices of DURATION / ROUNDS seconds: the
# whole schedule runs ROUNDS times, and a run's figures are the sums of
# its slices.  On a shared VM the machine's speed drifts over tens of
# seconds; slices spread every row over the whole bench, so that a drift
# falls on the gated and the ungated runs alike.
ROUNDS = max(1, int(os.environ.get("UG_BENCH_ROUNDS", "4")))
SLICE = max(1, DURATION // ROUNDS)
WARMUP = int(os.environ.get("UG_BENCH_WARMUP", "1"))
THREADS = int(os.environ.get("UG_BENCH_THREADS", "2"))
CONNS = int(os.environ.get("UG_BENCH_CONNS", "50"))
PIN = os.environ.get("UG_BENCH_PIN", "none")
ONLY = [k for k in os.environ.get("UG_BENCH_ONLY", "").split(",") if k]
KEEP = os.environ.get("UG_BENCH_KEEP") == "1"
NICE = int(os.environ.get("UG_BENCH_NICE", "0"))

WORKERS = 2
GROUP = 2                  # gated rows between two baseline runs
OWNERS = 100_000           # row 3: distinct owners
BENCH_ZONE = "64m"         # room for OWNERS at <= 256 B each, and more
ID_LEN = 32                # zone measurement: owner ids of this many bytes

GOAL_RATIO = 0.90          # gated >= 0.90 of ungated, headers on
GOAL_JWT = 0.85            # JWT with the cache >= 0.85 of ungated
GOAL_BYTES = 256           # <= 256 bytes per owner, ids <= 32 B

# A row during which other processes used more than this share of all
# CPU time is flagged: its figures say more about them than about us.
NOISY_PCT = 10.0

# The measured runs must stay under 6 minutes (filling the zones with
# their owners before the runs, about a minute, is not counted).
BUDGET_S = int(os.environ.get("UG_BENCH_BUDGET", "360"))
RESERVE_S = 15             # kept for the zone measurement and the report
RETRIES = int(os.environ.get("UG_BENCH_RETRIES", "4"))


# ------------------------------------------------------------ the nginx side

# The plan rows 2-4 use: limits so high nothing is ever denied, yet both
# are on, so every header the gate can send is sent and every step of the
# decision runs (GCRA and month).  "open" is the same with both limits
# off: the gate then sends fewer headers (no RateLimit*, no
# X-Usage-Remaining) and skips the GCRA.
HTTP_GATE = """\
    usage_gate_zone             bench:{zone};
    usage_gate_plan             bench  month=1000000000000 minute=1000000000;
    usage_gate_plan             open   month=off minute=off;
    usage_gate_default_plan     bench;
    usage_gate_identity         header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt        "bench-salt-not-a-secret";
    usage_gate_headers          on;
"""

# Locations of the front server.  Every one proxies to the same upstream;
# they differ only in the gate's directives.
LOCATIONS: Dict[str, str] = {
    "/ungated": "",
    "/gated": "usage_gate bench;",
    # the peer (127.0.0.1) is a trusted proxy, so take the header source
    # away here: every request is the anonymous owner of its address, one
    # HMAC-SHA256 per request
    "/gated-anon": "usage_gate_identity anon; usage_gate bench;",
}

# Where a location's response comes from, for the locations that do not
# proxy to the upstream: path -> content directive.  The "empty_gif"
# rows answer from nginx itself, with no proxy hop (see many_prepare).
CONTENT: Dict[str, str] = {}

# http{}-level lines rows may add (a later JWT or DynamoDB row).
HTTP_EXTRA: List[str] = []

# The nginx instances, each with the http{}-level lines of its own (on
# top of HTTP_GATE and HTTP_EXTRA).  "main" serves every row but those
# that need another setting of an http-only directive (the JWT cache-off
# rows: usage_gate_jwt_cache); a row names its instance (Row.instance),
# and a row's `prepare` adds the instance.  Every instance has the same
# locations and upstream, each on ports of its own, and all are started
# together before the runs (an idle nginx costs nothing); the baseline
# runs are always the main nginx's.
MAIN = "main"
INSTANCES: Dict[str, List[str]] = {MAIN: []}

UPSTREAM_BODY = '{"answer":"ok"}'


@dataclasses.dataclass
class Row:
    key: str                       # short name, for UG_BENCH_ONLY
    label: str                     # the table's first column
    path: str                      # a key of LOCATIONS
    owners: int = 1                # distinct X-User-Id values; 0: none
    headers: List[str] = dataclasses.field(default_factory=list)
    #                                more request headers (wrk -H)
    script: str = "owners.lua"     # a file in bench/wrk/; every row uses
    #                                a Lua request() so that every row has
    #                                the same client-side cost
    script_args: Optional[List[str]] = None   # default: OWNERS THREADS
    baseline: bool = False         # an ungated row: the ratios' reference
    base: str = "ungated"          # the key of the baseline row this
    #                                row's ratio is against
    threads: Optional[int] = None  # wrk -t (default UG_BENCH_THREADS)
    conns: Optional[int] = None    # wrk -c (default UG_BENCH_CONNS)
    expect: Dict[str, str] = dataclasses.field(default_factory=dict)
    #                                response headers a probe must see
    #                                (name -> regex); checked before the run
    goal: Optional[float] = GOAL_RATIO
    prepare: Optional[Callable[["Bench"], None]] = None
    #                                before nginx starts: write files it
    #                                reads (keys) into bench.workdir, add
    #                                to LOCATIONS / HTTP_EXTRA
    setup: Optional[Callable[["Bench"], None]] = None
    #                                after nginx starts, before the runs
    teardown: Optional[Callable[["Bench"], None]] = None
    metrics: Optional[Callable[["Bench", "Result"], str]] = None
    note: str = ""
    instance: str = MAIN           # a key of INSTANCES: the nginx it runs on
    group: Optional[str] = None    # rows of one group run one after the
    #                                other between the same two baseline
    #                                runs (a row and the one beside it)
    beside: Optional[str] = None   # the key of a row this one is printed
    #                                beside (cache off beside cache on):
    #                                its figures as a fraction of that row's

    def args(self) -> List[str]:
        if self.script_args is not None:
            return self.script_args
        return [str(self.owners), str(self.wrk_threads())]

    def wrk_threads(self) -> int:
        return self.threads or THREADS

    def wrk_conns(self) -> int:
        return self.conns or CONNS


def populate_owners(bench: "Bench", n: int = OWNERS, conns: int = 4,
                    path: str = "/gated"):
    """Puts owners u0 .. u<n-1> into the zone of `path` before the runs
    (pipelined requests over `conns` connections), so that
    the measured run sees all of them in the zone however fast the
    machine is: lookups among n owners, as in steady state."""
    import threading

    errors: List[str] = []

    def part(k0: int):
        try:
            conn = Pipeline(bench.port)
            try:
                for start in range(k0 * 256, n, 256 * conns):
                    reqs = [(f"GET {path} HTTP/1.1\r\nHost: bench\r\n"
                             f"X-User-Id: u{k}\r\n\r\n").encode()
                            for k in range(start, min(n, start + 256))]
                    for status, _ in conn.batch(reqs):
                        if status != 200:
                            raise RuntimeError(f"status {status}")
            finally:
                conn.close()
        except Exception as e:          # reported by the caller
            errors.append(str(e))

    t0 = time.monotonic()
    threads = [threading.Thread(target=part, args=(k,)) for k in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("populating the zone: " + errors[0])
    print(f"  {n:,} owners put into the zone of {path} in "
          f"{time.monotonic() - t0:.1f}s", flush=True)


ALL_HEADERS = {
    "X-Plan": r"^bench$",
    "X-Usage-Remaining": r"^\d+$",
    "X-Usage-This-Minute": r"^\d+$",
    "RateLimit-Policy": r'"minute"',
    "RateLimit": r'"month"',
}

# ------------------------------------------------------------- JWT rows

# Two gated locations that take the owner from a verified bearer
# token (`usage_gate_identity jwt anon;`), one per algorithm, with the
# same plan limits as /gated: the tokens' plan claim names the plan
# "jwt", which has the bench plan's limits, so that every header is sent,
# every step of the decision runs, and `X-Plan: jwt` on the probe shows
# that the token was verified and its claims read.
#
# One token per row, as one client sends: a browser session sends the
# same token on every request until it is refreshed (Clerk: a new one
# every 60 s or so), so with the cache on every request after each
# worker's first is a hit.  With the cache off every request is verified,
# whatever the number of tokens.
JWT_ALGS = {"RS256": "bench-rsa-1", "ES256": "bench-ec-1"}      # alg: kid
JWT_PLAN = "jwt"
# usage_gate_jwt_cache of the main nginx: 1024 (the default size, said
# explicitly); UG_BENCH_JWT_CACHE=off is for bench/profile.py, which
# profiles the main nginx only (`UG_BENCH_JWT_CACHE=off bench/profile.py
# --rows ungated,rs256,es256`: the verification's instructions)
JWT_CACHE = os.environ.get("UG_BENCH_JWT_CACHE", "1024")
NOCACHE = "jwt-cache-off"        # the nginx with usage_gate_jwt_cache off


def jwt_keys(bench: "Bench") -> Dict[str, str]:
    """Once per bench, before nginx starts: an RSA 2048 key and an EC
    P-256 key, made now (python3-cryptography); their public halves, with
    kids, in a JWKS file in bench.workdir; one token per algorithm
    (PyJWT), Clerk-shaped, valid for an hour.  The tokens are in
    bench.state["jwt_tokens"] (alg -> token)."""
    if "jwt_tokens" in bench.state:
        return bench.state["jwt_tokens"]         # type: ignore
    import jwt  # PyJWT, Debian's python3-jwt
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    priv = {"RS256": rsa.generate_private_key(public_exponent=65537,
                                              key_size=2048),
            "ES256": ec.generate_private_key(ec.SECP256R1())}
    algos = jwt.algorithms.get_default_algorithms()
    keys = []
    for alg, key in priv.items():
        jwk = json.loads(algos[alg].to_jwk(key.public_key()))
        jwk.update(kid=JWT_ALGS[alg], use="sig", alg=alg)
        keys.append(jwk)
    path = os.path.join(bench.workdir, "jwks.json")
    with open(path, "w") as f:
        json.dump({"keys": keys}, f)
    now = int(time.time())
    tokens = {}
    for alg, key in priv.items():
        # a Clerk session token's claims (its ids are 32 characters)
        claims = {"azp": "https://app.bench.example",
                  "exp": now + 3600, "iat": now, "nbf": now - 10,
                  "iss": "https://clerk.bench.example",
                  "sid": "sess_2bench" + "0" * 21,
                  "sub": "user_2bench" + "0" * 21,
                  "public_metadata": {"plan": JWT_PLAN}}
        tokens[alg] = jwt.encode(claims, key, algorithm=alg,
                                 headers={"kid": JWT_ALGS[alg]})
    bench.state["jwt_tokens"] = tokens
    bench.state["jwks"] = path
    # module-level tables: added once per process, whatever the benches
    plan = (f"    usage_gate_plan             {JWT_PLAN}  "
            f"month=1000000000000 minute=1000000000;")
    if plan not in HTTP_EXTRA:
        HTTP_EXTRA.append(plan)
    cache = f"    usage_gate_jwt_cache        {JWT_CACHE};"
    if cache not in INSTANCES[MAIN]:
        INSTANCES[MAIN].append(cache)
    for alg in priv:
        LOCATIONS[f"/gated-{alg.lower()}"] = (
            f"usage_gate_identity jwt anon; "
            f"usage_gate_jwt_keys {path}; usage_gate bench;")
    return tokens


def jwt_row(alg: str, cache: bool) -> Row:
    """The row of one algorithm, cache on (main nginx) or off (the
    NOCACHE nginx)."""
    key = alg.lower() + ("" if cache else "-nocache")
    on = cache and JWT_CACHE != "off"
    row = Row(key,
              f"gated, JWT {alg}, cache " + ("on" if on else "off"),
              f"/gated-{alg.lower()}", owners=0,
              expect=dict(ALL_HEADERS, **{"X-Plan": f"^{JWT_PLAN}$"}),
              goal=GOAL_JWT if on else None,
              instance=MAIN if cache else NOCACHE,
              group=alg.lower(),
              beside=None if cache else alg.lower(),
              note=(f"Authorization: Bearer <one {alg} token>, "
                    + (f"usage_gate_jwt_cache {JWT_CACHE}: a hit after "
                       f"each worker's first request" if on else
                       "usage_gate_jwt_cache off (main nginx)" if cache
                       else "usage_gate_jwt_cache off (a second nginx): "
                       "every request verified")))

    def prepare(bench: "Bench"):
        tokens = jwt_keys(bench)
        row.headers = [f"Authorization: Bearer {tokens[alg]}"]
        if not cache and NOCACHE not in INSTANCES:
            INSTANCES[NOCACHE] = ["    usage_gate_jwt_cache        off;"]

    def setup(bench: "Bench"):
        # the location does verify: the same token with its signature's
        # first character changed is refused
        token = bench.state["jwt_tokens"][alg]           # type: ignore
        head, sig = token.rsplit(".", 1)
        bad = head + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
        status, hdrs = http_get(bench.port_of(row), row.path,
                                [f"Authorization: Bearer {bad}"])
        if status != 401 or "invalid_token" not in \
                hdrs.get("www-authenticate", ""):
            raise RuntimeError(f"row {row.key}: a token with a bad "
                               f"signature got {status}, not 401")

    row.prepare = prepare
    row.setup = setup
    return row


def bearer_row(alg: str) -> Row:
    """The ungated location with the same bearer token as the JWT rows:
    what the token's bytes cost by themselves (nginx parses the header,
    and proxy_pass sends it upstream, where it is parsed again), gate or
    no gate.  Run first in its algorithm's group."""
    row = Row(f"ungated-{alg.lower()}", f"ungated, {alg} bearer token sent",
              "/ungated", owners=0, goal=None, group=alg.lower(),
              note=f"Authorization: Bearer <the {alg} token of the next "
                   f"rows>, no usage_gate: what the token's bytes cost")

    def prepare(bench: "Bench"):
        row.headers = [f"Authorization: Bearer {jwt_keys(bench)[alg]}"]

    row.prepare = prepare
    return row


def jwks_url_row() -> Row:
    """RS256 with the keys fetched by nginx from a JWKS URL (served by a
    loopback http.server thread of this process) instead of read from a
    file: once fetched, the same key set and the same verification, so
    the figures should match the file row's beside it."""
    row = Row("rs256-url", "gated, JWT RS256, keys from a JWKS URL, "
              "cache on", "/gated-rs256-url", owners=0,
              expect=dict(ALL_HEADERS, **{"X-Plan": f"^{JWT_PLAN}$"}),
              goal=GOAL_JWT if JWT_CACHE != "off" else None, group="rs256",
              note="as the RS256 cache-on row, with usage_gate_jwt_keys "
                   "http://127.0.0.1:PORT/.well-known/jwks.json")

    def prepare(bench: "Bench"):
        import http.server
        import threading

        tokens = jwt_keys(bench)
        row.headers = [f"Authorization: Bearer {tokens['RS256']}"]
        with open(bench.state["jwks"], "rb") as f:        # type: ignore
            body = f.read()

        class Jwks(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        LOCATIONS["/gated-rs256-url"] = (
            f"usage_gate_identity jwt anon; usage_gate_jwt_keys "
            f"http://127.0.0.1:{server.server_address[1]}"
            f"/.well-known/jwks.json; usage_gate bench;")

    def setup(bench: "Bench"):
        # the workers fetch the set right after they start
        deadline = time.monotonic() + 10
        while http_get(bench.port_of(row), row.path,
                       row.headers)[0] != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"row {row.key}: no key set fetched")
            time.sleep(0.1)

    row.prepare = prepare
    row.setup = setup
    return row


# ------------------------------------------------- many owners, limit_req

# The gate and nginx's own limit_req with the same keys (X-User-Id) at
# 100,000 and 1,000,000 distinct owners, each zone filled with all of them
# before the runs (a month's owners of a public API, in steady state).
# The 100,000-owner gate row is "owners" (zone "bench"); the others have
# zones of their own, so that each row looks its owners up among exactly
# its own.  256m holds 1,000,000 owners for both (the gate: about 107
# bytes each; limit_req: a 128-byte slab chunk each).  limit_req's rate
# and burst are high enough that it never rejects: both only count.
MANY = 1_000_000
MANY_ZONE = "256m"


def many_prepare(bench: "Bench"):
    lines = [
        f"    usage_gate_zone             many:{MANY_ZONE};",
        f"    limit_req_zone  $http_x_user_id  zone=lr_owners:{BENCH_ZONE}  "
        f"rate=1000000r/s;",
        f"    limit_req_zone  $http_x_user_id  zone=lr_many:{MANY_ZONE}  "
        f"rate=1000000r/s;",
    ]
    for line in lines:
        if line not in HTTP_EXTRA:
            HTTP_EXTRA.append(line)
    LOCATIONS["/gated-many"] = "usage_gate many;"
    LOCATIONS["/limit-req-owners"] = ("limit_req zone=lr_owners "
                                      "burst=1000 nodelay;")
    LOCATIONS["/limit-req-many"] = "limit_req zone=lr_many burst=1000 nodelay;"


def populate(n: int, path: str,
             zone: Optional[str] = None) -> Callable[["Bench"], None]:
    """A row's setup: owners u0 .. u<n-1> into the zone of `path`, unless
    another row has put them into that zone (`zone`) already."""
    def setup(bench: "Bench"):
        key = ("filled", zone or path)
        if int(bench.state.get(key, 0)) >= n:
            return
        populate_owners(bench, n, path=path)
        bench.state[key] = n
    return setup


# The same comparison as nginx answers it without a proxy hop: the
# location's content is `empty_gif`, and wrk runs one thread over 32
# connections, the setting in which the many-owner index was first
# measured (limit_req then served 0.83 of ungated at 1,000,000 owners).
# Without the upstream a request costs nginx about a third of the
# proxied one, so the gate's fixed cost is a larger share of it, and the
# index's cache misses are too.  Each row has its zone's owners put in
# first (shared with the proxied rows' zones: filled once).
GIF_THREADS = 1
GIF_CONNS = 32


def gif_prepare(bench: "Bench"):
    many_prepare(bench)
    for path, body in (("/ungated-gif", ""),
                       ("/gated-gif", "usage_gate bench;"),
                       ("/limit-req-owners-gif",
                        "limit_req zone=lr_owners burst=1000 nodelay;"),
                       ("/gated-many-gif", "usage_gate many;"),
                       ("/limit-req-many-gif",
                        "limit_req zone=lr_many burst=1000 nodelay;")):
        LOCATIONS[path] = body
        CONTENT[path] = "empty_gif;"


def gif_row(key: str, label: str, path: str, owners: int, zone: str,
            **kw) -> Row:
    return Row(key, f"{label}, empty_gif", path, owners=owners,
               base=f"ungated-gif-{owners}", threads=GIF_THREADS,
               conns=GIF_CONNS,
               prepare=gif_prepare, setup=populate(owners, path, zone),
               group=f"{owners}-gif",
               note=f"\"{label}\" without the proxy hop", **kw)


ROWS: List[Row] = [
    Row("ungated", "ungated", "/ungated", baseline=True, goal=None,
        note="same proxy hop, no usage_gate (X-User-Id: u0 sent, unused)"),
    # The many-owner rows' own baselines: the client sends the same ids
    # (wrk walking a million distinct header lines costs it more per
    # request than sending one), so that only the server differs.
    Row(f"ungated-{OWNERS}", f"ungated, {OWNERS:,} ids sent", "/ungated",
        owners=OWNERS, baseline=True, goal=None,
        note=f"X-User-Id: u0 … u{OWNERS - 1} sent, unused"),
    Row(f"ungated-{MANY}", f"ungated, {MANY:,} ids sent", "/ungated",
        owners=MANY, baseline=True, goal=None,
        note=f"X-User-Id: u0 … u{MANY - 1} sent, unused"),
    Row("one", "gated, 1 owner", "/gated", expect=ALL_HEADERS,
        note="X-User-Id: u0; every usage header (both limits on, "
             "never reached)"),
    Row("one-off", "gated, 1 owner, month=off minute=off", "/gated",
        headers=["X-Plan: open"],
        expect={"X-Plan": r"^open$", "X-Usage-This-Minute": r"^\d+$"},
        note="fewer headers: no RateLimit*, no X-Usage-Remaining"),
    Row("owners", f"gated, {OWNERS:,} owners", "/gated", owners=OWNERS,
        base=f"ungated-{OWNERS}", expect=ALL_HEADERS,
        setup=populate(OWNERS, "/gated", "bench"), group="owners",
        note=f"X-User-Id: u0 … u{OWNERS - 1}, round robin, all in the "
             f"zone before the run"),
    Row("limit-req-owners", f"limit_req, {OWNERS:,} owners",
        "/limit-req-owners", owners=OWNERS, base=f"ungated-{OWNERS}",
        goal=None, group="owners",
        prepare=many_prepare,
        setup=populate(OWNERS, "/limit-req-owners", "lr_owners"),
        note=f"nginx's limit_req keyed by X-User-Id ({BENCH_ZONE}), the "
             f"same owners, all in its zone before the run; no usage_gate"),
    Row("many", f"gated, {MANY:,} owners", "/gated-many", owners=MANY,
        base=f"ungated-{MANY}", expect=ALL_HEADERS, goal=0.95, group="many",
        prepare=many_prepare, setup=populate(MANY, "/gated-many", "many"),
        note=f"X-User-Id: u0 … u{MANY - 1}, round robin, all in a "
             f"{MANY_ZONE} zone before the run"),
    Row("limit-req-many", f"limit_req, {MANY:,} owners", "/limit-req-many",
        owners=MANY, base=f"ungated-{MANY}", goal=None, group="many",
        prepare=many_prepare,
        setup=populate(MANY, "/limit-req-many", "lr_many"),
        note=f"limit_req keyed by X-User-Id ({MANY_ZONE}), the same "
             f"owners, all in its zone before the run"),
    Row(f"ungated-gif-{OWNERS}", f"ungated, empty_gif, {OWNERS:,} ids sent",
        "/ungated-gif", owners=OWNERS, baseline=True, goal=None,
        threads=GIF_THREADS, conns=GIF_CONNS, prepare=gif_prepare,
        note=f"no proxy hop: nginx answers with empty_gif; wrk "
             f"-t{GIF_THREADS} -c{GIF_CONNS}; no usage_gate"),
    Row(f"ungated-gif-{MANY}", f"ungated, empty_gif, {MANY:,} ids sent",
        "/ungated-gif", owners=MANY, baseline=True, goal=None,
        threads=GIF_THREADS, conns=GIF_CONNS, prepare=gif_prepare,
        note=f"no proxy hop: nginx answers with empty_gif; wrk "
             f"-t{GIF_THREADS} -c{GIF_CONNS}; no usage_gate"),
    gif_row("owners-gif", f"gated, {OWNERS:,} owners", "/gated-gif",
            OWNERS, "bench", expect=ALL_HEADERS),
    gif_row("limit-req-owners-gif", f"limit_req, {OWNERS:,} owners",
            "/limit-req-owners-gif", OWNERS, "lr_owners", goal=None),
    gif_row("many-gif", f"gated, {MANY:,} owners", "/gated-many-gif", MANY,
            "many", expect=ALL_HEADERS, goal=0.95),
    gif_row("limit-req-many-gif", f"limit_req, {MANY:,} owners",
            "/limit-req-many-gif", MANY, "lr_many", goal=None),
    Row("anon", "gated, anonymous owner", "/gated-anon", owners=0,
        expect=ALL_HEADERS,
        note="no identity header: the owner is an HMAC-SHA256 of the "
             "address; one client address, which each worker remembers "
             "with its owner (one HMAC per worker)"),
    # Each cache-off row right after its cache-on row, and the
    # RS256 token's cost without the gate before them (Row.group: all
    # between the same two ungated runs).
    bearer_row("RS256"),
    jwt_row("RS256", cache=True),
    jwt_row("RS256", cache=False),
    jwks_url_row(),
    jwt_row("ES256", cache=True),
    jwt_row("ES256", cache=False),
    # DynamoDB is measured apart, by t/bench/dynamodb.py.  The
    # baseline runs are scheduled around the gated rows by schedule().
]


def _renice():
    """In a child before exec: its niceness, and that of its scheduling
    autogroup.  With sched_autogroup on, CPU time is first shared
    between sessions, so nice alone changes nothing against other
    sessions' work; a new session (nginx) has its own group."""
    if NICE:
        os.nice(NICE)
        set_autogroup_nice()


def set_autogroup_nice():
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(NICE))
    except OSError:
        pass


def free_port() -> int:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


WORKER_USER = "nobody"
WORKER_GROUP = "nogroup"


def worker_dir(prefix: str) -> str:
    """A temp dir the unprivileged workers may use (mkdtemp makes it 0700):
    readable by all and, as root, owned by the worker user."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    if os.geteuid() == 0:
        shutil.chown(d, WORKER_USER, WORKER_GROUP)
    return d


class Nginx:
    """The stock nginx with the module, in a temp dir, in the foreground
    (daemon off) in its own process group, so that stopping it stops its
    workers too."""

    def __init__(self, name: str, module: str, http: str, workers: int,
                 main: str = "", wrapper: Optional[List[str]] = None):
        self.name = name
        self.dir = worker_dir(f"ug-bench-{name}-")
        # workers=0: a single process (master_process off), e.g. under
        # valgrind, which `wrapper` puts in front of nginx
        self.workers = workers
        self.wrapper = wrapper or []
        self.proc: Optional[subprocess.Popen] = None
        self.error_log_path = os.path.join(self.dir, "error.log")
        d = self.dir
        # the master as root, the workers unprivileged, as deployed
        user = (f"user {WORKER_USER} {WORKER_GROUP};\n"
                if os.geteuid() == 0 else "")
        self.conf = (
            f"load_module {module};\n"
            f"daemon off;\n"
            f"master_process {'on' if workers else 'off'};\n"
            f"worker_processes {max(workers, 1)};\n"
            f"{main}"
            f"{user}"
            f"pid {d}/nginx.pid;\n"
            f"error_log {d}/error.log warn;\n"
            f"events {{ worker_connections 4096; }}\n"
            f"http {{\n"
            f"    access_log off;\n"
            f"    keepalive_requests 10000000;\n"
            f"    client_body_temp_path {d}/client_body_temp;\n"
            f"    proxy_temp_path {d}/proxy_temp;\n"
            f"    fastcgi_temp_path {d}/fastcgi_temp;\n"
            f"    uwsgi_temp_path {d}/uwsgi_temp;\n"
            f"    scgi_temp_path {d}/scgi_temp;\n"
            f"{http}"
            f"}}\n")
        self.conf_path = os.path.join(d, "nginx.conf")
        with open(self.conf_path, "w") as f:
            f.write(self.conf)

    def start(self, ports: List[int]):
        t = subprocess.run([NGINX, "-t", "-q", "-p", self.dir, "-c",
                            "nginx.conf", "-e", self.error_log_path],
                           capture_output=True, text=True, timeout=30)
        if t.returncode != 0:
            raise RuntimeError(f"nginx -t failed for the {self.name} "
                               f"config ({self.conf_path}):\n"
                               f"{t.stdout}{t.stderr}")
        self.proc = subprocess.Popen(
            self.wrapper + [NGINX, "-p", self.dir, "-c", "nginx.conf",
                            "-e", self.error_log_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
            cwd=self.dir, preexec_fn=_renice)
        deadline = time.monotonic() + (60 if self.wrapper else 15)
        while not (len(self.worker_pids()) >= self.workers
                   and all(port_open(p) for p in ports)):
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx ({self.name}) exited:\n"
                                   + self.error_log())
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx ({self.name}) did not start:\n"
                                   + self.error_log())
            time.sleep(0.05)

    def worker_pids(self) -> List[int]:
        if not self.proc or self.proc.poll() is not None:
            return []
        pids = []
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/stat") as f:
                    rest = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(rest[1]) == self.proc.pid:
                pids.append(int(p))
        return pids

    def stop(self):
        if not self.proc:
            return
        pgid = self.proc.pid          # the master leads its own group
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(pgid, signal.SIGKILL)   # stray workers, if any
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def error_log(self) -> str:
        try:
            with open(self.error_log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cleanup(self):
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------- HTTP

def http_get(port: int, path: str, headers: List[str]) -> Tuple[int, Dict]:
    """One HTTP/1.1 request; (status, {lower-case name: value})."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        req = f"GET {path} HTTP/1.1\r\nHost: bench\r\n"
        req += "".join(h + "\r\n" for h in headers)
        req += "Connection: close\r\n\r\n"
        s.sendall(req.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    hdrs = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs


class Pipeline:
    """A keep-alive connection that sends requests in pipelined batches:
    enough speed from Python to fill a zone in a second or two."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def batch(self, reqs: List[bytes]) -> List[Tuple[int, bytes]]:
        self.sock.sendall(b"".join(reqs))
        out = []
        while len(out) < len(reqs):
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                self._more()
                continue
            head = self.buf[:end]
            m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
            if not m:
                raise RuntimeError("response without Content-Length: "
                                   + head.decode("latin-1"))
            total = end + 4 + int(m.group(1))
            while len(self.buf) < total:
                self._more()
            out.append((int(head.split(b" ", 2)[1]), head))
            self.buf = self.buf[total:]
        return out

    def _more(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("connection closed mid-batch")
        self.buf += chunk

    def close(self):
        self.sock.close()


# -------------------------------------------------------------------- wrk

@dataclasses.dataclass
class Result:
    row: Row
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    requests: int = 0
    bad: int = 0                  # non-2xx/3xx and socket errors
    ratio: Optional[float] = None
    ngx_us: float = 0.0           # nginx workers' CPU per request, us
    wrk_us: float = 0.0           # wrk's CPU per request, us
    other_pct: float = 0.0        # CPU used by everything else, % of all
    cpu_ratio: Optional[float] = None
    ngx_extra: float = 0.0        # nginx CPU per request over the baseline
    tries: int = 1                # runs made for this one (noise retries)
    label: str = ""
    extra: str = ""
    raw: str = ""
    beside: Optional["Result"] = None   # the result of row.beside
    port: int = 0                 # where wrk sent it


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not m:
        raise ValueError(f"latency {text!r}")
    return float(m.group(1)) * _UNIT_MS[m.group(2)]


def wrk_cmd(port: int, row: Row, seconds: int) -> List[str]:
    cmd = [WRK, "-t", str(row.wrk_threads()), "-c", str(row.wrk_conns()),
           "-d", f"{seconds}s",
           "--latency", "--timeout", "5s"]
    for h in row.headers:
        cmd += ["-H", h]
    cmd += ["-s", os.path.join(WRK_DIR, row.script)]
    cmd.append(f"http://127.0.0.1:{port}{row.path}")
    cmd += ["--"] + row.args()
    if PIN == "split":
        cmd = [TASKSET, "-c", wrk_cpus()] + cmd
    return cmd


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def system_cpu() -> Tuple[float, float]:
    """(busy, total) CPU seconds since boot, all CPUs, from /proc/stat.
    Interrupt and softirq time is left out of `busy`: on loopback it is
    mostly our own traffic, which no process is charged for."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    idle = v[3] + v[4] + v[5] + v[6]
    return (sum(v[:8]) - idle) / CLK_TCK, sum(v[:8]) / CLK_TCK


def run_wrk(port: int, row: Row, seconds: int,
            nginx: Optional["Nginx"] = None) -> Result:
    cmd = wrk_cmd(port, row, seconds)
    pids = nginx.worker_pids() if nginx else []
    ngx0 = sum(proc_cpu(p) for p in pids)
    ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, tot0 = system_cpu()
    # its own session (so its own autogroup, for UG_BENCH_NICE): the
    # caller's session is left as it was
    p = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=seconds + 30, preexec_fn=_renice,
                       start_new_session=True)
    busy1, tot1 = system_cpu()
    ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ngx = sum(proc_cpu(p) for p in pids) - ngx0
    wrk = (ch1.ru_utime + ch1.ru_stime) - (ch0.ru_utime + ch0.ru_stime)
    out = p.stdout + p.stderr
    if p.returncode != 0:
        raise RuntimeError(f"wrk failed ({p.returncode}): {' '.join(cmd)}\n"
                           + out)
    r = Result(row=row, raw=out, port=port)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError("no Requests/sec in wrk's output:\n" + out)
    r.rps = float(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    r.requests = int(m.group(1)) if m else 0
    for pct, attr in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        if m:
            setattr(r, attr, _ms(m.group(1)))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    r.bad = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", out)
    if m:
        r.bad += sum(int(x) for x in m.groups())
    if r.requests and pids:
        r.ngx_us = ngx / r.requests * 1e6
        r.wrk_us = wrk / r.requests * 1e6
        if tot1 > tot0:
            r.other_pct = max(0.0, (busy1 - busy0) - ngx - wrk) \
                / (tot1 - tot0) * 100
    return r


def cpus() -> List[int]:
    return sorted(os.sched_getaffinity(0))


def wrk_cpus() -> str:
    c = cpus()
    return str(c[-1])


def nginx_cpus() -> str:
    c = cpus()
    return ",".join(str(x) for x in (c[:-1] or c))


# ----------------------------------------------------------------- bench

class Bench:
    def __init__(self, module: str):
        self.module = module
        # the main nginx (the other instances' are in self.others)
        self.port = free_port()
        self.upstream_port = free_port()
        self.nginx: Optional[Nginx] = None
        # instance name -> (nginx, port, upstream port), but for MAIN
        self.others: Dict[str, Tuple[Nginx, int, int]] = {}
        self.state: Dict[str, object] = {}     # for row fixtures
        self.workdir = worker_dir("ug-bench-work-")

    def port_of(self, row: Row) -> int:
        return self.port if row.instance == MAIN else \
            self.others[row.instance][1]

    def nginx_of(self, row: Row) -> Optional[Nginx]:
        return self.nginx if row.instance == MAIN else \
            self.others[row.instance][0]

    def all_nginx(self) -> List[Nginx]:
        return [n for n in [self.nginx] + [o[0] for o in
                                           self.others.values()] if n]

    def http_conf(self, instance: str = MAIN,
                  ports: Optional[Tuple[int, int]] = None) -> str:
        port, upstream_port = ports or (self.port, self.upstream_port)
        locs = ""
        for path, body in LOCATIONS.items():
            content = CONTENT.get(path, "proxy_pass http://bench_app;")
            locs += (f"        location = {path} {{\n"
                     f"            {body}\n"
                     f"            {content}\n"
                     f"        }}\n")
        return (
            HTTP_GATE.format(zone=BENCH_ZONE)
            + "".join(line + "\n" for line in HTTP_EXTRA)
            + "".join(line + "\n" for line in INSTANCES.get(instance, []))
            + f"    upstream bench_app {{\n"
              f"        server 127.0.0.1:{upstream_port};\n"
              f"        keepalive 64;\n"
              f"    }}\n"
              f"    server {{\n"
              f"        listen 127.0.0.1:{upstream_port};\n"
              f"        location / {{\n"
              f"            default_type application/json;\n"
              f"            return 200 '{UPSTREAM_BODY}';\n"
              f"        }}\n"
              f"    }}\n"
              f"    server {{\n"
              f"        listen 127.0.0.1:{port};\n"
              f"        proxy_http_version 1.1;\n"
              f"        proxy_set_header Connection \"\";\n"
              f"{locs}"
              f"    }}\n")

    def start(self, workers: int = WORKERS,
              wrapper: Optional[List[str]] = None):
        main = ""
        if PIN == "spread" and workers:
            main = "worker_cpu_affinity auto;\n"
        self.nginx = Nginx(MAIN, self.module, self.http_conf(), workers,
                           main, wrapper)
        self.nginx.start([self.port, self.upstream_port])
        started = [self.nginx]
        # the other instances (rows' prepare added them), the same way
        for name in INSTANCES:
            if name == MAIN:
                continue
            if wrapper:
                # bench/profile.py sends to the main nginx only
                raise RuntimeError(f"rows of the {name} nginx cannot be "
                                   f"profiled: profile the main one")
            ports = (free_port(), free_port())
            ng = Nginx(name, self.module, self.http_conf(name, ports),
                       workers, main, wrapper)
            self.others[name] = (ng, ports[0], ports[1])
            ng.start(list(ports))
            started.append(ng)
        if PIN == "split":
            for ng in started:
                for pid in [ng.proc.pid] + ng.worker_pids():
                    subprocess.run([TASKSET, "-pc", nginx_cpus(), str(pid)],
                                   capture_output=True, check=True)

    def probe(self, row: Row):
        """One request before the run: the row must answer 200 with the
        headers it claims to measure."""
        headers = list(row.headers)
        if row.owners:
            headers.append("X-User-Id: u0")
        status, hdrs = http_get(self.port_of(row), row.path, headers)
        if status != 200:
            raise RuntimeError(f"row {row.key}: probe answered {status}")
        for name, rx in row.expect.items():
            v = hdrs.get(name.lower())
            if v is None or not re.search(rx, v):
                raise RuntimeError(f"row {row.key}: probe response lacks "
                                   f"{name} matching {rx!r}: {hdrs}")

    def stop(self):
        for ng in self.all_nginx():
            ng.stop()

    def cleanup(self):
        for ng in self.all_nginx():
            ng.cleanup()


def schedule(rows: List[Row]) -> List[Row]:
    """The order of the runs: the baseline first, last, and after every
    GROUP gated rows (or after the rows of a Row.group, however many), so
    that each gated row is bracketed by baseline runs just before and
    just after it.  On a shared machine the load
    drifts; a ratio against the neighbouring baselines cancels most of
    that drift, where one against a single early baseline would not."""
    bases = {r.key: r for r in rows if r.baseline}
    runs: List[List[Row]] = []
    for r in rows:
        if r.baseline:
            continue
        last = runs[-1] if runs else None
        if last and last[-1].base != r.base:
            runs.append([r])          # another baseline: a run of its own
        elif last and r.group and last[-1].group == r.group:
            last.append(r)            # rows of one group stay together
        elif (last and not r.group and not last[-1].group
              and len(last) < GROUP):
            last.append(r)
        else:
            runs.append([r])
    if not runs:
        return list(bases.values())[:1]
    order: List[Row] = []
    for run in runs:
        base = bases[run[0].base]
        if not order or order[-1] is not base:
            order.append(base)
        order += run + [base]
    return order


def run_slice(bench: Bench, row: Row, label: str, retries: List[int],
              deadline: float) -> Result:
    print(f"  {label:<40} ", end="", flush=True)
    r = run_wrk(bench.port_of(row), row, SLICE, bench.nginx_of(row))
    # other sessions' bursts: run it again while the budget lasts, and
    # keep the quietest of the tries
    while (r.other_pct > NOISY_PCT and retries[0] > 0 and r.tries < 2
           and time.monotonic() + SLICE + RESERVE_S < deadline):
        retries[0] -= 1
        print(f"{r.rps:>8,.0f} req/s, others {r.other_pct:.0f}% "
              f"CPU: again", flush=True)
        print(f"  {label:<40} ", end="", flush=True)
        r2 = run_wrk(bench.port_of(row), row, SLICE, bench.nginx_of(row))
        r2.tries = r.tries + 1
        r = r2 if r2.other_pct < r.other_pct else \
            dataclasses.replace(r, tries=r2.tries)
    print(f"{r.rps:>8,.0f} req/s  p99 {r.p99_ms:6.2f} ms  "
          f"nginx {r.ngx_us:5.1f} us/req  wrk {r.wrk_us:4.1f} "
          f"us/req  others {r.other_pct:3.0f}% CPU"
          + (f"  ({r.bad} errors)" if r.bad else ""), flush=True)
    return r


def merge_slices(parts: List[Result]) -> Result:
    """One run's figures from its slices: requests/s over the slices'
    whole time, CPU per request over all their requests, the median of
    the slices' p50 and the highest p99."""
    first = parts[0]
    n = sum(p.requests for p in parts)
    secs = sum(p.requests / p.rps for p in parts if p.rps)
    r = Result(row=first.row, port=first.port)
    r.requests = n
    r.rps = n / secs if secs else 0.0
    r.bad = sum(p.bad for p in parts)
    if n:
        r.ngx_us = sum(p.ngx_us * p.requests for p in parts) / n
        r.wrk_us = sum(p.wrk_us * p.requests for p in parts) / n
    r.other_pct = sum(p.other_pct for p in parts) / len(parts)
    r.p50_ms = sorted(p.p50_ms for p in parts)[len(parts) // 2]
    r.p99_ms = max(p.p99_ms for p in parts)
    r.tries = max(p.tries for p in parts)
    r.raw = "".join(p.raw for p in parts)
    return r


def measure_rows(bench: Bench, rows: List[Row],
                 deadline: float) -> List[Result]:
    retries = [RETRIES]
    started = time.monotonic()
    for row in rows:
        if row.setup:
            row.setup(bench)
    # filling zones is not measured: it takes nothing from the retries
    deadline += time.monotonic() - started
    try:
        for row in rows:
            bench.probe(row)
        # warm-up: each distinct workload once, unmeasured
        seen = set()
        for row in rows:
            k = (row.instance, row.path, tuple(row.headers), row.script,
                 tuple(row.args()))
            if k in seen or WARMUP <= 0:
                continue
            seen.add(k)
            run_wrk(bench.port_of(row), row, WARMUP)
        order = schedule(rows)
        nbase = collections.Counter(r.key for r in order if r.baseline)
        kbase: Dict[str, int] = collections.Counter()
        labels = []
        for row in order:
            label = row.label
            if row.baseline:
                kbase[row.key] += 1
                label = f"{row.label} ({kbase[row.key]}/{nbase[row.key]})"
            labels.append(label)
        slices: List[List[Result]] = [[] for _ in order]
        for rnd in range(ROUNDS):
            if ROUNDS > 1:
                print(f"  round {rnd + 1}/{ROUNDS}, {SLICE}s a run",
                      flush=True)
            for k, row in enumerate(order):
                slices[k].append(run_slice(bench, row, labels[k], retries,
                                           deadline))
        results = []
        for k, row in enumerate(order):
            r = merge_slices(slices[k])
            r.label = labels[k]
            if row.metrics:
                r.extra = row.metrics(bench, r)
            results.append(r)
    finally:
        for row in rows:
            if row.teardown:
                row.teardown(bench)
    # each gated row against the mean of the baseline runs around it
    for i, r in enumerate(results):
        if r.row.baseline:
            continue
        prev = next(x for x in reversed(results[:i])
                    if x.row.key == r.row.base)
        nxt = next(x for x in results[i:] if x.row.key == r.row.base)
        r.ratio = r.rps / ((prev.rps + nxt.rps) / 2)
        ref_cpu = (prev.ngx_us + prev.wrk_us + nxt.ngx_us + nxt.wrk_us) / 2
        if r.ngx_us + r.wrk_us > 0:
            r.cpu_ratio = ref_cpu / (r.ngx_us + r.wrk_us)
        r.ngx_extra = r.ngx_us - (prev.ngx_us + nxt.ngx_us) / 2
    # a row printed beside another (cache off beside cache on): its
    # figures as a fraction of the other's, in both rows' notes
    for r in results:
        other = next((x for x in results if r.row.beside
                      and x.row.key == r.row.beside), None)
        if other is None or not other.rps:
            continue
        r.beside = other
        side = (f"{r.rps / other.rps:.2f}× the requests/s of "
                f"\"{other.row.label}\", {r.ngx_us - other.ngx_us:+.1f} µs "
                f"nginx CPU per request")
        r.extra = side + ("; " + r.extra if r.extra else "")
        back = (f"{r.row.label.rsplit(', ', 1)[-1]}: {r.rps:,.0f} req/s "
                f"(the next row)")
        other.extra = back + ("; " + other.extra if other.extra else "")
    return results


# ------------------------------------------------------ bytes per owner

@dataclasses.dataclass
class ZoneFill:
    size: int              # bytes
    id_len: int
    owners: int            # owners that fit
    full_logged: bool
    recheck: str


# (zone size in MiB, owner id length): two sizes with the goal's id
# length, whose difference gives the marginal cost of an owner, and the
# longest id the gate accepts.
FILLS = [(1, ID_LEN), (2, ID_LEN), (1, 128)]

# The fill plan's monthly limit: out of reach, but on, so that responses
# carry X-Usage-Remaining and a recheck can read an owner's month count.
FILL_MONTH = 1_000_000_000_000


def fill_zones(module: str, specs=FILLS) -> List[ZoneFill]:
    """A separate nginx (1 worker) with one small zone per spec: sends
    distinct owners (ids of id_len bytes) until the gate stops counting.

    A counted request's response carries X-Usage-This-Minute; once the
    zone has no room, the gate lets requests through uncounted, without
    it, and logs `usage_gate_zone "..." is full`.  No owner can be
    evicted here (each has a count in the current month), so the number
    of counted requests is the number of owners the zone holds."""
    up = free_port()
    port = free_port()
    zones = "".join(f"    usage_gate_zone fill{i}:{s}m;\n"
                    for i, (s, _) in enumerate(specs))
    locs = "".join(
        f"        location = /fill{i} {{ usage_gate fill{i}; "
        f"proxy_pass http://127.0.0.1:{up}; }}\n"
        for i, _ in enumerate(specs))
    http = (
        zones
        + f"    usage_gate_plan fill month={FILL_MONTH} minute=off;\n"
          "    usage_gate_default_plan fill;\n"
          "    usage_gate_identity header;\n"
          "    usage_gate_trusted_proxies 127.0.0.1;\n"
          f"    server {{ listen 127.0.0.1:{up}; location / {{ "
          f"return 200 'ok'; }} }}\n"
          f"    server {{\n        listen 127.0.0.1:{port};\n{locs}"
          f"    }}\n")
    ng = Nginx("zone", module, http, 1)
    out = []
    try:
        ng.start([port, up])
        for i, (size_m, id_len) in enumerate(specs):
            if i:
                # the "is full" alert is rate-limited to one a second
                # (per zone since af4db57; per worker, whatever the
                # zone, before): let it through
                time.sleep(1.1)
            out.append(_fill_one(ng, port, i, size_m, id_len))
    finally:
        ng.stop()
        ng.cleanup()
    return out


def _owner_id(n: int, id_len: int) -> str:
    return "u" + str(n).rjust(id_len - 1, "0")


def _fill_one(ng: Nginx, port: int, i: int, size_m: int,
              id_len: int) -> ZoneFill:
    path = f"/fill{i}"
    conn = Pipeline(port)
    counted = 0
    n = 0
    first_uncounted = None
    batch = 256
    limit = size_m * 1024 * 1024 // 32        # a safe upper bound
    try:
        while n < limit:
            reqs = []
            for k in range(n, n + batch):
                reqs.append((f"GET {path} HTTP/1.1\r\nHost: fill\r\n"
                             f"X-User-Id: {_owner_id(k, id_len)}\r\n\r\n")
                            .encode())
            for k, (status, head) in enumerate(conn.batch(reqs), n):
                if status != 200:
                    raise RuntimeError(f"zone fill: {status} for owner {k}")
                if b"\r\nX-Usage-This-Minute:" in head:
                    counted += 1
                    if first_uncounted is not None:
                        raise RuntimeError("zone fill: an owner was counted "
                                           "after the zone was full")
                elif first_uncounted is None:
                    first_uncounted = k
            n += batch
            if first_uncounted is not None and n - first_uncounted >= batch:
                break
        # the first owner is still there: its month count moves to 2
        old = conn.batch([(f"GET {path} HTTP/1.1\r\nHost: fill\r\n"
                           f"X-User-Id: {_owner_id(0, id_len)}\r\n\r\n")
                          .encode()])[0][1]
        m = re.search(rb"\r\nX-Usage-Remaining:\s*(\d+)", old)
        recheck = (f"owner 0 kept (month count now "
                   f"{FILL_MONTH - int(m.group(1))})") if m else \
            "owner 0 LOST"
    finally:
        conn.close()
    if first_uncounted is None:
        raise RuntimeError(f"zone fill: {size_m}m never filled")
    full = f'usage_gate_zone "fill{i}" is full' in ng.error_log()
    return ZoneFill(size_m * 1024 * 1024, id_len, counted, full, recheck)


# ---------------------------------------------------------------- report

def machine_notes() -> List[str]:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    ngv = subprocess.run([NGINX, "-v"], capture_output=True,
                         text=True).stderr.strip().replace("nginx version: ",
                                                           "")
    wv = subprocess.run([WRK, "-v"], capture_output=True,
                        text=True).stdout.splitlines()[0].split(" [")[0]
    return [
        f"CPU: {model}, {len(cpus())} CPUs usable "
        f"(os.cpu_count() {os.cpu_count()}), {mem} RAM",
        f"kernel {platform.release()}; {ngv}; {wv}; "
        f"python {platform.python_version()}",
        f"wrk -t{THREADS} -c{CONNS} -d{SLICE}s --latency (but rows that "
        f"set their own -t/-c), {ROUNDS} slices a row; warm-up "
        f"{WARMUP}s per workload; nginx {WORKERS} workers, access_log off; "
        f"pinning: {PIN}; nice {NICE}",
    ]


def table(results: List[Result], fills: List[ZoneFill]) -> str:
    base = [r for r in results if r.row.baseline]
    lines = ["| row | requests/s | gated / ungated | p50 | p99 | "
             "nginx CPU / request | ratio by CPU | others' CPU | notes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        ratio = "—" if r.ratio is None else f"{r.ratio:.3f}"
        if r.ratio is not None and r.row.goal is not None:
            ratio += " ✓" if r.ratio >= r.row.goal else \
                f" ✗ (goal {r.row.goal:.2f})"
        cpu = f"{r.ngx_us:.1f} µs"
        if not r.row.baseline:
            cpu += f" ({r.ngx_extra:+.1f})"
        cpu_ratio = "—" if r.cpu_ratio is None else f"{r.cpu_ratio:.3f}"
        note = r.row.note
        if r.row.owners > 1:
            note += f"; {r.requests:,} requests"
        if r.bad:
            note += f"; {r.bad} non-2xx/socket errors"
        if r.tries > 1:
            note += f"; quietest of {r.tries} runs"
        if r.other_pct > NOISY_PCT:
            note += "; NOISY: other processes were busy"
        if r.extra:
            note += "; " + r.extra
        lines.append(f"| {r.label or r.row.label} | {r.rps:,.0f} | {ratio} | "
                     f"{r.p50_ms:.2f} ms | {r.p99_ms:.2f} ms | {cpu} | "
                     f"{cpu_ratio} | {r.other_pct:.0f}% | {note} |")
    if len(base) > 1:
        spans = []
        for key in dict.fromkeys(b.row.key for b in base):
            rps = [b.rps for b in base if b.row.key == key]
            lo, hi = min(rps), max(rps)
            label = next(b.row.label for b in base if b.row.key == key)
            spans.append(f"the {len(rps)} \"{label}\" runs span "
                         f"{lo:,.0f}–{hi:,.0f} req/s "
                         f"({100 * (hi - lo) / hi:.1f}%)")
        lines.append("")
        lines.append(f"Each ratio is against the mean of the ungated runs "
                     f"just before and just after the row: "
                     f"{'; '.join(spans)}: the run's "
                     f"drift.  nginx CPU / request is the two workers' "
                     f"user+system time over the requests served; the "
                     f"(+x) is the gate's extra over the neighbouring "
                     f"baselines.  Ratio by CPU is (nginx + wrk CPU per "
                     f"request, ungated) / (the same, gated): the "
                     f"throughput ratio two CPUs shared by nothing else "
                     f"would give.")
    pairs = [r for r in results if r.beside is not None]
    if pairs:
        lines.append("")
        lines.append("| row | requests/s | / ungated | p99 | nginx CPU / "
                     "request | printed beside | requests/s | / ungated | "
                     "p99 | nginx CPU / request | requests/s ratio | "
                     "CPU difference |")
        lines.append("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|"
                     "---:|---:|")
        for r in pairs:
            a = r.beside
            lines.append(
                f"| {a.label or a.row.label} | {a.rps:,.0f} | "
                f"{a.ratio:.3f} | {a.p99_ms:.2f} ms | {a.ngx_us:.1f} µs | "
                f"{r.label or r.row.label} | {r.rps:,.0f} | {r.ratio:.3f} | "
                f"{r.p99_ms:.2f} ms | {r.ngx_us:.1f} µs | "
                f"{r.rps / a.rps:.2f} | {r.ngx_us - a.ngx_us:+.1f} µs |")
        lines.append("")
        lines.append("Each row printed beside another ran right after it, "
                     "between the same two ungated runs, on a second "
                     "nginx that differs from the main one only in an "
                     "http-level line (`usage_gate_jwt_cache off;`); its "
                     "ratio is against the main nginx's ungated runs, "
                     "whose `/ungated` is configured identically.  The "
                     "CPU difference is what the cache saves per "
                     "request: about the cost of one verification.")
    if fills:
        lines.append("")
        lines.append("| zone | owner id | owners that fit | bytes per owner |"
                     " notes |")
        lines.append("|---|---|---:|---:|---|")
        for f in fills:
            bpo = f.size / f.owners
            ok = "" if f.id_len > ID_LEN else \
                " ✓" if bpo <= GOAL_BYTES else f" ✗ (goal {GOAL_BYTES})"
            lines.append(
                f"| {f.size // 1048576}m | {f.id_len} bytes | "
                f"{f.owners:,} | {bpo:.1f}{ok} | "
                f"alert \"is full\" "
                f"{'logged' if f.full_logged else 'NOT logged'}"
                f"; {f.recheck} |")
        same = [f for f in fills if f.id_len == ID_LEN]
        if len(same) >= 2:
            a, b = same[0], same[-1]
            marg = (b.size - a.size) / (b.owners - a.owners)
            lines.append(f"| {b.size // 1048576}m − {a.size // 1048576}m | "
                         f"{a.id_len} bytes | {b.owners - a.owners:,} | "
                         f"{marg:.1f} | marginal: the zone's fixed "
                         f"overhead cancels out |")
    return "\n".join(lines)


def update_doc(block: str):
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    with open(DOC) as f:
        text = f.read()
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < 0:
        raise RuntimeError(f"{DOC} has no {begin} ... {end} block")
    text = text[:i + len(begin)] + "\n" + block + "\n" + text[j:]
    with open(DOC, "w") as f:
        f.write(text)


# The figures behind docs/img/owners.svg (gnuplot docs/img/owners.gp):
# requests/s against distinct owners, for each setting the ungated
# baseline (the mean of its runs), the gate and limit_req.
OWNER_PLOT = [
    # (owners, ungated, gate, limit_req): row keys
    (OWNERS, f"ungated-{OWNERS}", "owners", "limit-req-owners"),
    (MANY, f"ungated-{MANY}", "many", "limit-req-many"),
]
OWNER_PLOT_GIF = [
    (OWNERS, f"ungated-gif-{OWNERS}", "owners-gif", "limit-req-owners-gif"),
    (MANY, f"ungated-gif-{MANY}", "many-gif", "limit-req-many-gif"),
]


def owners_dat(results: List[Result], stamp: str, cmd: str) -> str:
    """owners.dat for the plot, or "" if the run lacks any of its rows."""
    def rps(key: str) -> Optional[float]:
        v = [r.rps for r in results if r.row.key == key]
        return sum(v) / len(v) if v else None

    lines = [f"# t/bench/bench.py, {stamp}: `{cmd}`",
             "# requests/s against distinct owners; ungated: the mean of "
             "the row's own",
             "# baseline runs (the same ids sent, no usage_gate)",
             "# owners   ungated  gate  limit_req  "
             "ungated_gif  gate_gif  limit_req_gif"]
    for a, b in zip(OWNER_PLOT, OWNER_PLOT_GIF):
        vals = [rps(k) for k in a[1:] + b[1:]]
        if any(v is None for v in vals):
            return ""
        lines.append(f"{a[0]:<10} " + " ".join(f"{v:8.0f}" for v in vals))
    return "\n".join(lines) + "\n"


QUIET_WAIT = int(os.environ.get("UG_BENCH_QUIET_WAIT", "15"))


def wait_for_quiet(limit: float) -> str:
    """The machine may be shared: waits (at most `limit` seconds) for a
    second in which other processes use under NOISY_PCT of the CPUs."""
    t0 = time.monotonic()
    busy = 100.0
    while True:
        b0, a0 = system_cpu()
        time.sleep(1)
        b1, a1 = system_cpu()
        busy = 100 * (b1 - b0) / max(a1 - a0, 1e-9)
        waited = time.monotonic() - t0
        if busy < NOISY_PCT or waited >= limit:
            break
    return (f"CPU {busy:.0f}% busy before the run "
            f"(waited {waited:.0f}s for <{NOISY_PCT:.0f}%)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--update-doc", action="store_true")
    ap.add_argument("--no-zone", action="store_true")
    args = ap.parse_args()

    if not os.path.exists(MODULE):
        print(f"bench: no module at {MODULE}; run `make module`",
              file=sys.stderr)
        return 1
    t0 = time.monotonic()

    # Work on a private copy of the .so: a rebuild in the tree during the
    # run (others share it) must not pull the file from under nginx.
    tmp = tempfile.mkdtemp(prefix="ug-bench-so-")
    module = os.path.join(tmp, os.path.basename(MODULE))
    shutil.copy2(MODULE, module)

    rows = [r for r in ROWS if not r.baseline and (not ONLY
                                                   or r.key in ONLY)]
    # the baselines the chosen rows are measured against
    used = {r.base for r in rows} or {"ungated"}
    rows = [r for r in ROWS if r.baseline and r.key in used] + rows
    est = (len({(r.instance, r.path, tuple(r.headers), r.script,
                 tuple(r.args())) for r in rows}) * WARMUP
           + len(schedule(rows)) * ROUNDS * (SLICE + 0.3)
           + QUIET_WAIT + 25)
    est = int(est)
    if est > BUDGET_S:
        print(f"bench: {est}s estimated, over the {BUDGET_S}s budget; "
              f"lower UG_BENCH_DURATION or raise UG_BENCH_BUDGET",
              file=sys.stderr)
        return 1

    quiet = wait_for_quiet(QUIET_WAIT)
    load0 = open("/proc/loadavg").read().split()[:3]
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")
    print(f"usage gate benchmark, {stamp}: {len(schedule(rows))} runs x "
          f"{ROUNDS} x {SLICE}s, "
          f"about {est}s")
    for n in machine_notes():
        print("  " + n)

    bench = Bench(module)
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)

    fills: List[ZoneFill] = []
    try:
        for row in rows:
            if row.prepare:
                row.prepare(bench)
        bench.start()
        print(f"nginx {MAIN} on 127.0.0.1:{bench.port} (upstream: return "
              f"200 on :{bench.upstream_port}); workers "
              f"{bench.nginx.worker_pids()}")
        for name, (ng, port, up) in bench.others.items():
            print(f"nginx {name} on 127.0.0.1:{port} (upstream :{up}); "
                  f"workers {ng.worker_pids()}")
        results = measure_rows(bench, rows, t0 + BUDGET_S)
        bad_log = [f"({ng.name}) {line}" for ng in bench.all_nginx()
                   for line in ng.error_log().splitlines()
                   if re.search(r"\[(alert|emerg|crit)\]", line)]
        bench.stop()
        if not args.no_zone:
            print("  bytes per owner: filling zones "
                  + ", ".join(f"{m}m ({n}-byte ids)" for m, n in FILLS)
                  + " ...", flush=True)
            fills = fill_zones(module)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        bench.stop()
        bench.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
        if not KEEP:
            shutil.rmtree(bench.workdir, ignore_errors=True)

    load1 = open("/proc/loadavg").read().split()[:3]
    tab = table(results, fills)
    mod = os.path.relpath(MODULE, TOP) if MODULE.startswith(TOP + "/") \
        else MODULE
    env = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                   if k.startswith("UG_BENCH_"))
    cmd = (f"{env + ' ' if env else ''}UG_MODULE={mod} /usr/bin/python3 "
           f"t/bench/bench.py{' --update-doc' if args.update_doc else ''}")
    notes = machine_notes() + [
        quiet,
        f"load average before {' '.join(load0)}, after {' '.join(load1)} "
        f"(the run itself raises it)",
        f"took {time.monotonic() - t0:.0f}s",
    ]
    block = (f"Run {stamp}, `{cmd}`:\n\n{tab}\n\n"
             + "\n".join(f"- {n}" for n in notes))
    print()
    print(tab)
    print()
    for n in notes[3:]:
        print("  " + n)
    if bad_log:
        print("\nnginx logged:\n" + "\n".join(bad_log[:10]))
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "last.md"), "w") as f:
        f.write(block + "\n")
        f.write("\n<!-- raw wrk output -->\n")
        for r in results:
            f.write(f"\n## {r.row.label}\n\n```\n"
                    f"{' '.join(wrk_cmd(r.port, r.row, SLICE))}"
                    f" (x {ROUNDS})\n"
                    f"{r.raw}```\n")
    print(f"\n(also in {os.path.relpath(os.path.join(OUT_DIR, 'last.md'), TOP)}"
          ", with wrk's raw output)")
    dat = owners_dat(results, stamp, cmd)
    if dat:
        with open(os.path.join(OUT_DIR, "owners.dat"), "w") as f:
            f.write(dat)
    if args.update_doc:
        update_doc(block)
        if dat:
            with open(os.path.join(TOP, "docs", "img", "owners.dat"),
                      "w") as f:
                f.write(dat)
        print(f"updated {os.path.relpath(DOC, TOP)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
