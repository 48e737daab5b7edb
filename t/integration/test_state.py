"""The state file: counts that survive `nginx -s quit`, `-s stop`,
a reload that resizes the zone, a crash (kill -9), a corrupt file, and the
anonymous salt that goes with them; past months are not loaded back.

Every check is what a user sees: the status and X-Usage-Remaining of the
next /ask after nginx comes back.
"""

import os
import re
import subprocess
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import (NGINX, GateTestCase, ask, free_port, gated, request,
                     server, user, wait_for, worker_mkdir)

STATE = "usage_gate.state"
BAD_RE = re.compile(re.escape(STATE) + r"\.bad-(\d+)$")


def state_http(size: str = "1m", params: str = "state_interval=3600s",
               salt: bool = True, locations: str = "") -> str:
    """The seed's free plan (20 a month) and a big plan, one zone with a
    state file in the nginx temp dir.  The default interval is long, so
    that only the write at a worker's exit can have saved the counts."""
    salt_line = 'usage_gate_anon_salt  "sentientiq";' if salt else ""
    return f"""
    usage_gate_zone  usage:{size} state={{{{dir}}}}/{STATE} {params};
    usage_gate_plan  free  month=20      minute=30;
    usage_gate_plan  bulk  month=100000  minute=off;
    usage_gate_default_plan  free;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    {salt_line}
""" + server(gated("/ask") + """
        location = /usage_gate/metrics { usage_gate_metrics; }
""" + locations)


class StateCase(GateTestCase):

    def state_path(self, ng) -> str:
        return os.path.join(ng.dir, STATE)

    def asks(self, first: int, last: int, who=None, source="127.0.0.1"):
        """Asks number first..last (1-based) of a free-plan owner, each
        allowed with the remaining count that goes with it."""
        r = None
        for i in range(first, last + 1):
            r = ask(self.port, who, source=source)
            self.assertEqual(r.status, 200, (i, r))
            self.assertEqual(r.header("X-Usage-Remaining"), str(20 - i),
                             (i, r))
        return r

    def assert_quota_reached(self, who=None, source="127.0.0.1"):
        r = ask(self.port, who, source=source)
        self.assertEqual(r.status, 402, r)
        self.assertEqual(r.json["used"], 20, r)
        self.assertEqual(r.json["limit"], 20, r)
        return r

    def metrics_json(self) -> dict:
        r = request(self.port, "/usage_gate/metrics?format=json")
        self.assertEqual(r.status, 200, r)
        return r.json["zones"][0]


