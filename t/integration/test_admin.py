"""The admin API: read and correct an owner's counts.

    GET  /usage_gate/admin/owners/{owner}
    POST /usage_gate/admin/owners/{owner}/reset
    POST /usage_gate/admin/owners/{owner}/adjust   {"delta": N}
    PUT  /usage_gate/admin/owners/{owner}          {"used": N}

Each endpoint; each bad input (400/404/405/413 with a JSON detail, and
nothing changed); a change seen by every worker at once; reads under load
that are never torn; the bearer token file; changes kept across a restart.
"""

import json
import os
import threading
import time
import unittest
import urllib.parse

from harness import (ASK_BODY, GateTestCase, Nginx, anon_owner, ask, connect,
                     gated, hammer, minute_guard, month_reset_seconds,
                     request, send, user)

ADMIN = "/usage_gate/admin/owners/"
TOKEN = "s3cret-admin-token-0123456789"
LARGEST = 1000000000000         # the largest count (UG_LIMIT_MAX)

GATE = """
    usage_gate_zone  usage:1m  state={{dir}}/usage_gate.state
                               state_interval=3600s;
    usage_gate_zone  other:64k;
    usage_gate_plan  free  month=20   minute=off;
    usage_gate_plan  tiny  month=20   minute=2;
    usage_gate_plan  bulk  month=600  minute=off;
    usage_gate_default_plan  free;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt  "sentientiq";
    keepalive_requests  100000;
    log_format  pids  '$pid $status $request_uri';

    server {
        listen 127.0.0.1:{{port}} reuseport;
        server_name localhost;
""" + gated("/ask", extra="access_log {{dir}}/pids.log pids;") + gated(
    "/other", "other") + """
        location /usage_gate/admin {
            usage_gate_admin;
            usage_gate_admin_token_file off;
            allow 127.0.0.1;
            deny all;
        }
        location /other_admin {
            usage_gate_admin zone=other;
            usage_gate_admin_token_file off;
            allow 127.0.0.1;
            deny all;
        }
        location /secure/admin {
            usage_gate_admin;
            usage_gate_admin_token_file {{dir}}/admin.token;
        }
    }
"""

GATE_RESPONSE_HEADERS = ("X-Plan", "X-Usage-Remaining", "X-Usage-This-Minute",
                         "RateLimit-Policy", "RateLimit", "Retry-After")


def q(owner: str) -> str:
    """An owner as a path segment, percent-encoded where it must be."""
    return urllib.parse.quote(owner, safe="")


class AdminCase(GateTestCase):

    def start(self, token: str = TOKEN + "\n", **kw):
        self.ng = self.make_nginx(GATE, **kw)
        with open(os.path.join(self.ng.dir, "admin.token"), "w") as f:
            f.write(token)
        self.ng.start()
        return self.ng

    def setUp(self):
        self.start()

    # -- requests

    def admin(self, method, path, body=None, prefix=ADMIN, headers=None):
        return request(self.port, prefix + path, method, headers, body)

    def get(self, owner, **kw):
        return self.admin("GET", q(owner), **kw)

    def reset(self, owner, **kw):
        return self.admin("POST", q(owner) + "/reset", **kw)

    def adjust(self, owner, delta, **kw):
        body = delta if isinstance(delta, (bytes, str)) else {"delta": delta}
        return self.admin("POST", q(owner) + "/adjust", body, **kw)

    def put(self, owner, used, **kw):
        body = used if isinstance(used, (bytes, str)) else {"used": used}
        return self.admin("PUT", q(owner), body, **kw)

    def asks(self, n, who, status=200):
        r = None
        for i in range(n):
            r = ask(self.port, who)
            self.assertEqual(r.status, status, (i, r))
        return r

    # -- assertions

    def assertOwner(self, r, owner, used, minute=None):
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("Content-Type").startswith(
            "application/json"), r.headers)
        self.assertIsInstance(r.json, dict, r)
        self.assertEqual(r.json["owner"], owner, r)
        self.assertEqual(r.json["used"], used, r)
        if minute is not None:
            self.assertEqual(r.json["minute"]["used"], minute, r)

    def assertDetail(self, r, status, contains=None):
        self.assertEqual(r.status, status, r)
        self.assertTrue((r.header("Content-Type") or "").startswith(
            "application/json"), r)
        self.assertIsInstance(r.json, dict, r)
        self.assertIsInstance(r.json.get("detail"), str, r)
        self.assertTrue(r.json["detail"], r)
        if contains:
            self.assertIn(contains, r.json["detail"], r)

    def assertRemaining(self, who, remaining):
        r = ask(self.port, who)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Usage-Remaining"), str(remaining), r)


