"""Decisions: the monthly quota (402), the per-minute cap (429),
cost=N, plans= bypass, dry run, usage_gate off, the deny statuses and body,
upgrade_url and error_page.
"""

import time
import unittest

from harness import (GATE_HTTP, GateTestCase, ask, gated, month_reset_seconds,
                     request, server, user)


def limits_http(plans: str, extra: str = "") -> str:
    return f"""
    usage_gate_zone  usage:1m;
{plans}
    usage_gate_default_plan  free;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt  "sentientiq";
{extra}
"""


class Quota(GateTestCase):

    def test_free_quota_402_with_retry_after_and_body(self):
        self.nginx(GATE_HTTP + server(gated("/ask")))
        for i in range(20):
            r = ask(self.port)
            self.assertEqual(r.status, 200, (i, r))
            self.assertEqual(r.header("X-Usage-Remaining"), str(19 - i))
        r = ask(self.port)
        expected_reset = month_reset_seconds()
        self.assertEqual(r.status, 402, r)
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertAbout(r.header("Retry-After"), expected_reset, 3)
        body = r.json
        self.assertEqual(set(body), {"detail", "plan", "limit", "used",
                                     "reset_seconds", "upgrade_url"}, body)
        self.assertEqual(body["detail"],
                         "Monthly quota reached for plan 'free'. "
                         "Please upgrade.")
        self.assertEqual(body["plan"], "free")
        self.assertEqual(body["limit"], 20)
        self.assertEqual(body["used"], 20)
        self.assertEqual(body["reset_seconds"], int(r.header("Retry-After")))
        self.assertIsNone(body["upgrade_url"])
        self.assertNotIn("seen", body, "a denied request reached the app")
        # denied requests count nothing: still 20 used, still 402
        for _ in range(5):
            r = ask(self.port)
            self.assertEqual(r.status, 402, r)
            self.assertEqual(r.json["used"], 20)
            self.assertEqual(r.header("X-Usage-Remaining"), "0")

    def test_402s_do_not_use_up_the_minute_cap(self):
        self.nginx(limits_http(
            "    usage_gate_plan  free  month=2 minute=3;")
            + server(gated("/ask")))
        self.assertEqual(ask(self.port).status, 200)
        self.assertEqual(ask(self.port).status, 200)
        # had the denials been counted, the minute cap (3) would answer 429
        for i in range(6):
            r = ask(self.port)
            self.assertEqual(r.status, 402, (i, r))

    def test_cost(self):
        self.nginx(limits_http(
            "    usage_gate_plan  free  month=12 minute=off;\n"
            "    usage_gate_plan  burst month=off minute=10;")
            + server(gated("/ask", "usage cost=5")
                     + gated("/one", "usage"),))
        r = ask(self.port)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Usage-Remaining"), "7")
        self.assertEqual(r.seen["x-usage-month-used"], "5")
        self.assertEqual(r.seen["x-usage-month-remaining"], "7")
        r = ask(self.port)
        self.assertEqual(r.header("X-Usage-Remaining"), "2")
        r = ask(self.port)
        self.assertEqual(r.status, 402, r)
        self.assertEqual(r.json["used"], 10)
        self.assertEqual(r.json["limit"], 12)
        # what remains still serves cheaper calls
        r = ask(self.port, path="/one")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Usage-Remaining"), "1")
        # cost against the minute cap: 10 per minute at 5 a call
        b = user("b1", "burst")
        r = ask(self.port, b)
        self.assertEqual(r.status, 200, r)
        self.assertIn('"minute";r=5;', r.header("RateLimit"))
        self.assertEqual(ask(self.port, b).status, 200)
        r = ask(self.port, b)
        self.assertEqual(r.status, 429, r)
        # a cost-1 call does not fit either right after
        self.assertEqual(ask(self.port, b, path="/one").status, 429)