class Restart(StateCase):

    def restart_keeps_counts(self, how: str):
        ng = self.nginx(state_http())
        self.asks(1, 15, user("alice"))
        r = ask(self.port, user("bob", "bulk"))
        self.assertEqual(r.header("X-Usage-Remaining"), "99999")
        getattr(ng, how)()
        self.assertTrue(os.path.exists(self.state_path(ng)),
                        f"no state file after nginx -s {how}")

        ng.start()
        self.assertRegex(ng.error_log(),
                         r'usage_gate_zone "usage": loaded 2 owners from')
        self.asks(16, 20, user("alice"))
        self.assert_quota_reached(user("alice"))
        r = ask(self.port, user("bob", "bulk"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Usage-Remaining"), "99998")

    def test_quit_then_start_again(self):
        self.restart_keeps_counts("quit")

    def test_stop_then_start_again(self):
        self.restart_keeps_counts("stop")

    def test_quota_reached_stays_reached_across_restarts(self):
        ng = self.nginx(state_http())
        self.asks(1, 20, user("carol"))
        self.assert_quota_reached(user("carol"))
        for _ in range(2):
            ng.quit()
            ng.start()
            self.assert_quota_reached(user("carol"))


class ResizeReload(StateCase):

    def test_reload_that_changes_the_zone_size_keeps_counts(self):
        ng = self.nginx(state_http("1m"))
        self.asks(1, 15, user("alice"))
        self.asks(1, 3, user("dave"))
        self.assertEqual(self.metrics_json()["zone_bytes"]["size"], 1048576)

        # grow: 1m -> 2m, no restart in between
        ng.reload(state_http("2m"))
        z = self.metrics_json()
        self.assertEqual(z["zone_bytes"]["size"], 2 * 1048576,
                         "the reload did not resize the zone")
        self.assertEqual(z["owners"], 2)
        self.assertRegex(ng.error_log(),
                         r'usage_gate_zone "usage": 2 owners carried over')
        self.asks(16, 18, user("alice"))

        # and shrink back: 2m -> 1m
        ng.reload(state_http("1m"))
        self.assertEqual(self.metrics_json()["zone_bytes"]["size"], 1048576)
        self.asks(19, 20, user("alice"))
        self.assert_quota_reached(user("alice"))
        self.asks(4, 4, user("dave"))

        # what the resized zone holds is what the state file gets
        ng.quit()
        ng.start()
        self.assert_quota_reached(user("alice"))
        self.asks(5, 5, user("dave"))


class _Slow(BaseHTTPRequestHandler):
    """GET /<seconds>: answers after that many seconds."""

    def do_GET(self):
        time.sleep(float(self.path.rsplit("/", 1)[1]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class ResizeReloadWithTraffic(StateCase):

    def test_an_old_worker_exiting_late_does_not_overwrite_newer_counts(self):
        """A reload that resizes the zone while a slow request keeps an old
        worker busy, then `nginx -s quit`: the old worker exits last, with
        the old zone's counts; the file must still end up with the counts
        made after the reload."""
        slow = ThreadingHTTPServer(("127.0.0.1", free_port()), _Slow)
        threading.Thread(target=slow.serve_forever, daemon=True).start()
        self.addCleanup(slow.server_close)
        self.addCleanup(slow.shutdown)
        loc = """
        location /slow/ { proxy_pass http://127.0.0.1:{{slow}}; }
"""
        ng = self.nginx(state_http("1m", locations=loc),
                        vars={"slow": slow.server_address[1]})
        self.asks(1, 5, user("alice"))

        answer = []
        t = threading.Thread(target=lambda: answer.append(
            request(self.port, "/slow/3", timeout=30)))
        t.start()
        time.sleep(0.5)                  # in flight in an old worker

        old = set(ng.workers_now())
        ng.write_conf(state_http("2m", locations=loc))
        # the signaller loads the module too: it needs the same
        # environment (the ASAN runtime under make asan)
        p = subprocess.run([NGINX, "-p", ng.dir, "-c", "nginx.conf", "-e",
                            ng.error_log_path, "-s", "reload"],
                           capture_output=True, text=True, timeout=30,
                           env=ng._env())
        self.assertEqual(p.returncode, 0, p.stderr)
        wait_for(lambda: len(set(ng.workers_now()) - old) >= 2, 10,
                 what="the new workers")
        wait_for(lambda: self.metrics_json()["zone_bytes"]["size"]
                 == 2 * 1048576, 5, what="the resized zone answering")
        self.asks(6, 10, user("alice"))
        self.assertTrue(t.is_alive(), "the slow request ended too early")

        ng.quit(timeout=30)
        t.join(30)
        self.assertEqual(answer[0].status, 200, answer)

        ng.start()
        self.asks(11, 11, user("alice"))


class CorruptFile(StateCase):

    def real_file(self) -> bytes:
        """A genuine state file with alice at 5 (from another nginx)."""
        ng = self.nginx(state_http())
        self.asks(1, 5, user("alice"))
        ng.quit()
        with open(self.state_path(ng), "rb") as f:
            data = f.read()
        self.assertGreater(len(data), 40)
        return data

    def check_set_aside(self, bad: bytes, what: str):
        ng = self.make_nginx(state_http())
        path = self.state_path(ng)
        with open(path, "wb") as f:
            f.write(bad)
        t0 = int(time.time())
        ng.start()                       # starts: never a refusal
        t1 = int(time.time())

        asides = [f for f in os.listdir(ng.dir) if BAD_RE.match(f)]
        self.assertEqual(len(asides), 1, (what, os.listdir(ng.dir)))
        when = int(BAD_RE.match(asides[0]).group(1))
        self.assertTrue(t0 - 1 <= when <= t1 + 1, (what, when, t0, t1))
        with open(os.path.join(ng.dir, asides[0]), "rb") as f:
            self.assertEqual(f.read(), bad, f"{what}: the file set aside "
                             "is not the bad file as it was")
        self.assertFalse(os.path.exists(path),
                         f"{what}: the bad file is still at {path}")

        errors = [ln for ln in ng.error_log().splitlines()
                  if "[error]" in ln and asides[0] in ln and path in ln]
        self.assertEqual(len(errors), 1,
                         f"{what}: no [error] line naming {path} and "
                         f"{asides[0]}:\n{ng.error_log()}")

        # the gate starts empty, and works
        self.asks(1, 2, user("alice"))
        # and the next state file is a good one again
        ng.quit()
        ng.start()
        self.asks(3, 3, user("alice"))
        self.assertEqual(len([f for f in os.listdir(ng.dir)
                              if BAD_RE.match(f)]), 1)
        ng.quit()                        # the next case uses the port

    def test_random_bytes(self):
        self.check_set_aside(os.urandom(4096), "random bytes")

    def test_truncated_real_file(self):
        real = self.real_file()
        self.check_set_aside(real[:len(real) // 2], "truncated")
        self.check_set_aside(real[:-1], "last byte cut")

    def test_one_flipped_bit_in_a_real_file(self):
        real = bytearray(self.real_file())
        real[len(real) // 2] ^= 0x01
        self.check_set_aside(bytes(real), "flipped bit")

    def test_empty_and_foreign_files(self):
        self.check_set_aside(b"", "empty file")
        self.check_set_aside(b"# not a state file\nalice 5\n", "text file")


class Crash(StateCase):
    """kill -9 of the master and every worker: no exit write happens, so
    what comes back is what the periodic writes (every 1 s) saved."""

    def test_kill9_after_a_quiet_interval_loses_nothing(self):
        ng = self.nginx(state_http(params="state_interval=1s"))
        self.asks(1, 13, user("alice"))
        for i in range(37):
            self.assertEqual(ask(self.port, user("bob", "bulk")).status, 200)
        self.asks(1, 4, None)                 # anonymous, 127.0.0.1
        # more than one interval with nothing sent
        time.sleep(1.8)
        ng.kill9()

        ng.start()
        self.assertRegex(ng.error_log(),
                         r'usage_gate_zone "usage": loaded 3 owners from')
        self.asks(14, 20, user("alice"))
        self.assert_quota_reached(user("alice"))
        r = ask(self.port, user("bob", "bulk"))
        self.assertEqual(r.header("X-Usage-Remaining"), str(100000 - 38))
        self.asks(5, 5, None)

    def test_kill9_under_load_loses_at_most_one_interval(self):
        interval = 1.0
        ng = self.nginx(state_http(params="state_interval=1s"))
        done = []            # (time the 200 came back)
        stop = threading.Event()
        errors = []

        def load():
            while not stop.is_set():
                try:
                    r = ask(self.port, user("bob", "bulk"))
                except OSError:
                    return            # nginx is gone
                if r.status != 200:
                    errors.append(r)
                    return
                done.append(time.monotonic())

        t = threading.Thread(target=load)
        t.start()
        time.sleep(3.2)
        killed = time.monotonic()
        ng.kill9()
        stop.set()
        t.join(10)
        self.assertEqual(errors, [])
        sent = len(done)
        self.assertGreater(sent, 50, "too few requests to say anything")

        ng.start()
        r = ask(self.port, user("bob", "bulk"))
        self.assertEqual(r.status, 200, r)
        kept = 100000 - 1 - int(r.header("X-Usage-Remaining"))
        # every request answered more than one interval (and a margin for
        # the write itself) before the crash is in the file
        safe = sum(1 for x in done if x <= killed - interval - 0.5)
        self.assertTrue(safe <= kept <= sent + 1,
                        f"kept {kept} of {sent} answered; {safe} were "
                        f"answered more than {interval}s before the kill")

    def test_a_failed_write_does_not_stop_later_writes(self):
        """The state directory is gone for a moment (a failed write, as
        with a full disk); once it is back, the periodic writes go on and a
        crash still loses at most one interval."""
        ng = self.make_nginx(state_http(params="state_interval=1s").replace(
            "{{dir}}/" + STATE, "{{dir}}/st/" + STATE))
        sub = os.path.join(ng.dir, "st")
        worker_mkdir(sub)
        ng.start()
        self.asks(1, 5, user("alice"))
        time.sleep(1.6)
        os.rename(sub, sub + ".away")
        wait_for(lambda: "cannot write state file" in ng.error_log()
                 or "exited on signal" in ng.error_log(), 5, 0.1,
                 "a failed state file write")
        os.rename(sub + ".away", sub)
        self.asks(6, 12, user("alice"))
        time.sleep(2.5)
        ng.kill9()
        ng.start()
        self.asks(13, 13, user("alice"))


class AnonSalt(StateCase):

    def test_anon_owner_keeps_its_key_without_a_configured_salt(self):
        ng = self.nginx(state_http(salt=False))
        r = self.asks(1, 15, None)
        owner = r.seen["x-usage-owner"]
        self.assertRegex(owner, r"^anon:[0-9a-f]{24}$")
        ng.quit()
        with open(self.state_path(ng), "rb") as f:
            self.assertTrue(f.read())

        ng.start()
        r = self.asks(16, 20, None)
        self.assertEqual(r.seen["x-usage-owner"], owner,
                         "the anonymous owner got a new key after a "
                         "restart: the random salt was not kept")
        self.assert_quota_reached(None)
        # another address is another owner, on its own count
        r = ask(self.port, source="127.0.0.2")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Usage-Remaining"), "19")
        self.assertNotEqual(r.seen["x-usage-owner"], owner)

    def test_salt_survives_a_crash_too(self):
        ng = self.nginx(state_http(salt=False,
                                   params="state_interval=1s"))
        r = self.asks(1, 3, None)
        owner = r.seen["x-usage-owner"]
        time.sleep(1.6)
        ng.kill9()
        ng.start()
        r = self.asks(4, 4, None)
        self.assertEqual(r.seen["x-usage-owner"], owner)


def previous_month_noon() -> str:
    """faketime's '@YYYY-MM-DD HH:MM:SS' for the 15th of last month."""
    tm = time.gmtime()
    y, m = (tm.tm_year - 1, 12) if tm.tm_mon == 1 else (tm.tm_year,
                                                         tm.tm_mon - 1)
    return f"@{y:04d}-{m:02d}-15 12:00:00"


class PastMonths(StateCase):

    def test_counts_of_a_past_month_are_not_loaded_back(self):
        fake = previous_month_noon()
        ng = self.nginx(state_http(), faketime=fake)
        r = self.asks(1, 15, user("alice"))
        # the clock really is last month's
        reset = int(r.header("RateLimit").rsplit("t=", 1)[1])
        self.assertGreater(reset, 12 * 86400,
                           f"faketime did not apply: {r.header('RateLimit')}")
        ng.quit()

        # still last month: the counts come back (the file holds them)
        ng.start()
        self.asks(16, 17, user("alice"))
        ng.quit()

        # now at the real time: last month's counts are not this month's
        ng.faketime = None
        ng.write_conf()
        ng.start()
        self.assertRegex(ng.error_log(),
                         r'usage_gate_zone "usage": loaded 0 owners from')
        self.asks(1, 1, user("alice"))


if __name__ == "__main__":
    unittest.main()
