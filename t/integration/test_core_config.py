"""Configuration: malformed directives fail `nginx -t` naming the
directive and nginx.conf:<line>; the demo config is valid.
"""

import os
import re
import unittest

from harness import DOCS, MODULE, GateTestCase, Nginx

BASE = """
    usage_gate_zone  usage:1m;            # ZONE
    usage_gate_plan  free  month=20 minute=30;   # PLAN
    usage_gate_plan  pro   month=off minute=120;   # PRO
    usage_gate_default_plan  free;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt  "sentientiq";
    server {
        listen 127.0.0.1:{{port}};
        location /ask {
            usage_gate usage scope=user;   # GATE
            proxy_pass http://127.0.0.1:9;
        }
    }
"""


def directive_re(name):
    # the directive's own name, not a longer usage_gate_* one
    return re.compile(r"(?<![\w])" + re.escape(name) + r"(?![\w])")


class ConfigErrors(GateTestCase):

    # (what, marker line to replace, replacement, directive named)
    CASES = [
        ("bad zone size", "# ZONE",
         "usage_gate_zone  usage:10q;  # BAD", "usage_gate_zone"),
        ("zone size missing", "# ZONE",
         "usage_gate_zone  usage;  # BAD", "usage_gate_zone"),
        ("unknown plan in plans=", "# GATE",
         "usage_gate usage plans=free,gold;  # BAD", "usage_gate"),
        ("cost=0", "# GATE",
         "usage_gate usage cost=0;  # BAD", "usage_gate"),
        ("cost not a number", "# GATE",
         "usage_gate usage cost=two;  # BAD", "usage_gate"),
        ("bad scope", "# GATE",
         "usage_gate usage scope=team;  # BAD", "usage_gate"),
        ("negative month", "# PLAN",
         "usage_gate_plan  free  month=-1 minute=30;  # BAD",
         "usage_gate_plan"),
        ("negative minute", "# PLAN",
         "usage_gate_plan  free  month=20 minute=-5;  # BAD",
         "usage_gate_plan"),
        ("undeclared zone", "# GATE",
         "usage_gate nozone scope=user;  # BAD", "usage_gate"),
        ("unknown parameter", "# GATE",
         "usage_gate usage bogus=1;  # BAD", "usage_gate"),
        ("unknown plan parameter", "# PLAN",
         "usage_gate_plan  free  month=20 hour=3;  # BAD",
         "usage_gate_plan"),
        ("duplicate plan (case-insensitive)", "# PRO",
         "usage_gate_plan  FREE  month=1 minute=1;  # BAD",
         "usage_gate_plan"),
    ]

    def _bad(self, marker, replacement):
        lines = BASE.splitlines()
        out = []
        for line in lines:
            if marker in line:
                indent = line[:len(line) - len(line.lstrip())]
                out.append(indent + replacement)
            else:
                out.append(line)
        return "\n".join(out) + "\n"

    def test_base_config_is_valid(self):
        ng = Nginx(BASE, vars=self.vars())
        self.addCleanup(ng.cleanup)
        ok, out = ng.test_config()
        self.assertTrue(ok, out)
        self.assertIn("test is successful", out)

    def test_malformed_directives_fail_nginx_t(self):
        for what, marker, replacement, name in self.CASES:
            with self.subTest(what=what):
                ng = Nginx(self._bad(marker, replacement), vars=self.vars())
                self.addCleanup(ng.cleanup)
                ok, out = ng.test_config()
                self.assertFalse(ok, f"nginx -t accepted: {replacement}")
                self.assertIn("[emerg]", out)
                self.assertRegex(out, directive_re(name))
                line = ng.line_of("# BAD")
                self.assertIn(f"nginx.conf:{line}", out)
                self.assertIn("test failed", out)

    def test_unknown_default_plan(self):
        ng = Nginx(BASE.replace("usage_gate_default_plan  free;",
                                "usage_gate_default_plan  gold;  # BAD"),
                   vars=self.vars())
        self.addCleanup(ng.cleanup)
        ok, out = ng.test_config()
        self.assertFalse(ok, out)
        self.assertRegex(out, directive_re("usage_gate_default_plan"))
        self.assertIn(f"nginx.conf:{ng.line_of('# BAD')}", out)


class CostWarning(GateTestCase):

    def test_cost_above_a_plans_limits_is_warned_where_it_stands(self):
        ng = Nginx(self._cost("usage_gate usage cost=50;  # COST"),
                   vars=self.vars())
        self.addCleanup(ng.cleanup)
        ok, out = ng.test_config()
        self.assertTrue(ok, out)
        warns = [l for l in out.splitlines() if "[warn]" in l
                 and "cost=50" in l]
        # free (20/30) cannot pay 50; pro (off/120) can
        self.assertEqual(len(warns), 1, out)
        self.assertIn('plan "free"', warns[0])
        self.assertIn(f"nginx.conf:{ng.line_of('# COST')}", warns[0])

    def test_affordable_cost_or_other_plans_only_is_quiet(self):
        for gate in ("usage_gate usage cost=20;  # COST",
                     "usage_gate usage cost=50 plans=pro;  # COST"):
            with self.subTest(gate=gate):
                ng = Nginx(self._cost(gate), vars=self.vars())
                self.addCleanup(ng.cleanup)
                ok, out = ng.test_config()
                self.assertTrue(ok, out)
                self.assertNotIn("cost=", out)

    @staticmethod
    def _cost(gate):
        return BASE.replace("usage_gate usage scope=user;   # GATE", gate)


class DemoConfig(GateTestCase):

    def test_examples_nginx_conf_is_valid(self):
        with open(os.path.join(DOCS, "nginx.conf")) as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^load_module modules/"
                               r"ngx_http_usage_gate_module\.so;")
        text = re.sub(r"(?m)^load_module .*;",
                      f"load_module {MODULE};", text)
        ng = Nginx("", vars=self.vars())
        self.addCleanup(ng.cleanup)
        # the demo's own paths are relative to the prefix (-p)
        with open(ng.conf_path, "w") as f:
            f.write(text)
        for d in ("logs", "tmp"):
            os.makedirs(os.path.join(ng.dir, d), exist_ok=True)
        ok, out = ng.test_config()
        self.assertTrue(ok, out)
        for directive in ("usage_gate_zone", "usage_gate_plan",
                          "usage_gate_default_plan", "usage_gate_identity",
                          "usage_gate_trusted_proxies",
                          "usage_gate_anon_salt"):
            self.assertRegex(text, directive_re(directive))
        self.assertIn("127.0.0.1:8080", text)
        self.assertIn("127.0.0.1:8000", text)


if __name__ == "__main__":
    unittest.main()
