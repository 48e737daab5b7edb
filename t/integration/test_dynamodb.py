"""DynamoDB as the fleet's shared store.

A real DynamoDB-compatible server (dynalite, from t/node_modules) runs on
loopback with its data in a temp dir; nginx instances with the module talk
to it through `usage_gate_dynamodb ... endpoint=http://127.0.0.1:PORT/`.
What is checked is what a user and an operator see: the answers (200, 402,
503), their timing, and the counts in the table read back with GetItem.
"""

import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
import uuid

from harness import (HERE, GateTestCase, Nginx, connect, free_port,
                     port_open, request, send, server, wait_for)

TOP = os.path.dirname(os.path.dirname(HERE))
DYNALITE = os.path.join(TOP, "t", "node_modules", "dynalite", "cli.js")
NODE = shutil.which("node") or "/usr/bin/node"

TABLE = "sentientiq-usage"

# nginx passes its workers only the variables `env` names
CREDS = "env AWS_ACCESS_KEY_ID=test;\nenv AWS_SECRET_ACCESS_KEY=test;\n"

ASK = {"agent": "oracle", "question": "Will it ship?"}

# the alert of a stop without a state file while DynamoDB does not answer
LOST_AT_STOP = r"units not written to DynamoDB are lost at this stop"


def this_month() -> str:
    return time.strftime("%Y-%m", time.gmtime())


# ------------------------------------------------------------- dynalite

class Dynalite:
    """dynalite on 127.0.0.1:<own port>, data in its own dir (--path), so
    that a restart keeps the table."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="ug-dynalite-")
        self.path = os.path.join(self.dir, "db")
        self.proc = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self):
        log = open(os.path.join(self.dir, "dynalite.log"), "ab")
        self.proc = subprocess.Popen(
            [NODE, DYNALITE, "--host", "127.0.0.1", "--port",
             str(self.port), "--path", self.path, "--createTableMs", "50"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        wait_for(lambda: self.proc.poll() is not None or
                 port_open(self.port), 20, what="dynalite to listen")
        if self.proc.poll() is not None:
            raise RuntimeError("dynalite exited: " + self.log())
        return self

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "dynalite.log"),
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # a small client: dynalite checks that Authorization is there, not
    # what it says
    def call(self, op: str, body: dict):
        req = urllib.request.Request(
            self.endpoint, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/x-amz-json-1.0",
                     "X-Amz-Target": "DynamoDB_20120810." + op,
                     "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ",
                                                 time.gmtime()),
                     "Authorization": "AWS4-HMAC-SHA256 Credential=test/"
                                      "20250101/us-east-1/dynamodb/"
                                      "aws4_request, SignedHeaders=host, "
                                      "Signature=00"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def create_table(self, name: str = TABLE):
        """The seed's key schema: owner (S) HASH, month (S) RANGE."""
        st, out = self.call("CreateTable", {
            "TableName": name, "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": "owner", "AttributeType": "S"},
                {"AttributeName": "month", "AttributeType": "S"}],
            "KeySchema": [
                {"AttributeName": "owner", "KeyType": "HASH"},
                {"AttributeName": "month", "KeyType": "RANGE"}]})
        assert st == 200, out

        def active():
            st, out = self.call("DescribeTable", {"TableName": name})
            return st == 200 and out["Table"]["TableStatus"] == "ACTIVE"
        wait_for(active, 10, what="the table to be ACTIVE")

    def item(self, owner: str, month: str = None, table: str = TABLE):
        st, out = self.call("GetItem", {
            "TableName": table, "ConsistentRead": True,
            "Key": {"owner": {"S": owner},
                    "month": {"S": month or this_month()}}})
        assert st == 200, out
        return out.get("Item")

    def count(self, owner: str, month: str = None, table: str = TABLE):
        item = self.item(owner, month, table)
        if item is None:
            return None
        return int(item["count"]["N"])


# ---------------------------------------------------------- nginx configs

