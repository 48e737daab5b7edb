"""Billing semantics on a zone that keeps its counts in DynamoDB, in each
mode (strict, async, auto): refunds reach the table, the overage band is
the conditional write's ceiling, an anchored cycle is counted in the item
of the month it starts in, and threshold notifications go once.

dynalite stands in for DynamoDB (see test_dynamodb.py); the table is read
back with GetItem after a sync.
"""

import json
import time

from echo import EchoServer
from harness import ask, server, wait_for
from test_dynamodb import CREDS, TABLE, DynamoDBCase, this_month

HTTP = """
    usage_gate_zone  usage:1m;
    usage_gate_plan  free     month=20  minute=off;
    usage_gate_plan  metered  month=10  overage=5  minute=off;
    usage_gate_plan  open     month=3   overage=unlimited  minute=off;
    usage_gate_plan  small    month=4   minute=off;
    usage_gate_plan  two      month=2   minute=off;
    usage_gate_plan  eight    month=8   minute=off;
    usage_gate_default_plan  free;
    usage_gate_identity  header;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_cycle_anchor  $http_x_cycle_anchor;
    usage_gate_notify  http://{{hook}}/hook thresholds=50,100;
    usage_gate_dynamodb  zone=usage table=%s region=us-east-1
                         endpoint={{endpoint}} mode={{mode}} sync=200ms;
""" % TABLE + server("""
        location /ok/ {
            usage_gate usage;
            usage_gate_refund on;
            proxy_pass http://{{echo}};
        }
        location /fail/ {
            usage_gate usage;
            usage_gate_refund on;
            proxy_pass http://{{echo}}/status/500;
        }
""")


def remaining(r):
    return int(r.header("X-Usage-Remaining"))


def start_month_of(anchor_day_tomorrow: time.struct_time) -> str:
    """The month a cycle anchored on tomorrow's day started in: the
    month before tomorrow's."""
    y, m = anchor_day_tomorrow.tm_year, anchor_day_tomorrow.tm_mon - 1
    if m == 0:
        y, m = y - 1, 12
    return "%04d-%02d" % (y, m)