class Endpoints(AdminCase):

    def test_get_an_owner(self):
        minute_guard(5)
        self.asks(3, user("u1"))
        r = self.get("u1")
        self.assertOwner(r, "u1", 3, minute=3)
        self.assertEqual(sorted(r.json), ["minute", "month",
                                          "month_reset_seconds", "owner",
                                          "used"])
        self.assertEqual(r.json["month"], time.strftime("%Y-%m",
                                                        time.gmtime()))
        self.assertAbout(r.json["month_reset_seconds"],
                         month_reset_seconds(), 3)
        self.assertEqual(r.json["minute"]["bucket"],
                         time.strftime("%Y%m%d%H%M", time.gmtime()))
        # a read changes nothing
        self.assertOwner(self.get("u1"), "u1", 3)
        self.assertRemaining(user("u1"), 16)

    def test_reset(self):
        self.asks(5, user("u1"))
        r = self.reset("u1")
        self.assertOwner(r, "u1", 0, minute=0)
        self.assertRemaining(user("u1"), 19)
        self.assertOwner(self.get("u1"), "u1", 1)

    def test_reset_gives_back_the_minute_burst(self):
        self.asks(2, user("t1", "tiny"))
        self.asks(1, user("t1", "tiny"), 429)
        self.assertOwner(self.reset("t1"), "t1", 0, minute=0)
        self.asks(2, user("t1", "tiny"))
        self.asks(1, user("t1", "tiny"), 429)

    def test_reset_of_an_owner_over_quota(self):
        self.asks(20, user("u1"))
        self.asks(1, user("u1"), 402)
        self.assertOwner(self.reset("u1"), "u1", 0)
        self.asks(20, user("u1"))
        self.asks(1, user("u1"), 402)

    def test_adjust(self):
        self.asks(4, user("u1"))
        self.assertOwner(self.adjust("u1", 5), "u1", 9)
        self.assertRemaining(user("u1"), 10)            # used 10
        self.assertOwner(self.adjust("u1", -3), "u1", 7)
        self.assertRemaining(user("u1"), 12)            # used 8
        self.assertOwner(self.adjust("u1", 0), "u1", 8)
        self.assertOwner(self.adjust("u1", 12), "u1", 20)
        self.asks(1, user("u1"), 402)
        self.assertOwner(self.adjust("u1", -1), "u1", 19)
        self.assertRemaining(user("u1"), 0)
        self.assertOwner(self.adjust("u1", -20), "u1", 0)
        self.assertRemaining(user("u1"), 19)

    def test_put(self):
        self.asks(2, user("u1"))
        self.assertOwner(self.put("u1", 19), "u1", 19)
        self.assertRemaining(user("u1"), 0)
        self.asks(1, user("u1"), 402)
        self.assertOwner(self.put("u1", 0), "u1", 0)
        self.assertRemaining(user("u1"), 19)
        r = self.put("u1", 25)
        self.assertOwner(r, "u1", 25)
        r = ask(self.port, user("u1"))
        self.assertEqual(r.status, 402, r)
        self.assertEqual(r.json["used"], 25, r)

    def test_largest_count(self):
        self.asks(1, user("u1"))
        self.assertOwner(self.put("u1", LARGEST), "u1", LARGEST)
        self.asks(1, user("u1"), 402)
        self.assertDetail(self.adjust("u1", 1), 400)
        self.assertOwner(self.get("u1"), "u1", LARGEST)
        self.assertOwner(self.adjust("u1", -LARGEST), "u1", 0)

    def test_anon_owner_percent_encoded(self):
        self.asks(2, None)                          # anonymous, 127.0.0.1
        owner = anon_owner("127.0.0.1")
        self.assertEqual(owner, "anon:b109e04d0335ce95dea2a753")
        hexpart = owner.split(":", 1)[1]
        for path in ("anon%3A" + hexpart, "anon%3a" + hexpart, owner):
            with self.subTest(path=path):
                r = self.admin("GET", path)
                self.assertOwner(r, owner, 2)
        r = self.admin("POST", "anon%3A" + hexpart + "/adjust", {"delta": 3})
        self.assertOwner(r, owner, 5)
        r = self.admin("PUT", "anon%3A" + hexpart, {"used": 7})
        self.assertOwner(r, owner, 7)
        self.assertRemaining(None, 12)
        r = self.admin("POST", "anon%3A" + hexpart + "/reset")
        self.assertOwner(r, owner, 0)
        self.assertRemaining(None, 19)

    def test_owner_with_slash_or_percent(self):
        """Ids are printable ASCII: '/' and '%' are allowed (e.g. an
        identity provider's "team/a"); percent-encoded in the path they
        name the owner, decoded once."""
        for owner in ("team/a", "50%off", "a%2Fb"):
            with self.subTest(owner=owner):
                r = ask(self.port, user(owner))
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.seen["x-usage-owner"], owner)
                self.assertOwner(self.get(owner), owner, 1)
                self.assertOwner(self.adjust(owner, 2), owner, 3)
                self.assertOwner(self.reset(owner), owner, 0)

    def test_longest_owner(self):
        for owner in ("u" * 128, "w" * 64, "e" * 128, "x" * 128):
            with self.subTest(owner=owner[:8] + "...", len=len(owner)):
                self.asks(1, user(owner))
                self.assertOwner(self.get(owner), owner, 1)
                self.assertOwner(self.put(owner, 4), owner, 4)
                self.assertRemaining(user(owner), 15)

    def test_unknown_owner_of_any_length(self):
        for owner in ("nobody", "u" * 70, "w" * 128, "x" * 128):
            with self.subTest(len=len(owner), c=owner[0]):
                self.assertDetail(self.get(owner), 404)
                self.assertDetail(self.reset(owner), 404)