def ddb_http(ddb: Dynalite, params: str = "", month: str = "200",
             zone: str = "usage", extra_servers: str = "") -> str:
    return f"""
    usage_gate_zone  {zone}:1m;
    usage_gate_plan  free  month={month} minute=off;
    usage_gate_plan  pro   month=off minute=off;
    usage_gate_default_plan  free;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt  "sentientiq";
    usage_gate_dynamodb  zone={zone} table={TABLE} region=us-east-1
                         endpoint={ddb.endpoint} {params};
""" + server(f"""
        location /ask {{
            usage_gate {zone};
            proxy_pass http://{{{{app}}}}/ask;
        }}
        location /plain {{
            return 200 "plain\\n";
        }}
        location /metrics {{
            usage_gate_metrics;
        }}
        location /usage_gate/admin {{
            usage_gate_admin zone={zone};
            usage_gate_admin_token_file off;
            allow 127.0.0.1;
            deny all;
        }}
""") + extra_servers


def ask(port: int, owner: str, plan: str = None, timeout: float = 15.0):
    headers = [("X-User-Id", owner)]
    if plan:
        headers.append(("X-Plan", plan))
    return request(port, "/ask", "POST", headers, ASK, timeout=timeout)


def metrics(port: int) -> dict:
    r = request(port, "/metrics?format=json")
    assert r.status == 200, r
    return r.json["zones"][0]


class Load:
    """`conns` keep-alive connections to one nginx, each sending POST /ask
    for one owner until it has seen `stop_after` denials in a row or sent
    `max_each` requests.  Counts statuses."""

    def __init__(self, port: int, owner: str, conns: int = 32,
                 stop_after: int = 3, max_each: int = 200,
                 pause: float = 0.0):
        self.port = port
        self.owner = owner
        self.conns = conns
        self.stop_after = stop_after
        self.max_each = max_each
        self.pause = pause
        self.status = {}
        self.errors = []
        self.lock = threading.Lock()
        self.threads = []
        self.stopping = threading.Event()
        self.started = None
        self.ended = None

    def _run(self):
        conn = None
        denied = 0
        try:
            for _ in range(self.max_each):
                if self.stopping.is_set():
                    break
                if conn is None:
                    conn = connect(self.port, timeout=15)
                try:
                    r = self._ask(conn)
                except (BrokenPipeError, ConnectionResetError,
                        http.client.RemoteDisconnected):
                    # a reload closes idle keep-alive connections: the
                    # request never reached nginx, send it again
                    conn.close()
                    conn = connect(self.port, timeout=15)
                    r = self._ask(conn)
                with self.lock:
                    self.status[r.status] = self.status.get(r.status, 0) + 1
                if r.status == 200:
                    denied = 0
                else:
                    denied += 1
                    if denied >= self.stop_after:
                        break
                if r.header("Connection") == "close":
                    conn.close()
                    conn = None
                if self.pause:
                    time.sleep(self.pause)
        except Exception as e:           # reported by the test
            with self.lock:
                self.errors.append(repr(e))
        finally:
            if conn is not None:
                conn.close()

    def _ask(self, conn):
        return send(conn, "POST", "/ask",
                    [("X-User-Id", self.owner),
                     ("Content-Type", "application/json")],
                    json.dumps(ASK).encode())

    def start(self):
        self.started = time.monotonic()
        for _ in range(self.conns):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def join(self, timeout: float = 60):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        self.ended = time.monotonic()
        if any(t.is_alive() for t in self.threads):
            raise AssertionError("load did not finish")
        return self

    def ok(self) -> int:
        return self.status.get(200, 0)


class DynamoDBCase(GateTestCase):
    """One dynalite and one table per class."""

    ddb: Dynalite

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ddb = Dynalite().start()
        try:
            cls.ddb.create_table()
        except Exception:
            cls.ddb.cleanup()
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.ddb.cleanup()
        super().tearDownClass()

    def owner(self, what: str) -> str:
        return f"{what}-{uuid.uuid4().hex[:12]}"

    def gate(self, params: str = "", month: str = "200", **kw) -> Nginx:
        kw.setdefault("main", CREDS)
        return self.nginx(ddb_http(self.ddb, params, month), **kw)

    def two_gates(self, params: str, month: str):
        """Two nginx instances (two zones, two nodes of a fleet) on their
        own ports, sharing the table."""
        a = self.gate(params, month)
        b_http = ddb_http(self.ddb, params, month, zone="usage_b")
        b_http = b_http.replace("{{port}}", "{{port2}}")
        b = self.nginx(b_http, main=CREDS)
        return a, b

    def assertTable(self, owner: str, expected: int, timeout: float = 8.0):
        """The table's count reaches expected (a sync may be due) and
        stays there."""
        try:
            wait_for(lambda: self.ddb.count(owner) == expected, timeout,
                     what=f"count {expected} for {owner}")
        except AssertionError:
            self.fail(f"table count for {owner} is "
                      f"{self.ddb.count(owner)}, expected {expected}")
        time.sleep(0.3)
        self.assertEqual(self.ddb.count(owner), expected)