class BillingOnDynamoDB:
    """The tests; a subclass per mode sets MODE."""

    MODE = None

    # a refund lands in the log phase, just after the response is sent;
    # with one worker the next request cannot overtake it
    WORKERS = 1

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

    def start(self, http=HTTP):
        ng = self.nginx(http, main=CREDS,
                        vars={"echo": self.echo.addr,
                              "hook": self.hook.addr,
                              "endpoint": self.ddb.endpoint,
                              "mode": self.MODE})
        self.hook.take()
        return ng

    def test_refunded_failures_are_not_in_the_table(self):
        self.start()
        o = self.owner("refund")
        u = [("X-User-Id", o)]
        r = ask(self.port, u, path="/ok/x")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(remaining(r), 19)
        for _ in range(3):
            self.assertEqual(ask(self.port, u, path="/fail/x").status, 500)
        r = ask(self.port, u, path="/ok/x")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(remaining(r), 18)
        # the table counts the two 200s, once the sync has run
        self.assertTable(o, 2)
        r = ask(self.port, u, path="/ok/x")
        self.assertEqual(remaining(r), 17)
        self.assertTable(o, 3)

    def test_overage_band_is_the_ceiling(self):
        self.start()
        o = self.owner("over")
        u = [("X-User-Id", o), ("X-Plan", "metered")]
        flags = []
        for i in range(15):
            r = ask(self.port, u, path="/ok/x")
            self.assertEqual(r.status, 200, (i, r))
            flags.append(r.header("X-Usage-Overage"))
        self.assertEqual(flags, [None] * 10 + ["1", "2", "3", "4", "5"])
        seen = self.echo.take()
        self.assertEqual([s.get("X-Usage-Overage") for s in seen[-5:]],
                         ["1", "2", "3", "4", "5"])
        r = ask(self.port, u, path="/ok/x")
        self.assertEqual(r.status, 402, r)
        self.assertTable(o, 15)

    def test_unlimited_overage_is_flagged_and_synced(self):
        self.start()
        o = self.owner("open")
        u = [("X-User-Id", o), ("X-Plan", "open")]
        for i in range(6):
            r = ask(self.port, u, path="/ok/x")
            self.assertEqual(r.status, 200, (i, r))
        self.assertEqual(r.header("X-Usage-Overage"), "3")
        self.assertIsNone(r.header("X-Usage-Remaining"))
        self.assertTable(o, 6)

    def test_anchored_cycle_uses_its_start_month(self):
        self.start()
        o = self.owner("anchor")
        tomorrow = time.gmtime(time.time() + 86400)
        anchor = time.strftime("2025-01-%dT00:00:00Z", tomorrow)
        u = [("X-User-Id", o), ("X-Plan", "two"),
             ("X-Cycle-Anchor", anchor)]
        for _ in range(2):
            self.assertEqual(ask(self.port, u, path="/ok/x").status, 200)
        r = ask(self.port, u, path="/ok/x")
        self.assertEqual(r.status, 402, r)
        self.assertLess(r.json["reset_seconds"], 86400)
        self.assertLess(int(r.header("Retry-After")), 86400)
        start = start_month_of(tomorrow) if tomorrow.tm_mday != 1 \
            else this_month()
        wait_for(lambda: self.ddb.count(o, start) == 2, 8,
                 what=f"count 2 under {start}")
        if start != this_month():
            self.assertIsNone(self.ddb.item(o))

    def test_thresholds_once_across_a_reload(self):
        ng = self.start()
        o = self.owner("notify")
        u = [("X-User-Id", o), ("X-Plan", "small")]
        statuses = [ask(self.port, u, path="/ok/x").status
                    for _ in range(6)]
        self.assertEqual(statuses, [200] * 4 + [402] * 2)
        wait_for(lambda: len(self.hook.requests) >= 2, 15,
                 what="2 webhook deliveries")
        ng.reload()
        statuses = [ask(self.port, u, path="/ok/x").status
                    for _ in range(3)]
        self.assertEqual(statuses, [402] * 3)
        time.sleep(2)
        got = [json.loads(d.body) for d in self.hook.requests]
        self.assertEqual(sorted((b["threshold"], b["used"]) for b in got),
                         [(50, 2), (100, 4)], got)
        for b in got:
            self.assertEqual(b["owner"], o)
            self.assertEqual(b["limit"], 4)
        self.assertTable(o, 4)

    def test_a_threshold_passed_between_calls_is_still_sent(self):
        # two nodes share the table; each one's count also moves with
        # what the other used (a sync's answer), so neither may see one
        # of its own calls cross 50 %: it is sent all the same, once by
        # each node at most
        self.start()
        self.start(HTTP.replace("{{port}}", "{{port2}}"))
        o = self.owner("fleet")
        u = [("X-User-Id", o), ("X-Plan", "eight")]
        for port in (self.port, self.port, self.port2, self.port2):
            self.assertEqual(ask(port, u, path="/ok/x").status, 200)
        time.sleep(1)
        for port in (self.port2, self.port):
            self.assertEqual(ask(port, u, path="/ok/x").status, 200)
        wait_for(lambda: self.hook.requests, 15, what="a webhook")
        time.sleep(2)
        got = [json.loads(d.body) for d in self.hook.requests]
        self.assertEqual({b["threshold"] for b in got}, {50}, got)
        self.assertLessEqual(len(got), 2, got)
        for b in got:
            self.assertEqual(b["owner"], o)
            self.assertGreaterEqual(b["used"], 4)
            self.assertEqual(b["limit"], 8)


class Strict(BillingOnDynamoDB, DynamoDBCase):
    MODE = "strict"


class Async(BillingOnDynamoDB, DynamoDBCase):
    MODE = "async"


class Auto(BillingOnDynamoDB, DynamoDBCase):
    MODE = "auto"