class BadInput(AdminCase):
    """Each bad request gets a JSON detail and changes nothing."""

    def setUp(self):
        super().setUp()
        self.asks(3, user("u1"))

    def unchanged(self):
        self.assertOwner(self.get("u1"), "u1", 3)

    def test_malformed_json(self):
        bodies = (b'{"delta": ', b"not json", b'{"delta": 1,}', b"",
                  b"[1]", b"1", b'"x"', b"null", b'{"delta": 1, "delta": 2}',
                  b"{'delta': 1}", b'{"delta": 1} {"delta": 2}')
        for body in bodies:
            with self.subTest(body=body):
                self.assertDetail(self.adjust("u1", body), 400)
                self.assertDetail(self.put("u1", body.replace(
                    b"delta", b"used")), 400)
                self.unchanged()

    def test_wrong_field(self):
        for body in ({"used": 1}, {"delta": 1, "extra": 0}, {},
                     {"Delta": 1}):
            with self.subTest(body=body):
                self.assertDetail(self.adjust("u1", json.dumps(body)), 400)
                self.unchanged()
        for body in ({"delta": 1}, {"used": 1, "extra": 0}, {},
                     {"USED": 1}):
            with self.subTest(body=body):
                self.assertDetail(self.put("u1", json.dumps(body)), 400)
                self.unchanged()

    def test_not_an_integer(self):
        for value in ("1.5", '"5"', "null", "true", "[5]", '{"n": 5}',
                      "1e3", "5.0"):
            with self.subTest(value=value):
                self.assertDetail(self.adjust(
                    "u1", '{"delta": %s}' % value), 400)
                self.assertDetail(self.put("u1", '{"used": %s}' % value),
                                  400)
                self.unchanged()

    def test_too_large(self):
        for value in (LARGEST + 1, 2 ** 63, 2 ** 64, 10 ** 30):
            with self.subTest(value=value):
                self.assertDetail(self.put("u1", value), 400)
                self.assertDetail(self.adjust("u1", value), 400)
                self.assertDetail(self.adjust("u1", -value), 400)
                self.unchanged()

    def test_negative_result(self):
        self.assertDetail(self.adjust("u1", -4), 400, "negative")
        self.unchanged()
        self.assertDetail(self.put("u1", -1), 400)
        self.unchanged()
        self.assertDetail(self.adjust("u1", -LARGEST), 400)
        self.unchanged()
        self.assertOwner(self.adjust("u1", -3), "u1", 0)

    def test_body_too_large(self):
        body = b'{"delta": 1' + b" " * 5000 + b"}"
        r = self.adjust("u1", body)
        self.assertDetail(r, 413)
        self.unchanged()

    def test_unknown_owner(self):
        for r in (self.get("nobody"), self.reset("nobody"),
                  self.adjust("nobody", 1), self.put("nobody", 5)):
            self.assertDetail(r, 404)
        # nothing was created
        self.assertDetail(self.get("nobody"), 404)
        self.assertRemaining(user("nobody"), 19)
        self.unchanged()

    def test_bad_owner(self):
        cases = {
            "x" * 129: "over 128 bytes",
            "%41" * 129: "percent-encoded, over 128 bytes decoded",
            "a%20b": "a space",
            "a%01b": "a control character",
            "a%7Fb": "DEL",
            "%C3%A9": "not ASCII",
        }
        for path, why in cases.items():
            with self.subTest(why=why):
                self.assertDetail(self.admin("GET", path), 400)
                self.assertDetail(self.admin("POST", path + "/reset"), 400)
                self.assertDetail(self.admin("PUT", path, {"used": 0}), 400)
                self.assertDetail(self.admin("POST", path + "/adjust",
                                             {"delta": -1}), 400)
        # an empty owner
        self.assertDetail(self.admin("GET", ""), 400)
        self.assertDetail(self.admin("PUT", "", {"used": 0}), 400)
        # an escape cut short or not hex: nginx itself refuses the request
        for path in ("a%4G", "a%2/reset", "a%"):
            with self.subTest(path=path):
                self.assertEqual(self.admin("GET", path).status, 400)
                self.assertEqual(self.admin("POST", path).status, 400)
        self.unchanged()

    def test_unknown_path(self):
        for path in ("/usage_gate/admin", "/usage_gate/admin/",
                     "/usage_gate/admin/foo", "/usage_gate/admin/owners",
                     "/usage_gate/admin/ownersx/u1",
                     "/usage_gate/admin/owner/u1",
                     "/usage_gate/admin/owners/u1/bogus",
                     "/usage_gate/admin/owners/u1/reset/x",
                     "/usage_gate/admin/owners/u1/resetx",
                     "/usage_gate/admin/owners/u1/"):
            with self.subTest(path=path):
                self.assertDetail(request(self.port, path), 404)
                self.assertDetail(request(self.port, path, "POST"), 404)
        self.unchanged()

    def test_wrong_method(self):
        cases = [("DELETE", "u1", "GET, PUT"), ("POST", "u1", "GET, PUT"),
                 ("PATCH", "u1", "GET, PUT"),
                 ("GET", "u1/reset", "POST"), ("PUT", "u1/reset", "POST"),
                 ("DELETE", "u1/reset", "POST"),
                 ("GET", "u1/adjust", "POST"), ("PUT", "u1/adjust", "POST")]
        for method, path, allow in cases:
            with self.subTest(method=method, path=path):
                r = self.admin(method, path, {"delta": 1})
                self.assertDetail(r, 405)
                self.assertEqual(
                    {m.strip() for m in r.header("Allow").split(",")},
                    {m.strip() for m in allow.split(",")}, r)
                self.unchanged()

    def test_no_gate_headers_on_admin_responses(self):
        """The admin API's answers are not gated requests: no X-Plan, no
        usage or RateLimit fields, no Retry-After."""
        responses = {
            "GET": self.get("u1"),
            "reset": self.reset("u1"),
            "adjust": self.adjust("u1", 2),
            "PUT": self.put("u1", 3),
            "404": self.get("nobody"),
            "400": self.adjust("u1", -100),
            "405": self.admin("DELETE", "u1"),
        }
        for what, r in responses.items():
            with self.subTest(what=what):
                present = [h for h in GATE_RESPONSE_HEADERS if r.all(h)]
                self.assertEqual(present, [], f"{what}: {r.headers}")
        self.unchanged()