# ------------------------------------------------------------------ tests

class Table(DynamoDBCase):

    def test_counts_land_in_the_table_under_the_seed_key(self):
        ng = self.gate("mode=strict")
        alice = self.owner("alice")
        for i in range(3):
            r = ask(self.port, alice)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("X-Usage-Remaining"), str(199 - i))
            self.assertEqual(r.seen["x-usage-month-used"], str(i + 1))
        # strict: the table has each one as soon as it is answered
        item = self.ddb.item(alice)
        # and the writer's sequence that makes a retried write count once
        writers = [k for k in item if k.startswith("w_")]
        self.assertEqual(set(item) - set(writers),
                         {"owner", "month", "count"}, item)
        # one per worker process that wrote (lane 0: one write at a time)
        self.assertTrue(writers, item)
        for w in writers:
            self.assertRegex(w, r"^w_[0-9a-f]{13}000$")
        self.assertEqual(item["owner"], {"S": alice})
        self.assertEqual(item["month"], {"S": this_month()})
        self.assertEqual(item["count"], {"N": "3"})
        # a plan with no monthly limit never waits, and still syncs
        bob = self.owner("bob")
        for _ in range(4):
            self.assertEqual(ask(self.port, bob, plan="pro").status, 200)
        self.assertTable(bob, 4)
        m = metrics(self.port)
        self.assertIsNotNone(m["dynamodb"], m)
        self.assertEqual(m["dynamodb"]["sync_backlog"], 0)
        self.assertGreaterEqual(m["dynamodb"]["writes"], 4)
        self.assertGreater(m["dynamodb"]["last_sync"], 0)
        ng.stop()


class Fleet(DynamoDBCase):
    """Two nodes share one table; 32 connections each hammer one owner."""

    def fleet_load(self, mode: str, limit: int, **load):
        a, b = self.two_gates(f"mode={mode} sync=1s", str(limit))
        owner = self.owner(mode)
        la = Load(self.port, owner, **load).start()
        lb = Load(self.port2, owner, **load).start()
        la.join()
        lb.join()
        self.assertEqual(la.errors + lb.errors, [])
        for ld in (la, lb):
            self.assertEqual(set(ld.status) - {200, 402}, set(), ld.status)
        ok = la.ok() + lb.ok()
        took = max(la.ended, lb.ended) - min(la.started, lb.started)
        writes = (metrics(self.port)["dynamodb"]["writes"]
                  + metrics(self.port2)["dynamodb"]["writes"])
        return owner, ok, took, writes

    def test_strict_exactly_the_limit(self):
        owner, ok, took, writes = self.fleet_load("strict", 200)
        self.assertEqual(ok, 200)
        self.assertTable(owner, 200)
        # one write per allowed request, and one per node for the first
        # 402s; after that the zone answers 402 without asking
        self.assertGreaterEqual(writes, 200)
        self.assertLess(writes, 200 + 2 * 32 + 10)

    def test_auto_exactly_the_limit(self):
        owner, ok, took, writes = self.fleet_load("auto", 200)
        self.assertEqual(ok, 200)
        self.assertTable(owner, 200)

    def test_auto_exact_with_fewer_writes(self):
        # far from the limit the nodes count locally and sync; near it
        # they write each request: still exact, at a fraction of the writes
        owner, ok, took, writes = self.fleet_load(
            "auto", 3000, conns=8, max_each=1000, pause=0.002)
        self.assertEqual(ok, 3000)
        self.assertTable(owner, 3000)
        self.assertLess(writes, 0.5 * ok,
                        f"{writes} writes for {ok} allowed requests")

    def test_async_within_the_bound_and_the_table_is_exact(self):
        owner, ok, took, writes = self.fleet_load("async", 200)
        # docs/dynamodb.md: a node cannot see what the other allowed since
        # their last syncs, so the fleet passes the limit by at most about
        # (N - 1) x r x (2 x sync + a round trip), r the per-node rate
        self.assertGreaterEqual(ok, 200)
        rate = ok / 2 / max(took, 0.001)
        bound = 1 * rate * (2 * 1.0 + 0.1)
        self.assertLessEqual(ok, 200 + bound,
                             f"{ok} allowed at {rate:.0f}/s per node")
        # every allowed request is in the table once a sync has run
        self.assertTable(owner, ok)
        # a few syncs, not a write per request
        self.assertLess(writes, 0.2 * ok)


