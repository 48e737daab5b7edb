"""The metrics endpoint: after a scripted mix of requests every
counter equals what was sent; the text is read with the Prometheus
client's own parser (not a regex), and ?format=json carries the same
numbers; the owners gauge, zone bytes and the state-file write counters.
"""

import json
import os
import re
import shutil
import time
import unittest

from prometheus_client.parser import text_string_to_metric_families

from harness import (ASK_BODY, GateTestCase, ask, gated, hammer, request,
                     server, user, wait_for, worker_mkdir)

RESULTS = ("allowed", "quota", "rate", "dry_run_quota", "dry_run_rate",
           "bypass", "unauthorized", "bad_request", "unavailable",
           "preflight", "overflow", "overflow_rate", "full")
PLANS = ("free", "pro", "team", "none")
MB = 1048576

GATE = """
    usage_gate_zone  usage:1m {state};
    usage_gate_zone  other:64k;
    usage_gate_plan  free  month=3    minute=off;
    usage_gate_plan  pro   month=off  minute=2;
    usage_gate_plan  team  month=off  minute=off;
    usage_gate_default_plan  free;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt  "sentientiq";
"""

LOCATIONS = gated("/ask") + gated(
    "/dry", extra="usage_gate_dry_run on;") + gated(
    "/pulse", "usage plans=free") + gated(
    "/strict", extra="usage_gate_identity header;") + gated(
    "/other", "other") + """
        location = /usage_gate/metrics { usage_gate_metrics; }
"""


def http(state: str = "") -> str:
    return GATE.replace("{state}", state) + server(LOCATIONS)


def parse(text: str):
    """{(sample name, sorted labels): value} and {family name: type}, from
    the Prometheus client's parser."""
    samples, types = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in samples:
                raise AssertionError(f"duplicate series {key}")
            samples[key] = s.value
    return samples, types


def req_key(zone, plan, result):
    return ("usage_gate_requests_total",
            (("plan", plan), ("result", result), ("zone", zone)))


def zone_key(name, zone):
    return (name, (("zone", zone),))


class MetricsCase(GateTestCase):

    def metrics(self):
        r = request(self.port, "/usage_gate/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("Content-Type").startswith(
            "text/plain; version=0.0.4"), r.header("Content-Type"))
        return parse(r.body.decode())

    def metrics_json(self):
        r = request(self.port, "/usage_gate/metrics?format=json")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("Content-Type").startswith(
            "application/json"), r.header("Content-Type"))
        data = json.loads(r.body.decode())     # strict: must parse
        return {z["zone"]: z for z in data["zones"]}

    def send(self, n, path, headers=None, source="127.0.0.1"):
        """n asks to path; their statuses."""
        statuses = []
        for _ in range(n):
            r = ask(self.port, headers, source=source, path=path)
            statuses.append(r.status)
        return statuses


