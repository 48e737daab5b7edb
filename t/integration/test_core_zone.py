"""The shared zone: exact counts under concurrency across workers,
counts kept across reloads, and the calendar-month rollover (under faketime).
"""

import calendar
import json
import time
import unittest

from harness import (ASK_BODY, GATE_HTTP, GateTestCase, ask, gated, hammer,
                     port_open, request, server, user, wait_for)


class Concurrency(GateTestCase):

    def test_64_keepalive_connections_2_workers_exactly_the_limit(self):
        ng = self.nginx("""
    usage_gate_zone  usage:1m;
    usage_gate_plan  bulk  month=1000 minute=off;
    usage_gate_default_plan  bulk;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt  "sentientiq";
    keepalive_requests 10000;
    log_format pid '$pid $status';
    access_log {{dir}}/pid.log pid;
    server {
        # reuseport: the kernel spreads the connections over both workers
        listen 127.0.0.1:{{port}} reuseport;
""" + gated("/ask") + """
    }
""", workers=2)
        self.assertEqual(len(ng.workers_now()), 2)
        total = 1300
        conns = 64
        headers = [("X-User-Id", "hammer"), ("Content-Type",
                                              "application/json")]
        # every connection open before the first request: all 64 race
        statuses, errors = hammer(self.port, total, conns, headers,
                                  json.dumps(ASK_BODY).encode(),
                                  together=True)
        self.assertEqual(errors, [])
        self.assertEqual(statuses, {200: 1000, 402: 300})
        # both workers served: the count is shared, not per process
        lines = ng.log_lines("pid.log", total)
        pids = {l.split()[0] for l in lines}
        self.assertEqual(pids, {str(p) for p in ng.workers_now()})
        r = ask(self.port, user("hammer"))
        self.assertEqual(r.status, 402, r)
        self.assertEqual(r.json["used"], 1000)
        self.assertEqual(r.json["limit"], 1000)


class Reload(GateTestCase):

    def test_counts_kept_across_reload(self):
        http = GATE_HTTP + server(gated("/ask"))
        ng = self.nginx(http)
        for i in range(5):
            self.assertEqual(ask(self.port).status, 200)
        self.assertEqual(ask(self.port, user("u1", "pro")).status, 200)
        ng.reload()
        r = ask(self.port)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Usage-Remaining"), "14")
        self.assertEqual(r.seen["x-usage-month-used"], "6")
        # a reload with a changed config (same zone) keeps counts too
        ng.reload(http + server("""
        location /health { usage_gate off; proxy_pass http://{{app}}; }
""", "{{port2}}"))
        r = ask(self.port)
        self.assertEqual(r.header("X-Usage-Remaining"), "13")
        r = ask(self.port, user("u1", "pro"))
        self.assertEqual(r.seen["x-usage-month-used"], "2")
        # and the quota holds across the reloads
        for i in range(13):
            self.assertEqual(ask(self.port).status, 200, i)
        self.assertEqual(ask(self.port).status, 402)
        ng.reload()
        self.assertEqual(ask(self.port).status, 402)

    def test_graceful_quit(self):
        ng = self.nginx(GATE_HTTP + server(gated("/ask")))
        self.assertEqual(ask(self.port).status, 200)
        proc = ng.proc
        ng.quit()
        self.assertEqual(proc.returncode, 0, ng.error_log())
        self.assertFalse(port_open(self.port), "still listening after quit")


class MonthRollover(GateTestCase):
    """nginx runs on a clock that starts 10 s before February 2027."""

    FAKE = "@2027-01-31 23:59:50"

    def test_quota_resets_at_midnight_utc_on_the_1st(self):
        started = time.monotonic()
        ng = self.nginx("""
    usage_gate_zone  usage:1m;
    usage_gate_plan  free  month=3 minute=off;
    usage_gate_default_plan  free;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt  "sentientiq";
    log_format t '$time_iso8601 $status';
""" + server(gated("/ask", extra="access_log {{dir}}/t.log t;")),
            faketime=self.FAKE)
        for i in range(3):
            r = ask(self.port)
            self.assertEqual(r.status, 200, (i, r))
        r = ask(self.port)
        self.assertEqual(r.status, 402, r)
        retry = int(r.header("Retry-After"))
        elapsed = time.monotonic() - started
        self.assertTrue(10 - elapsed - 1.5 <= retry <= 10,
                        f"Retry-After {retry} after {elapsed:.1f}s")
        self.assertEqual(r.json["reset_seconds"], retry)
        lines = ng.log_lines("t.log", 4)
        self.assertTrue(lines[0].startswith("2027-01-31T23:59:5"),
                        f"faketime did not apply: {lines[0]}")

        # still January: still 402
        time.sleep(max(0, retry - 2.5))
        self.assertEqual(ask(self.port).status, 402)
        # then February
        time.sleep(3)
        r = ask(self.port)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Usage-Remaining"), "2")
        feb = calendar.timegm((2027, 3, 1, 0, 0, 0)) - \
            calendar.timegm((2027, 2, 1, 0, 0, 0))
        self.assertEqual(feb, 28 * 86400)
        t = int(r.header("RateLimit").rsplit("t=", 1)[1])
        self.assertTrue(feb - 10 <= t <= feb, t)
        lines = ng.log_lines("t.log", 6)
        self.assertTrue(lines[-1].startswith("2027-02-01T00:00:0"),
                        lines[-1])