class Faults(DynamoDBCase):

    def test_dynamodb_down_mid_load_loses_nothing(self):
        self.gate("mode=auto sync=300ms timeout=500ms on_error=allow",
                  "100000")
        owner = self.owner("fault")
        load = Load(self.port, owner, conns=8, max_each=100000,
                    pause=0.005).start()
        time.sleep(1.0)
        self.ddb.stop()
        time.sleep(1.5)
        self.assertTrue(load.ok() > 0)
        during = load.ok()
        self.ddb.start()
        time.sleep(1.0)
        load.stopping.set()
        load.join()
        self.assertEqual(load.errors, [])
        # nobody was refused or kept waiting while DynamoDB was away
        self.assertEqual(set(load.status), {200}, load.status)
        self.assertGreater(load.ok(), during)
        self.assertTable(load.owner, load.ok(), timeout=10)
        m = metrics(self.port)["dynamodb"]
        self.assertEqual(m["sync_backlog"], 0)
        self.assertGreater(sum(m["errors"].values()), 0, m)

    def test_restart_while_down_keeps_unsynced_usage(self):
        conf = ddb_http(self.ddb, "mode=auto sync=300ms timeout=300ms",
                        "100000")
        conf = conf.replace("usage:1m;", "usage:1m state={{dir}}/u.state;")
        ng = self.nginx(conf, main=CREDS)
        owner = self.owner("restart")
        self.assertEqual(ask(self.port, owner).status, 200)
        self.assertTable(owner, 1)
        self.ddb.stop()
        for _ in range(7):
            self.assertEqual(ask(self.port, owner).status, 200)
        # a fast stop: the state file holds what DynamoDB has not seen
        ng.stop()
        self.ddb.start()
        self.assertEqual(self.ddb.count(owner), 1)
        # the new nginx writes it from the state file
        ng.start()
        self.assertTable(owner, 8)


class Quit(DynamoDBCase):

    def test_graceful_quit_writes_what_is_pending(self):
        # a long sync interval: only the exit's last round can write it
        ng = self.gate("mode=async sync=1h")
        gus = self.owner("gus")
        for _ in range(6):
            self.assertEqual(ask(self.port, gus).status, 200)
        self.assertIsNone(self.ddb.count(gus))
        t0 = time.monotonic()
        ng.quit()
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(self.ddb.count(gus), 6)


    def test_reload_loses_nothing(self):
        ng = self.gate("mode=auto sync=300ms", "100000")
        ken = self.owner("ken")
        load = Load(self.port, ken, conns=4, max_each=100000,
                    pause=0.005).start()
        time.sleep(0.8)
        ng.reload()
        time.sleep(0.8)
        load.stopping.set()
        load.join()
        self.assertEqual(load.errors, [])
        self.assertEqual(set(load.status), {200}, load.status)
        self.assertTable(ken, load.ok())


