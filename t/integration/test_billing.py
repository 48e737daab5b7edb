"""Billing semantics: refunds for calls that failed on our side, the
overage band, threshold notifications, billing-cycle anchors and a minute
header that never contradicts the plan.
"""

import calendar
import hashlib
import hmac
import json
import os
import re
import time

from echo import EchoServer, EchoTestCase
from harness import (GateTestCase, ask, free_port, request, server,
                     wait_for)

BASE = """
    usage_gate_zone  usage:1m state={{dir}}/usage.state;
    usage_gate_plan  free     month=20  minute=off;
    usage_gate_plan  metered  month=10  overage=5  minute=off;
    usage_gate_plan  open     month=3   overage=unlimited  minute=off;
    usage_gate_plan  small    month=4   minute=off;
    usage_gate_plan  cap3     month=off minute=3;
    usage_gate_default_plan  free;
    usage_gate_identity  header;
    usage_gate_trusted_proxies  127.0.0.1;
    log_format  overage  '$http_x_user_id $status $usage_gate_overage';
"""


def remaining(r):
    return int(r.header("X-Usage-Remaining"))


class Refunds(GateTestCase):

    # a refund lands in the log phase, just after the response is sent;
    # with one worker the next request cannot overtake it
    WORKERS = 1

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.echo = EchoServer().start()
        cls.dead = free_port()           # nothing listens there

    @classmethod
    def tearDownClass(cls):
        cls.echo.stop()
        super().tearDownClass()

    def setUp(self):
        self.ng = self.nginx(BASE + server("""
        location /ok/ {
            usage_gate usage;
            proxy_pass http://{{echo}};
        }
        location /fail/ {
            usage_gate usage;
            usage_gate_refund on;
            proxy_pass http://{{echo}}/status/500;
        }
        location /dead/ {
            usage_gate usage;
            usage_gate_refund on;
            proxy_pass http://127.0.0.1:{{dead}};
        }
        location /missing/ {
            usage_gate usage;
            usage_gate_refund on;
            proxy_pass http://{{echo}}/status/404;
        }
        location /no-refund/ {
            usage_gate usage;
            proxy_pass http://{{echo}}/status/500;
        }
        location = /metrics { usage_gate_metrics; }
"""), vars={"echo": self.echo.addr, "dead": self.dead})

    def test_server_errors_and_dead_upstreams_are_refunded(self):
        u = [("X-User-Id", "refund-1")]
        self.assertEqual(remaining(ask(self.port, u, path="/ok/x")), 19)
        for _ in range(3):
            self.assertEqual(ask(self.port, u, path="/fail/x").status, 500)
        self.assertEqual(remaining(ask(self.port, u, path="/ok/x")), 18)
        for _ in range(2):
            self.assertEqual(ask(self.port, u, path="/dead/x").status, 502)
        self.assertEqual(remaining(ask(self.port, u, path="/ok/x")), 17)
        text = request(self.port, "/metrics").body.decode()
        m = re.search(r'^usage_gate_refunded_units_total\{[^}]*'
                      r'plan="free"[^}]*\} (\d+)', text, re.M)
        self.assertIsNotNone(m, text)
        self.assertEqual(int(m.group(1)), 5)

    def test_client_errors_and_refund_off_are_not_refunded(self):
        u = [("X-User-Id", "refund-2")]
        for _ in range(2):
            self.assertEqual(ask(self.port, u, path="/missing/x").status,
                             404)
        self.assertEqual(ask(self.port, u, path="/no-refund/x").status, 500)
        self.assertEqual(remaining(ask(self.port, u, path="/ok/x")), 16)