class Counters(MetricsCase):

    def run_mix(self):
        """The script; returns what was sent, per (zone, plan, result)."""
        sent = {}

        def add(zone, plan, result, n):
            k = (zone, plan, result)
            sent[k] = sent.get(k, 0) + n

        # enforcing: free runs out of its month, pro over its minute cap
        self.assertEqual(self.send(5, "/ask", user("f1")),
                         [200, 200, 200, 402, 402])
        add("usage", "free", "allowed", 3)
        add("usage", "free", "quota", 2)
        self.assertEqual(self.send(5, "/ask", user("p1", "pro")),
                         [200, 200, 429, 429, 429])
        add("usage", "pro", "allowed", 2)
        add("usage", "pro", "rate", 3)
        self.assertEqual(self.send(4, "/ask", user("t1", "team")),
                         [200] * 4)
        add("usage", "team", "allowed", 4)
        # an untrusted peer: anonymous, on the default plan
        self.assertEqual(self.send(1, "/ask", user("x", "team"),
                                   source="127.0.0.2"), [200])
        add("usage", "free", "allowed", 1)

        # dry run: would-be denials pass, and are counted as such
        self.assertEqual(self.send(4, "/dry", user("f2")), [200] * 4)
        add("usage", "free", "allowed", 3)
        add("usage", "free", "dry_run_quota", 1)
        self.assertEqual(self.send(4, "/dry", user("p2", "pro")), [200] * 4)
        add("usage", "pro", "allowed", 2)
        add("usage", "pro", "dry_run_rate", 2)

        # plans=free: other plans pass uncounted
        self.assertEqual(self.send(2, "/pulse", user("p3", "pro")),
                         [200] * 2)
        add("usage", "pro", "bypass", 2)
        self.assertEqual(self.send(3, "/pulse", user("t2", "team")),
                         [200] * 3)
        add("usage", "team", "bypass", 3)
        self.assertEqual(self.send(1, "/pulse", user("f3")), [200])
        add("usage", "free", "allowed", 1)

        # 400: a trusted proxy's malformed identity
        self.assertEqual(self.send(2, "/ask", [("X-User-Id", "bad id")]),
                         [400, 400])
        self.assertEqual(self.send(1, "/ask", [("X-User-Id", "a"),
                                               ("X-User-Id", "b")]), [400])
        self.assertEqual(self.send(1, "/ask", [("X-User-Id", "f1"),
                                               ("X-Plan", "x" * 129)]),
                         [400])
        add("usage", "none", "bad_request", 4)

        # 401: no identity source matches
        self.assertEqual(self.send(2, "/strict", user("u", "pro"),
                                   source="127.0.0.2"), [401, 401])
        add("usage", "none", "unauthorized", 2)

        # the other zone counts its own
        self.assertEqual(self.send(2, "/other", user("f1")), [200, 200])
        add("other", "free", "allowed", 2)
        return sent

    def test_every_counter_equals_what_was_sent(self):
        self.nginx(http())
        sent = self.run_mix()
        samples, types = self.metrics()

        self.assertEqual(types["usage_gate_requests"], "counter")
        for zone in ("usage", "other"):
            for plan in PLANS:
                for result in RESULTS:
                    k = req_key(zone, plan, result)
                    self.assertIn(k, samples)
                    self.assertEqual(samples[k],
                                     sent.get((zone, plan, result), 0),
                                     (zone, plan, result))
        self.assertEqual(
            sum(v for k, v in samples.items()
                if k[0] == "usage_gate_requests_total"),
            sum(sent.values()), "series beyond the plans and results")

        # owners: f1 p1 t1 anon f2 p2 f3 (bypassed and refused ones are not)
        self.assertEqual(types["usage_gate_owners"], "gauge")
        self.assertEqual(samples[zone_key("usage_gate_owners", "usage")], 7)
        self.assertEqual(samples[zone_key("usage_gate_owners", "other")], 1)
        for zone in ("usage", "other"):
            self.assertEqual(
                samples[zone_key("usage_gate_evictions_total", zone)], 0)
            self.assertEqual(
                samples[zone_key("usage_gate_fail_open_total", zone)], 0)
        # no state file: no state series
        self.assertFalse([k for k in samples if "state" in k[0]],
                         [k for k in samples if "state" in k[0]])

    def test_json_has_the_same_numbers(self):
        self.nginx(http())
        sent = self.run_mix()
        samples, _ = self.metrics()
        zones = self.metrics_json()
        self.assertEqual(sorted(zones), ["other", "usage"])
        for name, z in zones.items():
            self.assertEqual(sorted(z["requests"]), sorted(PLANS))
            for plan in PLANS:
                self.assertEqual(sorted(z["requests"][plan]),
                                 sorted(RESULTS))
                for result in RESULTS:
                    self.assertEqual(z["requests"][plan][result],
                                     samples[req_key(name, plan, result)],
                                     (name, plan, result))
                    self.assertEqual(z["requests"][plan][result],
                                     sent.get((name, plan, result), 0))
            for field, metric in (("owners", "usage_gate_owners"),
                                  ("evictions", "usage_gate_evictions_total"),
                                  ("fail_open", "usage_gate_fail_open_total")):
                self.assertEqual(z[field], samples[zone_key(metric, name)],
                                 (name, field))
            zb = z["zone_bytes"]
            self.assertEqual(zb["size"], samples[zone_key(
                "usage_gate_zone_size_bytes", name)])
            self.assertEqual(zb["used"], samples[zone_key(
                "usage_gate_zone_used_bytes", name)])
            self.assertEqual(zb["free"], samples[zone_key(
                "usage_gate_zone_free_bytes", name)])
            self.assertIsNone(z["state_file"])
            self.assertIsNone(z["dynamodb"])

    def test_zone_bytes_and_owners(self):
        self.nginx(http())
        self.send(1, "/ask", user("first"))
        samples, types = self.metrics()
        size = samples[zone_key("usage_gate_zone_size_bytes", "usage")]
        used = samples[zone_key("usage_gate_zone_used_bytes", "usage")]
        free = samples[zone_key("usage_gate_zone_free_bytes", "usage")]
        self.assertEqual(types["usage_gate_zone_used_bytes"], "gauge")
        self.assertEqual(size, MB)
        self.assertEqual(used + free, size)
        self.assertTrue(0 < used < size, used)
        self.assertEqual(
            samples[zone_key("usage_gate_zone_size_bytes", "other")],
            64 * 1024)

        n = 200
        for i in range(n):
            r = ask(self.port, user(f"owner-{i:04d}", "team"))
            self.assertEqual(r.status, 200, r)
        samples, _ = self.metrics()
        self.assertEqual(samples[zone_key("usage_gate_owners", "usage")],
                         n + 1)
        grown = samples[zone_key("usage_gate_zone_used_bytes", "usage")] \
            - used
        # one 104-byte slot of the owner index for each short id (docs)
        self.assertEqual(grown, n * 104, f"{n} owners took {grown} bytes")
        self.assertEqual(
            samples[zone_key("usage_gate_zone_used_bytes", "usage")]
            + samples[zone_key("usage_gate_zone_free_bytes", "usage")], MB)

    def test_post_is_405_and_counts_nothing(self):
        self.nginx(http())
        self.send(1, "/ask", user("f1"))
        for method in ("POST", "PUT", "DELETE"):
            r = request(self.port, "/usage_gate/metrics", method, body=b"{}")
            self.assertEqual(r.status, 405, (method, r))
            self.assertNotIn(b"usage_gate_requests_total", r.body)
        samples, _ = self.metrics()
        self.assertEqual(samples[req_key("usage", "free", "allowed")], 1)

    def test_405_names_the_allowed_methods(self):
        """RFC 9110: a 405 carries Allow (as the admin API's do)."""
        self.nginx(http())
        r = request(self.port, "/usage_gate/metrics", "POST", body=b"{}")
        self.assertEqual(r.status, 405, r)
        allow = {m.strip() for m in (r.header("Allow") or "").split(",")}
        self.assertIn("GET", allow, r.headers)

    def test_head_and_explicit_prometheus_format(self):
        self.nginx(http())
        r = request(self.port, "/usage_gate/metrics?format=prometheus")
        self.assertEqual(r.status, 200, r)
        parse(r.body.decode())
        r = request(self.port, "/usage_gate/metrics", "HEAD")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"")