class Stall(GateTestCase):
    """An endpoint that accepts connections and never answers."""

    WORKERS = 1

    def setUp(self):
        self.stall = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.stall.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.stall.bind(("127.0.0.1", 0))
        self.stall.listen(512)
        self.held = []
        self.done = threading.Event()

        def hold():
            self.stall.settimeout(0.1)
            while not self.done.is_set():
                try:
                    c, _ = self.stall.accept()
                    self.held.append(c)
                except OSError:
                    continue

        self.holder = threading.Thread(target=hold, daemon=True)
        self.holder.start()
        self.addCleanup(self._close)

    def _close(self):
        self.done.set()
        self.holder.join(2)
        for c in self.held:
            c.close()
        self.stall.close()

    def test_a_stalled_dynamodb_blocks_no_one_else(self):
        endpoint = f"http://127.0.0.1:{self.stall.getsockname()[1]}/"
        conf = f"""
    usage_gate_zone  usage:1m;
    usage_gate_zone  denying:1m;
    usage_gate_plan  free  month=100 minute=off;
    usage_gate_default_plan  free;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt  "sentientiq";
    usage_gate_dynamodb  zone=usage table={TABLE} region=us-east-1
                         endpoint={endpoint} mode=strict timeout=1s;
    usage_gate_dynamodb  zone=denying table={TABLE} region=us-east-1
                         endpoint={endpoint} mode=strict timeout=1s
                         on_error=deny;
""" + server("""
        location /ask {
            usage_gate usage;
            proxy_pass http://{{app}}/ask;
        }
        location /deny {
            usage_gate denying;
            proxy_pass http://{{app}}/ask;
        }
        location /plain {
            return 200 "plain\n";
        }
""")
        self.nginx(conf, main=CREDS, expect_log=[LOST_AT_STOP])
        results = []
        lock = threading.Lock()

        def gated(path, owner):
            t0 = time.monotonic()
            r = request(self.port, path, "POST", [("X-User-Id", owner)],
                        ASK, timeout=20)
            with lock:
                results.append((path, r, time.monotonic() - t0))

        threads = [threading.Thread(target=gated, args=(p, f"u{i}"))
                   for i in range(16) for p in ("/ask", "/deny")]
        for t in threads:
            t.start()
        # the one worker keeps serving while 32 requests wait
        time.sleep(0.1)
        slowest = 0.0
        n = 0
        while any(t.is_alive() for t in threads) and n < 200:
            t0 = time.monotonic()
            r = request(self.port, "/plain")
            slowest = max(slowest, time.monotonic() - t0)
            self.assertEqual(r.status, 200)
            n += 1
            time.sleep(0.005)
        for t in threads:
            t.join(10)
        self.assertGreater(n, 20)
        self.assertLess(slowest, 0.05, f"slowest of {n}: {slowest:.3f}s")
        self.assertEqual(len(results), 32)
        for path, r, took in results:
            # the answer comes after the configured timeout, not before
            # and not much later
            self.assertGreaterEqual(took, 0.9, (path, r))
            self.assertLess(took, 2.5, (path, r))
            if path == "/ask":
                self.assertEqual(r.status, 200, r)       # on_error=allow
                self.assertIn("seen", r.json)
            else:
                self.assertEqual(r.status, 503, r)       # on_error=deny
                self.assertEqual(r.header("Content-Type"),
                                 "application/json")
                self.assertIn("unavailable", r.json["detail"])
                self.assertNotIn("seen", r.json)


    def test_a_client_that_leaves_gives_its_units_back(self):
        endpoint = f"http://127.0.0.1:{self.stall.getsockname()[1]}/"
        conf = f"""
    usage_gate_zone  usage:1m;
    usage_gate_plan  free  month=100 minute=1;
    usage_gate_default_plan  free;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt  "sentientiq";
    usage_gate_dynamodb  zone=usage table={TABLE} region=us-east-1
                         endpoint={endpoint} mode=strict timeout=1s;
""" + server("""
        location /ask {
            usage_gate usage;
            proxy_pass http://{{app}}/ask;
        }
""")
        ng = self.nginx(conf, main=CREDS, expect_log=[LOST_AT_STOP])
        body = json.dumps(ASK).encode()
        raw = socket.create_connection(("127.0.0.1", self.port))
        raw.sendall(b"POST /ask HTTP/1.1\r\nHost: x\r\nX-User-Id: ivan\r\n"
                    b"Content-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode()
                    + b"\r\n\r\n" + body)
        time.sleep(0.3)
        raw.close()
        wait_for(lambda: "client prematurely closed" in ng.error_log(), 5,
                 what="nginx to notice the client left")
        # its one unit of the minute came back: this one is not a 429,
        # it waits for the table and is then allowed (on_error=allow)
        t0 = time.monotonic()
        r = ask(self.port, "ivan")
        self.assertEqual(r.status, 200, r)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)


