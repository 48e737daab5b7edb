"""The monitoring assets in docs/monitoring/: the Prometheus rules pass
`promtool check rules` and their own `promtool test rules`, and every
metric (and every `result` value) the rules and the Grafana dashboard query
is one a live nginx exports.  The nginx has a zone with a state file that
syncs to DynamoDB (dynalite) and a zone whose DynamoDB endpoint is down, so
that the DynamoDB series, errors included, are in the scrape.
"""

import json
import os
import re
import subprocess
import time
import unittest

import yaml
from prometheus_client.parser import text_string_to_metric_families

from harness import (DOCS, GateTestCase, ask, free_port, request, server,
                     user, wait_for)
from test_dynamodb import CREDS, TABLE, Dynalite

MONITORING = os.path.join(DOCS, "monitoring")
RULES = os.path.join(MONITORING, "usage-gate.rules.yml")
RULES_TEST = os.path.join(MONITORING, "usage-gate.rules.test.yml")
DASHBOARD = os.path.join(MONITORING, "usage-gate-dashboard.json")
PROMTOOL = "/usr/bin/promtool"

METRIC_RE = re.compile(r"\busage_gate_[a-z_]+")
RESULT_RE = re.compile(r'\bresult\s*=~?\s*"([^"]*)"')

ALERTS = {"UsageGateQuotaDenialSpike", "UsageGateFailOpen",
          "UsageGateZoneNearlyFull", "UsageGateStateWriteFailures",
          "UsageGateStateFileStale", "UsageGateDynamoDBBacklogGrowing",
          "UsageGateDynamoDBSyncStale", "UsageGateDynamoDBErrors"}


def rule_exprs():
    with open(RULES) as f:
        doc = yaml.safe_load(f)
    return {r["alert"]: r["expr"] for g in doc["groups"] for r in g["rules"]}


def dashboard_exprs():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append((p["title"], t["expr"]))
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            out.append((f"variable {v['name']}", v["query"]["query"]))
    return out


class Promtool(unittest.TestCase):

    def promtool(self, *args):
        p = subprocess.run([PROMTOOL, *args], capture_output=True,
                           text=True, cwd=MONITORING, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout

    def test_rules_pass_promtool_check(self):
        out = self.promtool("check", "rules", RULES)
        self.assertIn(f"SUCCESS: {len(ALERTS)} rules found", out)

    def test_rules_pass_their_unit_tests(self):
        self.promtool("test", "rules", RULES_TEST)

    def test_every_alert_the_operator_needs_is_there(self):
        self.assertEqual(set(rule_exprs()), ALERTS)


class LiveScrape(GateTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ddb = Dynalite().start()
        cls.ddb.create_table()

    @classmethod
    def tearDownClass(cls):
        cls.ddb.cleanup()
        super().tearDownClass()

    def scrape(self, port):
        r = request(port, "/usage_gate/metrics")
        self.assertEqual(r.status, 200, r)
        names, results = set(), set()
        for fam in text_string_to_metric_families(r.body.decode()):
            for s in fam.samples:
                names.add(s.name)
                if "result" in s.labels:
                    results.add(s.labels["result"])
        return names, results

    def test_every_queried_metric_is_exported(self):
        dead = free_port()
        http = f"""
    usage_gate_zone  usage:1m  state={{{{dir}}}}/usage.state
                     state_interval=1s;
    usage_gate_zone  unreachable:1m;
    usage_gate_plan  free  month=2  minute=off;
    usage_gate_default_plan  free;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt  "sentientiq";
    usage_gate_dynamodb  zone=usage table={TABLE} region=us-east-1
                         endpoint={self.ddb.endpoint} mode=async sync=200ms;
    usage_gate_dynamodb  zone=unreachable table={TABLE} region=us-east-1
                         endpoint=http://127.0.0.1:{dead}/ mode=async
                         sync=200ms timeout=300ms on_error=allow;
""" + server("""
        location /ask {
            usage_gate usage;
            proxy_pass http://{{app}}/ask;
        }
        location /down {
            usage_gate unreachable;
            proxy_pass http://{{app}}/ask;
        }
        location = /usage_gate/metrics { usage_gate_metrics; }
""")
        # the unreachable zone's units are lost at the test's stop
        ng = self.nginx(http, main=CREDS, expect_log=[
            r"units not written to DynamoDB are lost at this stop"])
        codes = [ask(self.port, user("mon")).status for _ in range(3)]
        self.assertEqual(codes, [200, 200, 402])
        self.assertEqual(ask(self.port, user("mon"), path="/down").status,
                         200)

        def complete():
            names, results = self.scrape(self.port)
            need = {"usage_gate_state_writes_total",
                    "usage_gate_dynamodb_errors_total",
                    "usage_gate_dynamodb_writes_total"}
            return (names, results) if need <= names else None
        names, results = wait_for(complete, 10, 0.2,
                                  "state and DynamoDB series in the scrape")
        self.assertEqual(self.ddb.count("mon"), 2)

        queried = []
        for alert, expr in rule_exprs().items():
            queried.append((f"alert {alert}", expr))
        queried += dashboard_exprs()
        self.assertGreater(len(queried), len(ALERTS))
        for where, expr in queried:
            with self.subTest(where=where):
                metrics = set(METRIC_RE.findall(expr))
                self.assertTrue(metrics, f"{where} queries no usage_gate "
                                f"metric: {expr}")
                self.assertEqual(metrics - names, set(),
                                 f"{where} queries metrics nginx does not "
                                 f"export: {expr}")
                for alt in RESULT_RE.findall(expr):
                    self.assertEqual(set(alt.split("|")) - results, set(),
                                     f"{where}: result values nginx does "
                                     f"not export: {expr}")
        ng.stop()


if __name__ == "__main__":
    unittest.main()
