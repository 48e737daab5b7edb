"""The module under a real deployment's conditions: workers as an
unprivileged user, a state directory that does not exist yet or belongs
to root, an admin location left without a token, and a log that must stay
readable while one owner is refused a thousand times.
"""

import os
import re
import shutil
import stat
import tempfile

from harness import GateTestCase, ask, gated, request, server, wait_for

GATE = """
    usage_gate_zone  usage:1m state={state} state_interval=3600s;
    usage_gate_plan  free  month=20  minute=off;
    usage_gate_default_plan  free;
    usage_gate_identity  header;
    usage_gate_trusted_proxies  127.0.0.1;
"""


def worker_uids(ng):
    uids = []
    for pid in ng.workers_now():
        with open(f"/proc/{pid}/status") as f:
            m = re.search(r"^Uid:\s+(\d+)", f.read(), re.M)
        uids.append(int(m.group(1)))
    return uids


class StateDirectory(GateTestCase):

    def setUp(self):
        # a root-owned parent, as /var/lib/nginx is on Debian
        self.parent = tempfile.mkdtemp(prefix="ug-deploy-")
        os.chmod(self.parent, 0o755)
        self.addCleanup(shutil.rmtree, self.parent, True)

    def gate(self, state):
        return GATE.format(state=state) + server(gated("/ask", "usage"))

    def test_missing_directory_is_created_for_the_workers(self):
        d = os.path.join(self.parent, "usage_gate")
        state = os.path.join(d, "usage.state")
        ng = self.nginx(self.gate(state))
        self.assertTrue(all(uid != 0 for uid in worker_uids(ng)),
                        "workers must not run as root in this test")
        st = os.stat(d)
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertIn(st.st_uid, worker_uids(ng))

        for _ in range(15):
            self.assertEqual(ask(self.port, [("X-User-Id", "u1")]).status,
                             200)
        ng.quit()
        self.assertTrue(os.path.exists(state), os.listdir(d))
        ng.start()
        r = ask(self.port, [("X-User-Id", "u1")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Usage-Remaining"), "4")
        self.assertNotRegex(ng.error_log(), r"cannot write state file")

    def test_root_owned_directory_fails_loudly(self):
        d = os.path.join(self.parent, "rootonly")
        os.mkdir(d, 0o755)
        state = os.path.join(d, "usage.state")
        ng = self.make_nginx(self.gate(state),
                             expect_log=[r"usage_gate_zone .* cannot write"])
        ok, out = ng.test_config()
        self.assertFalse(ok, out)
        self.assertRegex(out, r"\[emerg\]")
        self.assertIn(d, out)
        self.assertRegex(out, r"nobody")
        self.assertRegex(out, r"usage_gate_zone")
        with self.assertRaises(AssertionError):
            ng.start()


ADMIN = """
    usage_gate_zone  usage:1m;
    usage_gate_plan  free  month=20  minute=off;
    usage_gate_default_plan  free;
    usage_gate_identity  header;
    usage_gate_trusted_proxies  127.0.0.1;
"""


class AdminClosedByDefault(GateTestCase):

    def test_admin_without_a_token_fails_the_config_test(self):
        ng = self.make_nginx(ADMIN + server(
            gated("/ask", "usage")
            + "        location /admin/ { usage_gate_admin; }\n"),
            expect_log=[r"usage_gate_admin in .* has no token"])
        ok, out = ng.test_config()
        self.assertFalse(ok, out)
        self.assertIn("usage_gate_admin", out)
        self.assertIn("usage_gate_admin_token_file", out)
        self.assertIn(str(ng.line_of("usage_gate_admin;")), out)

    def test_explicit_opt_out_with_allow_and_deny_starts(self):
        self.nginx(ADMIN + server(gated("/ask", "usage") + """
        location /admin/ {
            usage_gate_admin;
            usage_gate_admin_token_file off;
            allow 127.0.0.1;
            deny all;
        }
"""))
        self.assertEqual(ask(self.port, [("X-User-Id", "a1")]).status, 200)
        r = request(self.port, "/admin/owners/a1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["used"], 1)
        r = request(self.port, "/admin/owners/a1", source="127.0.0.2")
        self.assertEqual(r.status, 403, r)


DENIALS = """
    usage_gate_zone  usage:1m;
    usage_gate_plan  free  month=5  minute={minute};
    usage_gate_default_plan  free;
    usage_gate_identity  header;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_log_level {level};
"""


class DenialLogging(GateTestCase):

    def flood(self, owner, minute, level, n=1000):
        ng = self.nginx(DENIALS.format(minute=minute, level=level)
                        + server(gated("/ask", "usage")))
        statuses = {}
        for _ in range(n):
            s = ask(self.port, [("X-User-Id", owner)]).status
            statuses[s] = statuses.get(s, 0) + 1
        lines = wait_for(lambda: [ln for ln in ng.error_log().splitlines()
                                  if f'"{owner}"' in ln] or None, 5,
                         what="a log line about the owner")
        ng.stop()
        return statuses, lines

    def test_quota_denials_are_logged_once_per_owner(self):
        for level in ("info", "error"):
            owner = f"quota-{level}"
            statuses, lines = self.flood(owner, "off", level)
            self.assertEqual(statuses, {200: 5, 402: 995})
            # one line per worker at most
            self.assertLessEqual(len(lines), self.WORKERS, lines)
            self.assertRegex(lines[0], r"monthly quota reached")

    def test_rate_denials_are_logged_at_most_once_a_minute(self):
        statuses, lines = self.flood("rate-1", "2", "error", n=300)
        self.assertEqual(statuses.get(429, 0) + statuses.get(402, 0),
                         300 - statuses.get(200, 0))
        self.assertGreater(statuses.get(429, 0), 200)
        # a minute boundary may fall inside the flood: two minutes, one
        # line per worker each
        self.assertLessEqual(len(lines), 2 * self.WORKERS, lines)