class MinuteCap(GateTestCase):

    def test_429_retry_after_body_and_refill(self):
        self.nginx(limits_http(
            "    usage_gate_plan  free  month=1000 minute=60;")
            + server(gated("/ask")))
        # a burst of `minute` passes; GCRA gives one unit back per second,
        # so at most one more per second the burst took
        started = time.monotonic()
        allowed = 0
        while True:
            r = ask(self.port)
            if r.status != 200:
                break
            allowed += 1
            self.assertLess(allowed, 200, "the minute cap never answered")
        took = time.monotonic() - started
        self.assertEqual(r.status, 429, r)
        self.assertGreaterEqual(allowed, 60)
        self.assertLessEqual(allowed, 60 + int(took) + 1)
        self.assertEqual(r.header("Content-Type"), "application/json")
        retry = int(r.header("Retry-After"))
        # one unit back every 60/60 = 1 s
        self.assertEqual(retry, 1)
        body = r.json
        self.assertEqual(set(body), {"detail", "plan", "limit", "used",
                                     "reset_seconds", "upgrade_url"}, body)
        self.assertEqual(body["detail"], "Rate limit reached for plan "
                         "'free'. Try again in a minute.")
        self.assertEqual(body["plan"], "free")
        self.assertEqual(body["limit"], 60)
        self.assertEqual(body["used"], 60)
        self.assertEqual(body["reset_seconds"], retry)
        self.assertIsNone(body["upgrade_url"])
        self.assertIn('"minute";r=0;t=60', r.header("RateLimit"))
        # more tries right away: denials count nothing
        denied = 0
        for _ in range(10):
            r = ask(self.port)
            if r.status == 200:
                allowed += 1
            else:
                self.assertEqual(r.status, 429, r)
                denied += 1
        self.assertGreaterEqual(denied, 8)
        time.sleep(retry + 0.2)
        r = ask(self.port)
        self.assertEqual(r.status, 200, r)
        allowed += 1
        self.assertEqual(r.seen["x-usage-month-used"], str(allowed),
                         "429s were counted against the month")
        self.assertEqual(r.header("X-Usage-Remaining"), str(1000 - allowed))

    def test_retry_after_is_when_the_next_request_passes(self):
        # 6 per minute: one unit back every 10 s
        self.nginx(limits_http(
            "    usage_gate_plan  free  month=off minute=6;")
            + server(gated("/ask")))
        for _ in range(6):
            self.assertEqual(ask(self.port).status, 200)
        r = ask(self.port)
        self.assertEqual(r.status, 429, r)
        retry = int(r.header("Retry-After"))
        self.assertTrue(9 <= retry <= 10, retry)
        self.assertEqual(r.json["used"], 6)
        self.assertEqual(r.json["limit"], 6)
        self.assertIn('"minute";r=0;', r.header("RateLimit"))
        # the plan has no monthly limit
        self.assertIsNone(r.header("X-Usage-Remaining"))
        self.assertEqual(r.header("RateLimit-Policy"), '"minute";q=6;w=60')
        # just before Retry-After: still 429; at Retry-After: 200
        time.sleep(retry - 1.5)
        self.assertEqual(ask(self.port).status, 429)
        time.sleep(1.7)
        r = ask(self.port)
        self.assertEqual(r.status, 200, r)
        self.assertIn('"minute";r=0;', r.header("RateLimit"))

    def test_minute_is_checked_before_month(self):
        self.nginx(limits_http(
            "    usage_gate_plan  free  month=2 minute=2;")
            + server(gated("/ask")))
        self.assertEqual(ask(self.port).status, 200)
        self.assertEqual(ask(self.port).status, 200)
        r = ask(self.port)
        self.assertEqual(r.status, 429, r)
        self.assertTrue(r.json["detail"].startswith("Rate limit"))