class Config(GateTestCase):

    BASE = """
    usage_gate_zone  usage:1m;
    usage_gate_zone  other:1m;
    usage_gate_dynamodb zone=usage table=sentientiq-usage
                        region=us-east-1;  # DDB
    server {
        listen 127.0.0.1:{{port}};
        location /ask { usage_gate usage; proxy_pass http://127.0.0.1:9; }
    }
"""

    CASES = [
        ("unknown zone",
         "usage_gate_dynamodb zone=nozone table=t-1 region=us-east-1;",
         "unknown zone \"nozone\""),
        ("bad table name",
         "usage_gate_dynamodb zone=usage table=a/b region=us-east-1;",
         "invalid table name \"a/b\""),
        ("table name too short",
         "usage_gate_dynamodb zone=usage table=ab region=us-east-1;",
         "invalid table name \"ab\""),
        ("bad region",
         "usage_gate_dynamodb zone=usage table=t-1 region=mars;",
         "invalid region \"mars\""),
        ("unknown mode",
         "usage_gate_dynamodb zone=usage table=t-1 region=us-east-1 "
         "mode=eventual;", "unknown mode \"eventual\""),
        ("no table",
         "usage_gate_dynamodb zone=usage region=us-east-1;",
         "\"table=\" is required"),
        ("bad on_error",
         "usage_gate_dynamodb zone=usage table=t-1 region=us-east-1 "
         "on_error=retry;", "invalid \"on_error=retry\""),
        ("bad sync",
         "usage_gate_dynamodb zone=usage table=t-1 region=us-east-1 "
         "sync=0;", "invalid \"sync=0\""),
        ("bad endpoint",
         "usage_gate_dynamodb zone=usage table=t-1 region=us-east-1 "
         "endpoint=ftp://x/;", "invalid endpoint"),
        ("unknown parameter",
         "usage_gate_dynamodb zone=usage table=t-1 region=us-east-1 "
         "consistency=strong;", "unknown parameter \"consistency=strong\""),
    ]

    def test_base_config_is_valid(self):
        ng = Nginx(self.BASE, vars=self.vars())
        self.addCleanup(ng.cleanup)
        ok, out = ng.test_config()
        self.assertTrue(ok, out)

    def test_errors_name_the_directive_and_the_line(self):
        for what, line, message in self.CASES:
            with self.subTest(what=what):
                conf = self.BASE.replace(
                    "usage_gate_dynamodb zone=usage table=sentientiq-usage\n"
                    "                        region=us-east-1;", line)
                ng = Nginx(conf, vars=self.vars())
                self.addCleanup(ng.cleanup)
                ok, out = ng.test_config()
                self.assertFalse(ok, f"nginx -t accepted: {line}")
                self.assertIn("[emerg]", out)
                self.assertIn("usage_gate_dynamodb: " + message, out)
                self.assertIn(f"nginx.conf:{ng.line_of('# DDB')}", out)

    def test_two_for_one_zone(self):
        conf = self.BASE.replace(
            "# DDB", "# FIRST\n    usage_gate_dynamodb zone=usage "
            "table=other-table region=eu-west-1;  # DDB")
        ng = Nginx(conf, vars=self.vars())
        self.addCleanup(ng.cleanup)
        ok, out = ng.test_config()
        self.assertFalse(ok, out)
        self.assertIn("usage_gate_dynamodb: zone \"usage\" already has a "
                      "usage_gate_dynamodb in " + ng.conf_path + ":"
                      + str(ng.line_of("# FIRST")), out)
        self.assertIn(f"nginx.conf:{ng.line_of('# DDB')}", out)


class Admin(DynamoDBCase):

    def test_admin_changes_are_written_through(self):
        self.gate("mode=strict")
        carol = self.owner("carol")
        for _ in range(5):
            self.assertEqual(ask(self.port, carol).status, 200)
        self.assertEqual(self.ddb.count(carol), 5)
        admin = "/usage_gate/admin/owners/" + carol
        r = request(self.port, admin, "PUT", body={"used": 198})
        self.assertEqual(r.status, 200, r)
        self.assertTable(carol, 198)
        r = request(self.port, admin + "/adjust", "POST", body={"delta": -3})
        self.assertEqual(r.status, 200, r)
        self.assertTable(carol, 195)
        for _ in range(5):
            self.assertEqual(ask(self.port, carol).status, 200)
        r = ask(self.port, carol)
        self.assertEqual(r.status, 402, r)
        self.assertEqual(r.json["used"], 200)
        # a reset lifts the 402 at once, here and in the table
        r = request(self.port, admin + "/reset", "POST")
        self.assertEqual(r.status, 200, r)
        self.assertTable(carol, 0)
        r = ask(self.port, carol)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.ddb.count(carol), 1)