class Overage(EchoTestCase):

    def test_overage_band_passes_flagged_then_402(self):
        ng = self.nginx(BASE + server("""
        location /api/ {
            usage_gate usage;
            access_log {{dir}}/overage.log overage;
            proxy_pass http://{{echo}};
        }
"""), vars={"echo": self.echo.addr})
        u = [("X-User-Id", "over-1"), ("X-Plan", "metered")]
        flags = []
        for i in range(15):
            r = ask(self.port, u, path="/api/x")
            self.assertEqual(r.status, 200, (i, r))
            flags.append(r.header("X-Usage-Overage"))
        self.assertEqual(flags, [None] * 10 + ["1", "2", "3", "4", "5"])
        seen = self.echo.take()
        self.assertEqual([s.get("X-Usage-Overage") for s in seen],
                         [None] * 10 + ["1", "2", "3", "4", "5"])
        r = ask(self.port, u, path="/api/x")
        self.assertEqual(r.status, 402, r)
        lines = ng.log_lines("overage.log", 16)
        self.assertEqual([ln.split()[-1] for ln in lines],
                         ["0"] * 10 + ["1", "2", "3", "4", "5", "0"])

    def test_limit_headers_describe_the_hard_limit(self):
        self.nginx(BASE + server("""
        location /api/ {
            usage_gate usage;
            proxy_pass http://{{echo}};
        }
"""), vars={"echo": self.echo.addr})
        u = [("X-User-Id", "over-3"), ("X-Plan", "metered")]
        r = ask(self.port, u, path="/api/x")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(remaining(r), 14)
        self.assertIn('"month";q=15;', r.header("RateLimit-Policy"))
        self.assertIn('"month";r=14;', r.header("RateLimit"))
        self.assertEqual(self.echo.take()[-1].get("X-Usage-Month-Remaining"),
                         "14")
        # a client cannot pass an overage flag of its own upstream
        r = ask(self.port, u + [("X-Usage-Overage", "99")], path="/api/x")
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(self.echo.take()[-1].get("X-Usage-Overage"))
        # unlimited: no month to announce, no remaining count
        u = [("X-User-Id", "over-4"), ("X-Plan", "open")]
        r = ask(self.port, u, path="/api/x")
        self.echo.take()
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.header("X-Usage-Remaining"))
        self.assertNotIn('"month"', r.header("RateLimit-Policy") or "")

    def test_unlimited_overage_never_refuses_for_the_month(self):
        self.nginx(BASE + server("""
        location /api/ {
            usage_gate usage;
            proxy_pass http://{{echo}};
        }
"""), vars={"echo": self.echo.addr})
        u = [("X-User-Id", "over-2"), ("X-Plan", "open")]
        for i in range(12):
            r = ask(self.port, u, path="/api/x")
            self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Usage-Overage"), "9")