class Bypass(GateTestCase):
    """plans=free gates the free plan only; other plans pass untouched."""

    # checks log lines in request order: one worker writes them in order
    WORKERS = 1

    def test_plans_free_bypasses_other_plans(self):
        ng = self.nginx(limits_http(
            "    usage_gate_plan  free  month=3 minute=off;\n"
            "    usage_gate_plan  pro   month=2 minute=2;",
            "    log_format ug '$usage_gate_owner $usage_gate_plan "
            "$usage_gate_result';")
            + server(
                gated("/ask")
                + """
        location /pulse/snapshot {
            usage_gate usage plans=free;
            access_log {{dir}}/ug.log ug;
            proxy_pass http://{{app}};
        }
"""))
        pro = user("p1", "pro")
        for i in range(6):
            r = request(self.port, "/pulse/snapshot", headers=pro)
            self.assertEqual(r.status, 200, (i, r))
            self.assertEqual(r.seen["x-plan"], "pro")
        # the bypass counted nothing for p1 on the gated /ask
        r = ask(self.port, pro)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.seen["x-usage-month-used"], "1")
        # free is gated on the snapshot
        for i in range(3):
            r = request(self.port, "/pulse/snapshot")
            self.assertEqual(r.status, 200, (i, r))
            self.assertEqual(r.header("X-Usage-Remaining"), str(2 - i))
        r = request(self.port, "/pulse/snapshot")
        self.assertEqual(r.status, 402, r)
        lines = ng.log_lines("ug.log", 10)
        self.assertEqual([l.split()[2] for l in lines],
                         ["BYPASS"] * 6 + ["ALLOWED"] * 3 + ["QUOTA"])
        self.assertEqual(lines[0].split()[:2], ["p1", "pro"])


class Off(GateTestCase):
    # checks log lines in request order: one worker writes them in order
    WORKERS = 1

    def test_usage_gate_off_location(self):
        ng = self.nginx(limits_http(
            "    usage_gate_plan  free  month=2 minute=off;",
            "    log_format ug '[$usage_gate_owner|$usage_gate_plan|"
            "$usage_gate_result|$usage_gate_month_used]';\n"
            "    access_log {{dir}}/ug.log ug;")
            + """
    server {
        listen 127.0.0.1:{{port}};
        usage_gate usage scope=user;
        location /ask { proxy_pass http://{{app}}; }
        location /health { usage_gate off; proxy_pass http://{{app}}; }
        location /open { usage_gate off; proxy_pass http://{{app}}/ask; }
    }
""", )
        for i in range(4):
            r = ask(self.port, path="/open")
            self.assertEqual(r.status, 200, (i, r))
            for h in ("X-Plan", "X-Usage-Remaining", "X-Usage-This-Minute",
                      "RateLimit", "RateLimit-Policy"):
                self.assertIsNone(r.header(h), h)
            self.assertIsNone(r.seen["x-usage-owner"])
            self.assertIsNone(r.seen["x-usage-month-used"])
            r = request(self.port, "/health")
            self.assertEqual(r.status, 200, r)
            self.assertIsNone(r.header("X-Plan"))
        # the inherited gate works and nothing was counted above
        r = ask(self.port)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Usage-Remaining"), "1")
        lines = ng.log_lines("ug.log", 9)
        self.assertEqual(lines[:8], ["[-|-|-|-]"] * 8)
        self.assertTrue(lines[8].endswith("|free|ALLOWED|1]"), lines)