class Recorder:
    """A stand-in DynamoDB on loopback that keeps the headers of each call
    and answers every UpdateItem with a count of 1: to see which
    credentials signed the requests."""

    def __init__(self):
        self.calls = []
        calls = self.calls

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                calls.append(dict(self.headers))
                body = b'{"Attributes":{"count":{"N":"1"}}}'
                self.send_response(200)
                self.send_header("Content-Type",
                                 "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.srv.server_address[1]}/"

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class Credentials(GateTestCase):

    def setUp(self):
        self.rec = Recorder()
        self.addCleanup(self.rec.close)

    def credential(self) -> str:
        """The access key id that signed the last call."""
        auth = self.rec.calls[-1]["Authorization"]
        return auth.split("Credential=")[1].split("/")[0]

    def env_nginx(self, conf: str, main: str, env: dict, **kw) -> Nginx:
        ng = self.make_nginx(conf, main=main, **kw)
        base = ng._env
        ng._env = lambda: dict(base(), **env)
        ng.start()
        return ng

    def test_environment(self):
        self.nginx(ddb_http(self.rec, "mode=strict"),
                   main="env AWS_ACCESS_KEY_ID=AKIDENV;\n"
                        "env AWS_SECRET_ACCESS_KEY=env-secret;\n"
                        "env AWS_SESSION_TOKEN=env-token;")
        self.assertEqual(ask(self.port, "hal").status, 200)
        self.assertEqual(self.credential(), "AKIDENV")
        call = self.rec.calls[-1]
        self.assertEqual(call["X-Amz-Security-Token"], "env-token")
        self.assertIn("x-amz-security-token", call["Authorization"])
        self.assertEqual(call["X-Amz-Target"], "DynamoDB_20120810.UpdateItem")
        self.assertIn("/us-east-1/dynamodb/aws4_request",
                      call["Authorization"])

    def test_shared_credentials_file_with_a_profile(self):
        d = tempfile.mkdtemp(prefix="ug-aws-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "credentials")
        with open(path, "w") as f:
            f.write("[default]\naws_access_key_id = NOPE\n"
                    "[gate]\naws_access_key_id = AKIDFILE\n"
                    "aws_secret_access_key = file-secret\n")
        # read with the configuration by the master, whose environment
        # names the file: the workers get no AWS variables at all
        self.env_nginx(ddb_http(self.rec, "mode=strict profile=gate"),
                       "env AWS_EC2_METADATA_DISABLED=true;",
                       {"AWS_SHARED_CREDENTIALS_FILE": path})
        self.assertEqual(ask(self.port, "dave").status, 200)
        self.assertEqual(self.credential(), "AKIDFILE")

    def test_ecs_container_credentials(self):
        hits = []

        class Creds(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append((self.path, self.headers.get("Authorization")))
                body = json.dumps({
                    "AccessKeyId": "ASIAECS", "SecretAccessKey": "ecs",
                    "Token": "ecs-session-token",
                    "Expiration": time.strftime(
                        "%Y-%m-%dT%H:%M:%SZ",
                        time.gmtime(time.time() + 3600))}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Creds)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        url = f"http://127.0.0.1:{srv.server_address[1]}/v2/credentials/x"
        self.env_nginx(ddb_http(self.rec, "mode=strict"),
                       f"env AWS_CONTAINER_CREDENTIALS_FULL_URI={url};\n"
                       f"env AWS_CONTAINER_AUTHORIZATION_TOKEN=ecs-auth;",
                       {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"},
                       workers=1)
        # fetched without blocking when the worker starts
        wait_for(lambda: ask(self.port, "erin").status == 200
                 and self.rec.calls, 5, what="a call signed by ECS keys")
        self.assertEqual(hits[0], ("/v2/credentials/x", "ecs-auth"))
        self.assertEqual(self.credential(), "ASIAECS")
        self.assertEqual(self.rec.calls[-1]["X-Amz-Security-Token"],
                         "ecs-session-token")

    def test_no_credentials_alerts_once_and_acts_on_error(self):
        ng = self.env_nginx(
            ddb_http(self.rec, "mode=strict on_error=deny"),
            "env AWS_EC2_METADATA_DISABLED=true;",
            {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}, workers=1,
            expect_log=[r"no AWS credentials"])
        r = ask(self.port, "frank")
        self.assertEqual(r.status, 503, r)
        self.assertIn("unavailable", r.json["detail"])
        self.assertEqual(self.rec.calls, [])
        alerts = [line for line in ng.error_log().splitlines()
                  if "[alert]" in line and "no AWS credentials" in line]
        self.assertEqual(len(alerts), 1, alerts)
        self.assertIn('"env"', alerts[0])

if __name__ == "__main__":
    unittest.main()