class Notifications(GateTestCase):

    SECRET = b"whsec_test_0123456789abcdef"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.echo = EchoServer().start()
        cls.hook = EchoServer().start()

    @classmethod
    def tearDownClass(cls):
        cls.echo.stop()
        cls.hook.stop()
        super().tearDownClass()

    def http(self):
        return BASE + """
    usage_gate_notify http://{{hook}}/hook thresholds=50,100
                      secret_file={{dir}}/hook.secret;
""" + server("""
        location /api/ {
            usage_gate usage;
            proxy_pass http://{{echo}};
        }
        location = /metrics { usage_gate_metrics; }
        location /usage_gate/admin {
            usage_gate_admin zone=usage;
            usage_gate_admin_token_file off;
            allow 127.0.0.1;
            deny all;
        }
""")

    def start(self):
        ng = self.make_nginx(self.http(), vars={"echo": self.echo.addr,
                                                "hook": self.hook.addr})
        with open(os.path.join(ng.dir, "hook.secret"), "wb") as f:
            f.write(self.SECRET + b"\n")
        ng.start()
        self.hook.take()
        return ng

    def deliveries(self, n):
        return wait_for(lambda: len(self.hook.requests) >= n
                        and list(self.hook.requests), 15,
                        what=f"{n} webhook deliveries")

    def check_signature(self, d):
        sig = d.get("X-Usage-Gate-Signature")
        self.assertIsNotNone(sig, d)
        parts = dict(p.split("=", 1) for p in sig.split(","))
        mac = hmac.new(self.SECRET, parts["t"].encode() + b"." + d.body,
                       hashlib.sha256).hexdigest()
        self.assertTrue(hmac.compare_digest(mac, parts["v1"]), sig)

    def test_each_threshold_once_per_cycle_across_a_reload(self):
        ng = self.start()
        u = [("X-User-Id", "notify-1"), ("X-Plan", "small")]
        statuses = [ask(self.port, u, path="/api/x").status
                    for _ in range(6)]
        self.assertEqual(statuses, [200] * 4 + [402] * 2)
        got = self.deliveries(2)
        ng.reload()
        statuses = [ask(self.port, u, path="/api/x").status
                    for _ in range(3)]
        self.assertEqual(statuses, [402] * 3)
        time.sleep(2)
        got = list(self.hook.requests)
        self.assertEqual(len(got), 2, got)
        bodies = [json.loads(d.body) for d in got]
        self.assertEqual(sorted(b["threshold"] for b in bodies), [50, 100])
        for d, b in zip(got, bodies):
            self.assertEqual(d.method, "POST")
            self.assertEqual(d.path, "/hook")
            self.assertEqual(b["owner"], "notify-1")
            self.assertEqual(b["plan"], "small")
            self.assertEqual(b["limit"], 4)
            self.assertEqual(b["used"], b["threshold"] * 4 // 100)
            self.assertRegex(b["cycle"], r"^\d{4}-\d{2}")
            # RFC 3339 in UTC, as the cycle and the receiver's logs read
            at = calendar.timegm(time.strptime(b["at"],
                                               "%Y-%m-%dT%H:%M:%SZ"))
            self.assertAlmostEqual(at, time.time(), delta=60)
            self.check_signature(d)

    def test_a_restart_does_not_send_a_threshold_again(self):
        ng = self.start()
        u = [("X-User-Id", "notify-3"), ("X-Plan", "small")]
        for _ in range(2):
            self.assertEqual(ask(self.port, u, path="/api/x").status, 200)
        self.deliveries(1)
        ng.quit()
        ng.start()
        for _ in range(2):
            self.assertEqual(ask(self.port, u, path="/api/x").status, 200)
        self.assertEqual(ask(self.port, u, path="/api/x").status, 402)
        self.deliveries(2)
        time.sleep(2)
        got = [json.loads(d.body) for d in self.hook.requests]
        self.assertEqual([(b["threshold"], b["used"]) for b in got],
                         [(50, 2), (100, 4)])

    def test_the_state_file_keeps_what_was_sent(self):
        # the owner crosses 50 %, an admin gives a unit back, and after a
        # restart the owner crosses 50 % again: the mark from the state
        # file says it was sent in this cycle
        ng = self.start()
        u = [("X-User-Id", "notify-4"), ("X-Plan", "small")]
        for _ in range(2):
            self.assertEqual(ask(self.port, u, path="/api/x").status, 200)
        self.deliveries(1)
        r = request(self.port, "/usage_gate/admin/owners/notify-4/adjust",
                    "POST", body={"delta": -1})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["used"], 1, r.json)
        ng.quit()
        ng.start()
        for _ in range(3):
            self.assertEqual(ask(self.port, u, path="/api/x").status, 200)
        self.assertEqual(ask(self.port, u, path="/api/x").status, 402)
        self.deliveries(2)
        time.sleep(2)
        got = [json.loads(d.body) for d in self.hook.requests]
        self.assertEqual([(b["threshold"], b["used"]) for b in got],
                         [(50, 2), (100, 4)])

    def test_failed_deliveries_are_retried_and_counted(self):
        self.hook.fail_first = 2
        self.start()
        u = [("X-User-Id", "notify-2"), ("X-Plan", "small")]
        for _ in range(2):
            self.assertEqual(ask(self.port, u, path="/api/x").status, 200)
        got = self.deliveries(3)
        self.assertEqual({json.loads(d.body)["threshold"] for d in got},
                         {50})
        text = request(self.port, "/metrics").body.decode()
        m = re.search(r"^usage_gate_notify_failures_total\S* (\d+)", text,
                      re.M)
        self.assertIsNotNone(m, text)
        self.assertEqual(int(m.group(1)), 2)