class Statuses(GateTestCase):

    def test_quota_and_rate_status_and_upgrade_url(self):
        self.nginx(limits_http(
            "    usage_gate_plan  free  month=1 minute=off;\n"
            "    usage_gate_plan  fast  month=off minute=1;",
            "    usage_gate_quota_status 403;\n"
            "    usage_gate_rate_status 503;\n"
            "    usage_gate_upgrade_url https://example.com/upgrade?from=gate;")
            + server(gated("/ask")))
        self.assertEqual(ask(self.port).status, 200)
        r = ask(self.port)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.json["detail"],
                         "Monthly quota reached for plan 'free'. "
                         "Please upgrade.")
        self.assertEqual(r.json["upgrade_url"],
                         "https://example.com/upgrade?from=gate")
        self.assertIsNotNone(r.header("Retry-After"))
        f = user("f1", "fast")
        self.assertEqual(ask(self.port, f).status, 200)
        r = ask(self.port, f)
        self.assertEqual(r.status, 503, r)
        self.assertTrue(r.json["detail"].startswith("Rate limit reached"))
        self.assertIsNotNone(r.header("Retry-After"))

    def test_error_page_402_custom_page(self):
        self.nginx(limits_http(
            "    usage_gate_plan  free  month=1 minute=off;")
            + server(gated("/ask", extra="error_page 402 /upgrade.html;")
                     + """
        location = /upgrade.html {
            internal;
            default_type text/html;
            return 200 "<p>Upgrade to Pro to keep asking.</p>";
        }
"""))
        self.assertEqual(ask(self.port).status, 200)
        r = ask(self.port)
        self.assertEqual(r.status, 402, r)
        self.assertEqual(r.body, b"<p>Upgrade to Pro to keep asking.</p>")
        self.assertTrue((r.header("Content-Type") or "")
                        .startswith("text/html"), r)


class DryRun(GateTestCase):
    # checks log lines in request order: one worker writes them in order
    WORKERS = 1

    def test_dry_run_passes_and_reports(self):
        ng = self.nginx(limits_http(
            "    usage_gate_plan  free  month=2 minute=off;\n"
            "    usage_gate_plan  fast  month=off minute=2;",
            "    usage_gate_dry_run on;\n"
            "    log_format ug '$usage_gate_owner $usage_gate_result "
            "$usage_gate_month_used';")
            + server(gated("/ask", extra="access_log {{dir}}/ug.log ug;")))
        remaining = []
        for i in range(5):
            r = ask(self.port)
            self.assertEqual(r.status, 200, (i, r))
            remaining.append(r.header("X-Usage-Remaining"))
            self.assertEqual(r.header("RateLimit-Policy"),
                             '"month";q=2;w=2592000')
        self.assertEqual(remaining, ["1", "0", "0", "0", "0"])
        f = user("f1", "fast")
        for i in range(4):
            r = ask(self.port, f)
            self.assertEqual(r.status, 200, (i, r))
        lines = ng.log_lines("ug.log", 9)
        results = [l.split()[1] for l in lines]
        self.assertEqual(results, ["ALLOWED", "ALLOWED"]
                         + ["DRY_RUN_QUOTA"] * 3
                         + ["ALLOWED", "ALLOWED"] + ["DRY_RUN_RATE"] * 2)
        # would-be denials are not counted: the month stays at the limit
        self.assertEqual([l.split()[2] for l in lines[:5]],
                         ["1", "2", "2", "2", "2"])
        log = ng.error_log()
        warns = [l for l in log.splitlines()
                 if "[warn]" in l and "dry run" in l]
        # a would-be denial is an event: each worker logs an owner's first
        # one of a cycle (quota) or of a minute (rate), not every request
        quota = [l for l in warns if "monthly quota reached" in l]
        rate = [l for l in warns if "per-minute cap reached" in l]
        self.assertTrue(1 <= len(quota) <= self.WORKERS, log)
        self.assertTrue(1 <= len(rate) <= self.WORKERS, log)

    def test_dry_run_off_by_default_and_per_location(self):
        self.nginx(limits_http(
            "    usage_gate_plan  free  month=1 minute=off;")
            + server(gated("/ask")
                     + gated("/try", extra="usage_gate_dry_run on;")))
        self.assertEqual(ask(self.port).status, 200)
        self.assertEqual(ask(self.port).status, 402)
        r = ask(self.port, path="/try")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Usage-Remaining"), "0")


if __name__ == "__main__":
    unittest.main()