ZONE_FULL_ALERT = r"\[alert\].*\bfull\b"

SMALL_ZONE_HTTP = """
    usage_gate_zone  usage:32k;
    usage_gate_plan  free  month=2 minute=off;
    usage_gate_default_plan  free;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt  "sentientiq";
"""


def flood(port, prefix, n, times=1):
    """n distinct users, `times` requests each; returns the statuses."""
    statuses = {}
    last = {}
    for i in range(n):
        for _ in range(times):
            r = ask(port, user(f"{prefix}{i}"))
            statuses[r.status] = statuses.get(r.status, 0) + 1
        last[i] = r
    return statuses, last


class ZoneFull(GateTestCase):
    """A zone too small for its owners: fail open, say so at alert (at most
    once a second per worker), never drop an owner with counts this month,
    and make room from owners of past months."""

    def test_full_zone_fails_open_and_keeps_current_owners(self):
        ng = self.nginx(SMALL_ZONE_HTTP + server(gated("/ask")),
                        expect_log=[ZONE_FULL_ALERT])
        self.assertEqual(ask(self.port, user("early")).status, 200)
        self.assertEqual(ask(self.port, user("early")).status, 200)
        self.assertEqual(ask(self.port, user("early")).status, 402)
        self.assertEqual(ask(self.port, user("second")).status, 200)
        started = time.monotonic()
        statuses, _ = flood(self.port, "u", 600)
        took = time.monotonic() - started
        self.assertEqual(statuses, {200: 600}, "a full zone must fail open")
        alerts = [l for l in ng.error_log().splitlines()
                  if "[alert]" in l]
        self.assertGreaterEqual(len(alerts), 1, "no alert for a full zone")
        self.assertTrue(all("full" in l for l in alerts), alerts)
        self.assertLessEqual(len(alerts), 2 * (int(took) + 2),
                             f"{len(alerts)} alerts in {took:.1f}s")
        # owners with counts this month were not dropped to make room
        r = ask(self.port, user("early"))
        self.assertEqual(r.status, 402, r)
        self.assertEqual(r.json["used"], 2)
        r = ask(self.port, user("second"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Usage-Remaining"), "0")
        self.assertEqual(ask(self.port, user("second")).status, 402)

    def test_owners_of_past_months_make_room(self):
        ng = self.nginx(SMALL_ZONE_HTTP + server(
            gated("/ask") + """
        location = /now { return 200 "$time_iso8601"; }
"""), expect_log=[ZONE_FULL_ALERT], faketime="@2027-01-31 23:59:45")
        statuses, _ = flood(self.port, "jan", 400)
        self.assertEqual(statuses, {200: 400})
        self.assertTrue(any("[alert]" in l for l in
                            ng.error_log().splitlines()),
                        "the January owners did not fill the zone")
        now = request(self.port, "/now").body.decode()
        self.assertTrue(now.startswith("2027-01-31T23:59:"), now)
        wait_for(lambda: request(self.port, "/now").body.startswith(
            b"2027-02-01T"), 30, interval=0.5, what="February")
        # January's owners are stale now: February's are counted again
        statuses, last = flood(self.port, "feb", 100, times=2)
        self.assertEqual(statuses, {200: 200})
        uncounted = [i for i, r in last.items()
                     if r.header("X-Usage-Remaining") != "0"]
        self.assertEqual(uncounted, [], "owners not counted in February")
        self.assertEqual(ask(self.port, user("feb7")).status, 402)


if __name__ == "__main__":
    unittest.main()