class CycleAnchor(EchoTestCase):

    WORKERS = 1

    HTTP = BASE.replace("month=4   minute=off", "month=2   minute=off") \
        + """
    usage_gate_cycle_anchor $http_x_cycle_anchor;
""" + server("""
        location /api/ {
            usage_gate usage;
            proxy_pass http://{{echo}};
        }
""")

    def test_anchor_of_tomorrow_resets_within_a_day(self):
        self.nginx(self.HTTP, vars={"echo": self.echo.addr})
        tomorrow = time.gmtime(time.time() + 86400)
        anchor = time.strftime("2025-01-%dT00:00:00Z", tomorrow)
        u = [("X-User-Id", "anchor-1"), ("X-Plan", "small"),
             ("X-Cycle-Anchor", anchor)]
        for _ in range(2):
            self.assertEqual(ask(self.port, u, path="/api/x").status, 200)
        r = ask(self.port, u, path="/api/x")
        self.assertEqual(r.status, 402, r)
        midnight = calendar.timegm(tomorrow[:3] + (0, 0, 0))
        self.assertLessEqual(r.json["reset_seconds"], 86400)
        self.assertAlmostEqual(r.json["reset_seconds"],
                               midnight - time.time(), delta=5)
        self.assertAlmostEqual(int(r.header("Retry-After")),
                               midnight - time.time(), delta=5)

    def test_day_31_is_clamped_to_the_end_of_february(self):
        self.nginx(self.HTTP, vars={"echo": self.echo.addr},
                   faketime="@2027-02-27 23:59:54")
        u = [("X-User-Id", "anchor-2"), ("X-Plan", "small"),
             ("X-Cycle-Anchor", "2026-01-31T09:30:00Z")]
        for _ in range(2):
            self.assertEqual(ask(self.port, u, path="/api/x").status, 200)
        r = ask(self.port, u, path="/api/x")
        self.assertEqual(r.status, 402, r)
        self.assertLessEqual(r.json["reset_seconds"], 6)
        time.sleep(r.json["reset_seconds"] + 1.5)
        r = ask(self.port, u, path="/api/x")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(remaining(r), 1)

    def test_bad_anchor_is_a_400(self):
        self.nginx(self.HTTP, vars={"echo": self.echo.addr})
        for bad in ("0", "29", "2025-02-30T00:00:00Z", "x" * 300, "-1"):
            u = [("X-User-Id", "anchor-3"), ("X-Cycle-Anchor", bad)]
            r = ask(self.port, u, path="/api/x")
            self.assertEqual(r.status, 400, (bad, r))
            self.assertIn("detail", r.json)


class MinuteHeader(GateTestCase):

    def test_this_minute_never_exceeds_the_cap(self):
        echo = EchoServer().start()
        self.addCleanup(echo.stop)
        self.nginx(BASE + server("""
        location /api/ {
            usage_gate usage;
            proxy_pass http://{{echo}};
        }
"""), vars={"echo": echo.addr})
        u = [("X-User-Id", "minute-1"), ("X-Plan", "cap3")]
        seen = []
        deadline = time.monotonic() + 62
        while time.monotonic() < deadline:
            r = ask(self.port, u, path="/api/x")
            seen.append((r.status, int(r.header("X-Usage-This-Minute"))))
            time.sleep(4)
        self.assertGreater(sum(1 for s, _ in seen if s == 200), 4, seen)
        self.assertTrue(all(m <= 3 for _, m in seen), seen)


class Configuration(GateTestCase):

    def check_refused(self, http, *needles):
        ng = self.make_nginx(http, expect_log=[r"\[emerg\]"])
        ok, out = ng.test_config()
        self.assertFalse(ok, out)
        for n in needles:
            self.assertIn(n, out)

    def test_dynamodb_zones_take_every_billing_term(self):
        ddb = """
    usage_gate_zone  usage:1m;
    usage_gate_plan  free     month=20  minute=off;
    usage_gate_plan  metered  month=10  overage=5  minute=off;
    usage_gate_identity  header;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_dynamodb  zone=usage table=usage region=us-east-1
                         endpoint=http://127.0.0.1:9/;
"""
        loc = """
        location /api/ {
            usage_gate usage %s;
            %s
            return 200;
        }
"""
        # refunds, anchors and overage plans, as test_billing_dynamodb
        # shows them billed in the table
        for plans, directive in (("", "usage_gate_refund on;"),
                                 ("", "usage_gate_cycle_anchor "
                                      "$http_x_anchor;"),
                                 ("", ""), ("plans=free", "")):
            ok, out = self.make_nginx(ddb + server(loc % (plans,
                                                          directive))) \
                .test_config()
            self.assertTrue(ok, (directive, out))

    def test_bad_parameters_are_refused(self):
        base = """
    usage_gate_zone  usage:1m;
    usage_gate_identity  header;
    usage_gate_trusted_proxies  127.0.0.1;
"""
        self.check_refused(base + "usage_gate_plan p month=5 overage=off;",
                           'invalid value in "overage=off"')
        self.check_refused(base + "usage_gate_plan p overage=5;",
                           "usage_gate_plan")
        self.check_refused(base + "usage_gate_notify ftp://x/;",
                           "is not an http:// or https:// URL")
        self.check_refused(base + "usage_gate_notify http://x/ "
                           "thresholds=0,100;", 'invalid "thresholds=0,100"')
        self.check_refused(base + "usage_gate_notify http://x/ "
                           "secret_file={{dir}}/missing;", "cannot open")