class ZoneParam(AdminCase):

    def test_zone_names_the_zone_read(self):
        r = ask(self.port, user("z1"), path="/other")
        self.assertEqual(r.status, 200, r)
        self.assertDetail(self.get("z1"), 404)         # first zone: usage
        self.assertOwner(self.get("z1", prefix="/other_admin/owners/"),
                         "z1", 1)
        self.assertOwner(self.put("z1", 20, prefix="/other_admin/owners/"),
                         "z1", 20)
        r = ask(self.port, user("z1"), path="/other")
        self.assertEqual(r.status, 402, r)
        # /ask counts in the usage zone, untouched
        self.assertRemaining(user("z1"), 19)

    def test_unknown_zone_fails_the_config_test(self):
        ng = Nginx(GATE.replace("usage_gate_admin zone=other;",
                                "usage_gate_admin zone=nope;"),
                   vars=self.vars())
        self.addCleanup(ng.cleanup)
        with open(os.path.join(ng.dir, "admin.token"), "w") as f:
            f.write(TOKEN)
        ok, out = ng.test_config()
        self.assertFalse(ok, out)
        self.assertIn('unknown zone "nope"', out)


class Workers(AdminCase):
    WORKERS = 2

    def burst(self, conns, per_conn, who):
        """conns keep-alive connections at once, per_conn asks each; the
        responses."""
        lock = threading.Lock()
        out, errors = [], []
        barrier = threading.Barrier(conns)
        body = json.dumps(ASK_BODY).encode()
        headers = [("Content-Type", "application/json")] + who

        def run():
            c = connect(self.port)
            try:
                c.connect()
                barrier.wait(10)
                for _ in range(per_conn):
                    r = send(c, "POST", "/ask", headers, body)
                    with lock:
                        out.append(r)
            except Exception as e:  # noqa: BLE001 -- reported below
                with lock:
                    errors.append(repr(e))
            finally:
                c.close()

        threads = [threading.Thread(target=run) for _ in range(conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        return out

    def pids_of(self, status, since, count):
        """The worker pids that answered `status` among access-log lines
        since..since+count (waiting for them to be written)."""
        lines = self.ng.log_lines("pids.log", since + count)
        return {ln.split()[0] for ln in lines[since:since + count]
                if ln.split()[1] == str(status)}

    def test_change_applies_to_every_worker_at_once(self):
        self.assertEqual(len(self.ng.workers_now()), 2)
        who = user("w5")
        self.asks(20, who)
        logged = 20
        # over quota, as seen by both workers
        rs = self.burst(16, 1, who)
        self.assertEqual([r.status for r in rs], [402] * 16)
        pids = self.pids_of(402, logged, 16)
        logged += 16
        self.assertEqual(len(pids), 2, "one worker served every connection")

        self.assertOwner(self.reset("w5"), "w5", 0)
        rs = self.burst(16, 2, who)
        statuses = sorted(r.status for r in rs)
        self.assertEqual(statuses, [200] * 20 + [402] * 12)
        remaining = sorted(int(r.header("X-Usage-Remaining"))
                           for r in rs if r.status == 200)
        self.assertEqual(remaining, list(range(20)))
        pids = self.pids_of(200, logged, 32)
        self.assertEqual(len(pids), 2, "the reset was not seen by both "
                         "workers, or one served every connection")

        self.assertOwner(self.put("w5", 10), "w5", 10)
        rs = self.burst(16, 1, who)
        self.assertEqual(sorted(r.status for r in rs),
                         [200] * 10 + [402] * 6)
        self.assertOwner(self.adjust("w5", -4), "w5", 16)
        rs = self.burst(8, 1, who)
        self.assertEqual(sorted(r.status for r in rs), [200] * 4 + [402] * 4)
        self.assertOwner(self.get("w5"), "w5", 20)

    def test_reads_during_load_are_never_torn(self):
        quota, total, conns = 600, 700, 8
        who = user("hot", "bulk")
        self.asks(1, who)                   # the owner exists from here
        errors = []
        reads = []
        done = threading.Event()

        def reader():
            c = connect(self.port)
            try:
                while not done.is_set():
                    r = send(c, "GET", ADMIN + "hot")
                    if r.status != 200 or not isinstance(r.json, dict):
                        errors.append(f"admin read: {r}")
                        return
                    reads.append(r.json)
            except Exception as e:  # noqa: BLE001 -- reported below
                errors.append("reader: " + repr(e))
            finally:
                c.close()

        rt = threading.Thread(target=reader)
        rt.start()
        statuses, load_errors = hammer(
            self.port, total - 1, conns,
            [("Content-Type", "application/json")] + who,
            json.dumps(ASK_BODY).encode(), timeout=60)
        errors += load_errors
        done.set()
        rt.join(10)

        self.assertEqual(errors, [])
        self.assertEqual(statuses.get(200, 0) + 1, quota, statuses)
        self.assertEqual(statuses.get(402, 0), total - quota, statuses)
        used = [j["used"] for j in reads]
        self.assertGreater(len(used), 20, "too few reads during the load")
        self.assertTrue(any(1 < u < quota for u in used),
                        f"no read saw the count move: {used[:5]}...")
        for a, b in zip(used, used[1:]):
            self.assertLessEqual(a, b, "a read went backwards")
        self.assertLessEqual(max(used), quota)
        for j in reads:
            self.assertEqual(j["owner"], "hot")
            self.assertIsInstance(j["used"], int)
        self.assertOwner(self.get("hot"), "hot", quota)


class Token(AdminCase):

    def secure(self, method, path, token=None, scheme="Bearer", body=None):
        h = [("Authorization", f"{scheme} {token}")] if token is not None \
            else None
        return request(self.port, "/secure/admin/owners/" + path, method,
                       h, body)

    def test_bearer_token(self):
        self.asks(3, user("u1"))
        r = self.secure("GET", "u1")
        self.assertDetail(r, 401)
        self.assertEqual(r.header("WWW-Authenticate"), "Bearer")
        for bad in ("wrong-token-0123456789", TOKEN[:-1], TOKEN + "x",
                    TOKEN.upper(), "", TOKEN + "x" * 16):
            with self.subTest(token=bad):
                self.assertDetail(self.secure("GET", "u1", bad), 401)
                self.assertDetail(self.secure("POST", "u1/reset", bad), 401)
                self.assertDetail(self.secure("PUT", "u1", bad,
                                              body={"used": 0}), 401)
        self.assertDetail(self.secure("GET", "u1", TOKEN, "Basic"), 401)
        # nothing was changed by the refused requests
        self.assertOwner(self.secure("GET", "u1", TOKEN), "u1", 3)
        # the scheme is case-insensitive (RFC 9110)
        self.assertOwner(self.secure("GET", "u1", TOKEN, "bearer"), "u1", 3)
        self.assertOwner(self.secure("POST", "u1/adjust", TOKEN,
                                     body={"delta": 2}), "u1", 5)
        self.assertOwner(self.secure("PUT", "u1", TOKEN, body={"used": 1}),
                         "u1", 1)
        self.assertOwner(self.secure("POST", "u1/reset", TOKEN), "u1", 0)
        # a 401 comes before routing: no hint about owners or paths
        self.assertDetail(self.secure("GET", "nobody"), 401)
        self.assertDetail(self.secure("DELETE", "u1"), 401)

    def test_token_file_must_hold_16_bytes(self):
        ng = Nginx(GATE, vars=self.vars())
        self.addCleanup(ng.cleanup)
        with open(os.path.join(ng.dir, "admin.token"), "w") as f:
            f.write("short-token-15b\n")
        ok, out = ng.test_config()
        self.assertFalse(ok, out)
        self.assertIn("usage_gate_admin_token_file", out)
        self.assertIn("16 bytes", out)
        os.unlink(os.path.join(ng.dir, "admin.token"))
        ok, out = ng.test_config()
        self.assertFalse(ok, out)
        self.assertIn("usage_gate_admin_token_file", out)


class Restart(AdminCase):

    def test_admin_changes_survive_a_restart(self):
        self.asks(3, user("a1"))
        self.assertOwner(self.put("a1", 17), "a1", 17)
        self.asks(20, user("a2"))
        self.assertOwner(self.reset("a2"), "a2", 0)
        self.asks(5, user("a3"))
        self.assertOwner(self.adjust("a3", -2), "a3", 3)
        self.ng.quit()
        self.ng.start()
        self.assertOwner(self.get("a1"), "a1", 17)
        self.assertRemaining(user("a1"), 2)
        self.assertOwner(self.get("a2"), "a2", 0)
        self.assertRemaining(user("a2"), 19)
        self.assertOwner(self.get("a3"), "a3", 3)
        self.assertRemaining(user("a3"), 16)


if __name__ == "__main__":
    unittest.main()