class Workers(MetricsCase):
    """Each worker counts in its own row of counters; a scrape sums the
    rows, so every request is counted once whichever worker served it,
    and the sums only grow across a reload that runs more workers than
    the zone has rows for."""

    def hammer(self, total: int, conns: int = 32):
        """total requests as plan team, over conns keep-alive connections
        at once (one owner each); returns {status: count}."""
        statuses, errors = hammer(
            self.port, total, conns,
            lambda n: user(f"w{n}", "team")
            + [("Content-Type", "application/json")],
            json.dumps(ASK_BODY).encode())
        self.assertEqual(errors, [])
        return statuses

    def test_every_worker_counted_once_across_a_reload(self):
        http_text = GATE.replace("{state}", "") + """
    keepalive_requests 10000;
    log_format pid '$pid';
    access_log {{dir}}/pid.log pid;
    server {
        # reuseport: the kernel spreads the connections over the workers
        listen 127.0.0.1:{{port}} reuseport;
""" + LOCATIONS + """
    }
"""
        ng = self.nginx(http_text, workers=2)
        key = req_key("usage", "team", "allowed")
        self.assertEqual(self.hammer(600), {200: 600})
        pids = {l.split()[0] for l in ng.log_lines("pid.log", 600)}
        self.assertEqual(pids, {str(p) for p in ng.workers_now()})
        samples, _ = self.metrics()
        self.assertEqual(samples[key], 600)

        # three workers on counters made for two: two share a row
        ng.workers = 3
        ng.reload(http_text)
        samples, _ = self.metrics()
        self.assertEqual(samples[key], 600)
        self.assertEqual(self.hammer(900, conns=48), {200: 900})
        samples, _ = self.metrics()
        self.assertEqual(samples[key], 1500)
        self.assertEqual(samples[req_key("usage", "none", "allowed")], 0)


