"""What users and the app see: the client response headers (the
seed's X-Plan / X-Usage-* and the IETF RateLimit fields), usage_gate_headers
off, the headers written upstream, and the $usage_gate_* variables.
"""

import re
import unittest

from harness import (GATE_HTTP, GateTestCase, anon_owner, ask, gated,
                     minute_guard, month_reset_seconds, server, user)

USAGE_HEADERS = ("X-Plan", "X-Usage-Remaining", "X-Usage-This-Minute",
                 "RateLimit-Policy", "RateLimit")

RL_BOTH = re.compile(r'^"minute";r=(\d+);t=(\d+), "month";r=(\d+);t=(\d+)$')
RL_MINUTE = re.compile(r'^"minute";r=(\d+);t=(\d+)$')
RL_MONTH = re.compile(r'^"month";r=(\d+);t=(\d+)$')


def plans_http(extra: str = "") -> str:
    return GATE_HTTP + """
    usage_gate_plan  monthly  month=5   minute=off;
    usage_gate_plan  open     month=off minute=off;
    usage_gate_plan  quick    month=off minute=4;
""" + extra


class ClientHeaders(GateTestCase):

    def setUp(self):
        self.ng = self.nginx(plans_http() + server(gated("/ask")))

    def test_free_plan_headers_exact(self):
        minute_guard(10)
        r = ask(self.port)
        reset = month_reset_seconds()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Plan"), "free")
        self.assertEqual(r.header("X-Usage-Remaining"), "19")
        self.assertEqual(r.header("X-Usage-This-Minute"), "1")
        self.assertEqual(r.header("RateLimit-Policy"),
                         '"minute";q=30;w=60, "month";q=20;w=2592000')
        m = RL_BOTH.match(r.header("RateLimit") or "")
        self.assertIsNotNone(m, r.header("RateLimit"))
        self.assertEqual(m.group(1, 2, 3), ("29", "2", "19"))
        self.assertAbout(m.group(4), reset, 3)
        self.assertEqual(r.header("RateLimit"),
                         f'"minute";r=29;t=2, "month";r=19;t={m.group(4)}')

        r = ask(self.port)
        self.assertEqual(r.header("X-Usage-Remaining"), "18")
        self.assertEqual(r.header("X-Usage-This-Minute"), "2")
        m = RL_BOTH.match(r.header("RateLimit") or "")
        self.assertEqual(m.group(1, 2, 3), ("28", "4", "18"))

    def test_each_header_once_and_on_denials_too(self):
        minute_guard(10)
        for i in range(20):
            r = ask(self.port)
            self.assertEqual(r.status, 200)
            for h in USAGE_HEADERS:
                self.assertEqual(len(r.all(h)), 1, (h, r.headers))
        self.assertEqual(r.header("X-Usage-This-Minute"), "20")
        r = ask(self.port)
        self.assertEqual(r.status, 402, r)
        for h in USAGE_HEADERS + ("Retry-After",):
            self.assertEqual(len(r.all(h)), 1, (h, r.headers))
        self.assertEqual(r.header("X-Plan"), "free")
        self.assertEqual(r.header("X-Usage-Remaining"), "0")
        self.assertEqual(r.header("X-Usage-This-Minute"), "20")
        m = RL_BOTH.match(r.header("RateLimit"))
        self.assertIsNotNone(m, r.header("RateLimit"))
        self.assertEqual(m.group(3), "0")
        self.assertEqual(m.group(4), r.header("Retry-After"))

    def test_plan_without_monthly_limit(self):
        r = ask(self.port, user("bob", "pro"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Plan"), "pro")
        self.assertIsNone(r.header("X-Usage-Remaining"))
        self.assertEqual(r.header("X-Usage-This-Minute"), "1")
        self.assertEqual(r.header("RateLimit-Policy"), '"minute";q=120;w=60')
        # one unit per 0.5 s: 119 left, full again in 1 s (rounded up)
        self.assertEqual(r.header("RateLimit"), '"minute";r=119;t=1')

    def test_plan_without_minute_cap(self):
        r = ask(self.port, user("mo", "monthly"))
        reset = month_reset_seconds()
        self.assertEqual(r.header("X-Plan"), "monthly")
        self.assertEqual(r.header("X-Usage-Remaining"), "4")
        self.assertEqual(r.header("RateLimit-Policy"),
                         '"month";q=5;w=2592000')
        m = RL_MONTH.match(r.header("RateLimit") or "")
        self.assertIsNotNone(m, r.header("RateLimit"))
        self.assertEqual(m.group(1), "4")
        self.assertAbout(m.group(2), reset, 3)

    def test_plan_with_no_limits_has_no_ratelimit_fields(self):
        minute_guard(5)
        for i in range(3):
            r = ask(self.port, user("op", "open"))
            self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Plan"), "open")
        self.assertIsNone(r.header("X-Usage-Remaining"))
        self.assertIsNone(r.header("RateLimit-Policy"))
        self.assertIsNone(r.header("RateLimit"))
        self.assertEqual(r.header("X-Usage-This-Minute"), "3")

    def test_429_headers(self):
        q = user("qk", "quick")  # 4 a minute: one back every 15 s
        for _ in range(4):
            self.assertEqual(ask(self.port, q).status, 200)
        r = ask(self.port, q)
        self.assertEqual(r.status, 429, r)
        for h in ("X-Plan", "X-Usage-This-Minute", "RateLimit-Policy",
                  "RateLimit", "Retry-After"):
            self.assertEqual(len(r.all(h)), 1, (h, r.headers))
        self.assertEqual(r.header("X-Plan"), "quick")
        self.assertIsNone(r.header("X-Usage-Remaining"))
        self.assertEqual(r.header("RateLimit-Policy"), '"minute";q=4;w=60')
        self.assertEqual(r.header("RateLimit"), '"minute";r=0;t=60')
        retry = int(r.header("Retry-After"))
        self.assertTrue(14 <= retry <= 15, retry)
        self.assertEqual(r.json["reset_seconds"], retry)
        self.assertEqual(r.json["limit"], 4)
        self.assertEqual(r.json["used"], 4)


class HeadersOff(GateTestCase):

    def test_usage_gate_headers_off(self):
        self.nginx(plans_http("    usage_gate_headers off;\n")
                   + server(gated("/ask")))
        for i in range(20):
            r = ask(self.port)
            self.assertEqual(r.status, 200, r)
            for h in USAGE_HEADERS:
                self.assertIsNone(r.header(h), h)
        # the app still gets its headers
        self.assertEqual(r.seen["x-plan"], "free")
        self.assertEqual(r.seen["x-usage-month-remaining"], "0")
        r = ask(self.port)
        self.assertEqual(r.status, 402, r)
        for h in USAGE_HEADERS:
            self.assertIsNone(r.header(h), h)
        self.assertAbout(r.header("Retry-After"), month_reset_seconds(), 3)
        self.assertEqual(r.json["used"], 20)

    def test_headers_off_per_location(self):
        self.nginx(plans_http() + server(
            gated("/ask") + gated("/quiet", extra="usage_gate_headers off;")))
        r = ask(self.port, path="/quiet")
        self.assertIsNone(r.header("X-Plan"))
        r = ask(self.port)
        self.assertEqual(r.header("X-Plan"), "free")
        self.assertEqual(r.header("X-Usage-Remaining"), "18")


class Upstream(GateTestCase):
    """What the app receives."""

    def setUp(self):
        self.nginx(plans_http() + server(gated("/ask")
                                         + gated("/org", "usage scope=org")))

    def test_app_sees_the_resolved_identity_and_usage(self):
        r = ask(self.port, user("alice", "FREE", "acme"))
        self.assertEqual(r.seen, {
            "x-user-id": "alice",
            "x-org-id": "acme",
            "x-plan": "free",
            "x-usage-owner": "alice",
            "x-usage-month-used": "1",
            "x-usage-month-remaining": "19",
        })
        r = ask(self.port, user("alice", "free", "acme"), path="/org")
        self.assertEqual(r.seen, {
            "x-user-id": "alice",
            "x-org-id": "acme",
            "x-plan": "free",
            "x-usage-owner": "acme",
            "x-usage-month-used": "1",
            "x-usage-month-remaining": "19",
        })
        r = ask(self.port, user("bob", "pro"))
        self.assertEqual(r.seen, {
            "x-user-id": "bob",
            "x-org-id": None,
            "x-plan": "pro",
            "x-usage-owner": "bob",
            "x-usage-month-used": "1",
            "x-usage-month-remaining": None,
        })

    def test_unknown_plan_is_overwritten_upstream(self):
        r = ask(self.port, user("carl", "platinum"))
        self.assertEqual(r.seen["x-plan"], "free")

    def test_client_cannot_inject_usage_headers(self):
        spoof = [("X-Usage-Owner", "victim"), ("X-Usage-Month-Used", "0"),
                 ("X-Usage-Month-Remaining", "999999"),
                 ("X-User-Id", "victim"), ("X-Org-Id", "victim-org"),
                 ("X-Plan", "enterprise")]
        owner = anon_owner("127.0.0.2")
        r = ask(self.port, spoof, source="127.0.0.2")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.seen, {
            "x-user-id": owner,
            "x-org-id": None,
            "x-plan": "free",
            "x-usage-owner": owner,
            "x-usage-month-used": "1",
            "x-usage-month-remaining": "19",
        })
        # from a trusted peer too, the usage headers are the gate's own
        r = ask(self.port, [("X-User-Id", "dan"),
                            ("X-Usage-Owner", "victim"),
                            ("X-Usage-Month-Used", "0"),
                            ("X-Usage-Month-Remaining", "7")])
        self.assertEqual(r.seen["x-usage-owner"], "dan")
        self.assertEqual(r.seen["x-usage-month-used"], "1")
        self.assertEqual(r.seen["x-usage-month-remaining"], "19")


class Variables(GateTestCase):
    # checks log lines in request order: one worker writes them in order
    WORKERS = 1

    FMT = ("log_format ug '$usage_gate_owner|$usage_gate_user|"
           "$usage_gate_org|$usage_gate_plan|$usage_gate_result|"
           "$usage_gate_month_used|$usage_gate_month_limit|"
           "$usage_gate_month_remaining|$usage_gate_minute_used';\n"
           "    access_log {{dir}}/ug.log ug;\n")

    def test_variables_in_the_access_log(self):
        minute_guard(15)
        ng = self.nginx(plans_http(
            self.FMT + "    usage_gate_plan  tiny  month=1 minute=off;\n"
            "    usage_gate_plan  slow  month=off minute=1;\n")
            + server(gated("/ask") + gated("/org", "usage scope=org")
                     + """
        location /open { usage_gate off; proxy_pass http://{{app}}/ask; }
"""))
        expected = []
        r = ask(self.port, user("alice", "free", "acme"))
        self.assertEqual(r.status, 200)
        expected.append("alice|alice|acme|free|ALLOWED|1|20|19|1")
        ask(self.port, user("alice", "free", "acme"), path="/org")
        expected.append("acme|alice|acme|free|ALLOWED|1|20|19|1")
        ask(self.port, user("bob", "pro"))
        expected.append("bob|bob|-|pro|ALLOWED|1|-|-|1")
        ask(self.port, user("ty", "tiny"))
        r = ask(self.port, user("ty", "tiny"))
        self.assertEqual(r.status, 402)
        expected.append("ty|ty|-|tiny|ALLOWED|1|1|0|1")
        expected.append("ty|ty|-|tiny|QUOTA|1|1|0|1")
        ask(self.port, user("sl", "slow"))
        r = ask(self.port, user("sl", "slow"))
        self.assertEqual(r.status, 429)
        expected.append("sl|sl|-|slow|ALLOWED|1|-|-|1")
        expected.append("sl|sl|-|slow|RATE|1|-|-|1")
        ask(self.port, path="/open")
        expected.append("-|-|-|-|-|-|-|-|-")
        anon = anon_owner("127.0.0.1")
        ask(self.port)
        expected.append(f"{anon}|{anon}|-|free|ALLOWED|1|20|19|1")
        self.assertEqual(ng.log_lines("ug.log", len(expected)), expected)

    def test_variables_in_proxy_set_header(self):
        # nginx itself is the upstream here: it answers with the header
        self.nginx(plans_http() + server("""
        location /ask {
            usage_gate usage;
            proxy_set_header X-Gate "$usage_gate_result|$usage_gate_owner|$usage_gate_plan|$usage_gate_month_used|$usage_gate_month_remaining|";
            proxy_pass http://127.0.0.1:{{port2}}/echo;
        }
""") + server("""
        location /echo { return 200 "[$http_x_gate]"; }
""", "{{port2}}"))
        r = ask(self.port, user("eve"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"[ALLOWED|eve|free|1|19|]")
        r = ask(self.port, user("eve", "pro"))
        # not set (no monthly limit): empty here, "-" in a log line
        self.assertEqual(r.body, b"[ALLOWED|eve|pro|2||]")


if __name__ == "__main__":
    unittest.main()