class StateCounters(MetricsCase):

    def test_state_write_counters(self):
        ng = self.make_nginx(http(
            "state={{dir}}/st/usage_gate.state state_interval=1s"))
        sub = os.path.join(ng.dir, "st")
        worker_mkdir(sub)
        started = time.time()
        ng.start()
        self.send(2, "/ask", user("f1"))

        def writes():
            s, _ = self.metrics()
            return s if s[zone_key("usage_gate_state_writes_total",
                                   "usage")] >= 2 else None
        samples = wait_for(writes, 6, 0.2, "two state file writes")
        _, types = self.metrics()
        self.assertEqual(types["usage_gate_state_writes"], "counter")
        self.assertEqual(types["usage_gate_state_write_failures"], "counter")
        self.assertEqual(
            types["usage_gate_state_last_write_timestamp_seconds"], "gauge")
        self.assertEqual(samples[zone_key(
            "usage_gate_state_write_failures_total", "usage")], 0)
        last = samples[zone_key(
            "usage_gate_state_last_write_timestamp_seconds", "usage")]
        self.assertTrue(int(started) <= last <= time.time() + 1,
                        (started, last))
        self.assertTrue(os.path.exists(os.path.join(sub,
                                                    "usage_gate.state")))
        # the zone without a state file has no state series
        self.assertFalse([k for k in samples
                          if "state" in k[0] and ("zone", "other") in k[1]])

        z = self.metrics_json()["usage"]["state_file"]
        self.assertIsNotNone(z)
        self.assertGreaterEqual(z["writes"], 2)
        self.assertEqual(z["failures"], 0)
        self.assertGreaterEqual(z["last_write"], last)
        self.assertIsNone(self.metrics_json()["other"]["state_file"])


    def start_with_state_dir(self):
        ng = self.make_nginx(http(
            "state={{dir}}/st/usage_gate.state state_interval=1s"))
        sub = os.path.join(ng.dir, "st")
        worker_mkdir(sub)
        ng.start()
        self.send(2, "/ask", user("f1"))
        wait_for(lambda: self.metrics()[0][zone_key(
            "usage_gate_state_writes_total", "usage")] >= 1, 6, 0.2,
            "a state file write")
        return ng, sub

    def wait_failure(self):
        def failures():
            s, _ = self.metrics()
            return s if s[zone_key("usage_gate_state_write_failures_total",
                                   "usage")] >= 1 else None
        return wait_for(failures, 6, 0.2, "a failed state file write")

    def test_failed_writes_are_counted_and_logged(self):
        ng, sub = self.start_with_state_dir()
        # the directory goes away: writes fail, and are counted as such
        shutil.rmtree(sub)
        samples = self.wait_failure()
        time.sleep(0.3)
        crashed = [ln for ln in ng.error_log().splitlines()
                   if "exited on signal" in ln]
        self.assertEqual(crashed, [], "a worker crashed on a failed state "
                         "file write")
        lines = [ln for ln in ng.error_log().splitlines()
                 if "cannot write state file" in ln]
        self.assertTrue(lines, "no error log line for the failed write:\n"
                        + ng.error_log())
        self.assertIn("[error]", lines[0])
        writes_then = samples[zone_key("usage_gate_state_writes_total",
                                       "usage")]
        last_then = samples[zone_key(
            "usage_gate_state_last_write_timestamp_seconds", "usage")]
        time.sleep(1.5)
        samples, _ = self.metrics()
        self.assertEqual(samples[zone_key("usage_gate_state_writes_total",
                                          "usage")], writes_then)
        self.assertEqual(samples[zone_key(
            "usage_gate_state_last_write_timestamp_seconds", "usage")],
            last_then)
        self.assertGreaterEqual(samples[zone_key(
            "usage_gate_state_write_failures_total", "usage")], 2)
        z = self.metrics_json()["usage"]["state_file"]
        self.assertGreaterEqual(z["failures"], 2)
        self.assertEqual(z["writes"], writes_then)

    def test_writes_resume_after_a_failure(self):
        ng, sub = self.start_with_state_dir()
        shutil.rmtree(sub)
        samples = self.wait_failure()
        writes_then = samples[zone_key("usage_gate_state_writes_total",
                                       "usage")]
        worker_mkdir(sub)
        wait_for(lambda: self.metrics()[0][zone_key(
            "usage_gate_state_writes_total", "usage")] > writes_then, 6,
            0.2, "state file writes to resume once the directory is back")
        self.assertTrue(os.path.exists(os.path.join(sub,
                                                    "usage_gate.state")))
        # the recovery is told once, by whichever worker wrote first
        again = wait_for(lambda: re.findall(
            r"state file .* written again after \d+ failures",
            ng.error_log()), 5, what="the line saying writes resumed")
        time.sleep(1.5)
        self.assertEqual(len(re.findall(r"written again",
                                        ng.error_log())), 1, again)


if __name__ == "__main__":
    unittest.main()
