"""Identity and plans: who is calling and on which plan.

Trusted identity headers, untrusted peers, the anonymous owner and its
salt, scope user/org, the plan table (default and declared), and bad
identity headers.
"""

import re
import unittest

from harness import (GATE_HTTP, GateTestCase, Nginx, anon_owner, ask,
                     gated, server, user)

ANON_127_0_0_1 = "anon:b109e04d0335ce95dea2a753"

POLICY_FREE = '"minute";q=30;w=60, "month";q=20;w=2592000'


class PlanTable(GateTestCase):
    """The seed's plan table is the default; declared plans replace it."""

    def test_default_seed_table_without_usage_gate_plan(self):
        self.nginx("""
    usage_gate_zone  usage:10m;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt  "sentientiq";
""" + server(gated("/ask")))
        expected = {
            "free": POLICY_FREE,
            "pro": '"minute";q=120;w=60',
            "team": '"minute";q=300;w=60',
            "enterprise": '"minute";q=600;w=60',
        }
        for plan, policy in expected.items():
            with self.subTest(plan=plan):
                r = ask(self.port, user(f"u-{plan}", plan))
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.header("X-Plan"), plan)
                self.assertEqual(r.header("RateLimit-Policy"), policy)
                self.assertEqual(r.seen["x-plan"], plan)
                if plan == "free":
                    self.assertEqual(r.header("X-Usage-Remaining"), "19")
                else:
                    self.assertIsNone(r.header("X-Usage-Remaining"))
        # the default plan, without usage_gate_default_plan, is free
        r = ask(self.port, user("u-none"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Plan"), "free")
        self.assertEqual(r.header("RateLimit-Policy"), POLICY_FREE)

    def test_plan_names_are_case_insensitive_and_unknown_is_default(self):
        self.nginx(GATE_HTTP + server(gated("/ask")))
        for sent, plan in (("PRO", "pro"), ("Team", "team"),
                           ("eNtErPrIsE", "enterprise"), ("gold", "free"),
                           ("free", "free")):
            with self.subTest(sent=sent):
                r = ask(self.port, user(f"case-{sent}", sent))
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.header("X-Plan"), plan)
                self.assertEqual(r.seen["x-plan"], plan)

    def test_declared_plans_replace_the_seed_table(self):
        self.nginx("""
    usage_gate_zone  usage:1m;
    usage_gate_plan  basic  month=2   minute=off;
    usage_gate_plan  gold   month=off minute=7;
    usage_gate_default_plan  basic;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt  "sentientiq";
""" + server(gated("/ask")))
        r = ask(self.port, user("g1", "GOLD"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Plan"), "gold")
        self.assertEqual(r.header("RateLimit-Policy"), '"minute";q=7;w=60')
        # "pro" is not declared here: the default plan applies
        r = ask(self.port, user("p1", "pro"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Plan"), "basic")
        self.assertEqual(r.seen["x-plan"], "basic")
        self.assertEqual(r.header("RateLimit-Policy"),
                         '"month";q=2;w=2592000')
        self.assertEqual(ask(self.port, user("p1", "pro")).status, 200)
        r = ask(self.port, user("p1", "pro"))
        self.assertEqual(r.status, 402, r)
        self.assertEqual(r.json["plan"], "basic")


class TrustedIdentity(GateTestCase):
    """X-User-Id, X-Org-Id, X-Plan count only from trusted proxies."""

    def setUp(self):
        self.ng = self.nginx(GATE_HTTP + server(gated("/ask")))

    def test_identity_from_trusted_headers_reaches_the_app(self):
        r = ask(self.port, user("alice", "Pro", "acme"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Plan"), "pro")
        seen = r.seen
        self.assertEqual(seen["x-user-id"], "alice")
        self.assertEqual(seen["x-org-id"], "acme")
        self.assertEqual(seen["x-plan"], "pro")
        self.assertEqual(seen["x-usage-owner"], "alice")
        self.assertEqual(seen["x-usage-month-used"], "1")
        self.assertIsNone(seen["x-usage-month-remaining"])

    def test_untrusted_peer_cannot_assert_identity_or_plan(self):
        spoof = user("mallory", "enterprise", "evil-corp")
        r = ask(self.port, spoof, source="127.0.0.2")
        self.assertEqual(r.status, 200, r)
        owner = anon_owner("127.0.0.2")
        self.assertEqual(r.header("X-Plan"), "free")
        self.assertEqual(r.header("RateLimit-Policy"), POLICY_FREE)
        self.assertEqual(r.header("X-Usage-Remaining"), "19")
        seen = r.seen
        self.assertEqual(seen["x-plan"], "free",
                         "the spoofed X-Plan reached the app")
        self.assertEqual(seen["x-user-id"], owner)
        self.assertEqual(seen["x-usage-owner"], owner)
        self.assertIsNone(seen["x-org-id"],
                          "the spoofed X-Org-Id reached the app")
        # and the spoofer is held to the free quota of its address
        for i in range(19):
            self.assertEqual(ask(self.port, spoof, source="127.0.0.2").status,
                             200, i)
        r = ask(self.port, spoof, source="127.0.0.2")
        self.assertEqual(r.status, 402, r)
        self.assertEqual(r.json["plan"], "free")
        # the trusted peer's own anonymous owner is untouched
        r = ask(self.port)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Usage-Remaining"), "19")

    def test_header_names_in_any_case(self):
        # a trusted proxy's headers count whatever the case of their names
        r = ask(self.port, [("x-user-id", "carol"), ("x-PLAN", "Pro"),
                            ("X-ORG-ID", "acme")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Plan"), "pro")
        self.assertEqual(r.seen["x-user-id"], "carol")
        self.assertEqual(r.seen["x-org-id"], "acme")
        self.assertEqual(r.seen["x-usage-owner"], "carol")
        # and whatever the case, a client's copies of the gate's headers
        # never reach the app beside the gate's own
        owner = anon_owner("127.0.0.2")
        r = ask(self.port, [("x-user-id", "mallory"), ("X-PLAN", "pro"),
                            ("x-org-ID", "evil"),
                            ("X-USAGE-OWNER", "mallory"),
                            ("x-usage-month-used", "0"),
                            ("X-Usage-MONTH-Remaining", "999999"),
                            ("x-usage-overage", "0")],
                source="127.0.0.2")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.seen, {
            "x-user-id": owner, "x-org-id": None, "x-plan": "free",
            "x-usage-owner": owner, "x-usage-month-used": "1",
            "x-usage-month-remaining": "19"})

    def test_untrusted_peer_bad_headers_are_ignored_not_refused(self):
        r = ask(self.port, [("X-User-Id", "x" * 300), ("X-User-Id", "y"),
                            ("X-Plan", "a b")], source="127.0.0.2")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.seen["x-usage-owner"], anon_owner("127.0.0.2"))
        self.assertEqual(r.seen["x-user-id"], anon_owner("127.0.0.2"))
        self.assertEqual(r.seen["x-plan"], "free")


class AnonymousOwner(GateTestCase):

    def test_anon_owner_is_the_seeds_hmac(self):
        self.nginx(GATE_HTTP + server(gated("/ask")))
        self.assertEqual(anon_owner("127.0.0.1", "sentientiq"),
                         ANON_127_0_0_1)
        r = ask(self.port)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.seen["x-usage-owner"], ANON_127_0_0_1)
        self.assertEqual(r.seen["x-user-id"], ANON_127_0_0_1)
        self.assertIsNone(r.seen["x-org-id"])
        self.assertEqual(r.seen["x-plan"], "free")
        r = ask(self.port, source="127.0.0.2")
        self.assertEqual(r.seen["x-usage-owner"], anon_owner("127.0.0.2"))

    def test_random_salt_when_none_is_set_kept_across_reload(self):
        http = GATE_HTTP.replace('usage_gate_anon_salt  "sentientiq";', "")
        self.assertNotIn("anon_salt", http)
        ng = self.nginx(http + server(gated("/ask")))
        r = ask(self.port)
        self.assertEqual(r.status, 200, r)
        owner = r.seen["x-usage-owner"]
        self.assertRegex(owner, r"^anon:[0-9a-f]{24}$")
        self.assertNotEqual(owner, ANON_127_0_0_1,
                            "the seed's salt is used as a built-in constant")
        self.assertNotEqual(owner, anon_owner("127.0.0.1", ""),
                            "an empty salt is used")
        log = ng.error_log()
        self.assertTrue(
            re.search(r"\[warn\].*usage_gate_anon_salt", log),
            "the error log does not say how to set usage_gate_anon_salt:\n"
            + log)
        ng.reload()
        r = ask(self.port)
        self.assertEqual(r.seen["x-usage-owner"], owner,
                         "the anonymous owner changed across a reload")
        self.assertEqual(r.header("X-Usage-Remaining"), "18")

        # a fresh zone elsewhere gets a salt of its own
        other = self.nginx(http + server(gated("/ask"), "{{port2}}"))
        r2 = ask(self.port2)
        self.assertEqual(r2.status, 200, r2)
        self.assertRegex(r2.seen["x-usage-owner"], r"^anon:[0-9a-f]{24}$")
        self.assertNotEqual(r2.seen["x-usage-owner"], owner,
                            "two fresh zones share one salt: a constant?")
        other.stop()

    def test_without_anon_an_unidentified_caller_gets_401(self):
        http = GATE_HTTP.replace("usage_gate_identity  header anon;",
                                 "usage_gate_identity  header;")
        self.nginx(http + server(gated("/ask")))
        for source, headers in (("127.0.0.1", []),
                                ("127.0.0.2", user("mallory", "pro"))):
            with self.subTest(source=source):
                r = ask(self.port, headers, source=source)
                self.assertEqual(r.status, 401, r)
                self.assertIn("application/json",
                              r.header("Content-Type") or "")
                self.assertIsInstance(r.json, dict, r)
                self.assertIsInstance(r.json.get("detail"), str, r)
        r = ask(self.port, user("known"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.seen["x-usage-owner"], "known")


class Scope(GateTestCase):

    HTTP = """
    usage_gate_zone  usage:1m;
    usage_gate_plan  free  month=3 minute=off;
    usage_gate_default_plan  free;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt  "sentientiq";
"""

    def setUp(self):
        self.nginx(self.HTTP + server(
            gated("/ask", "usage scope=user")
            + gated("/org-ask", "usage scope=org")))

    def test_scope_user_counts_each_user(self):
        for uid in ("u1", "u2"):
            for i in range(3):
                r = ask(self.port, user(uid, org="acme"))
                self.assertEqual(r.status, 200, (uid, i, r))
                self.assertEqual(r.seen["x-usage-owner"], uid)
                self.assertEqual(r.header("X-Usage-Remaining"), str(2 - i))
            self.assertEqual(ask(self.port, user(uid, org="acme")).status,
                             402)

    def test_scope_org_counts_the_org_and_falls_back_to_user(self):
        r = ask(self.port, user("u1", org="acme"), path="/org-ask")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.seen["x-usage-owner"], "acme")
        self.assertEqual(r.seen["x-user-id"], "u1")
        self.assertEqual(r.seen["x-org-id"], "acme")
        self.assertEqual(r.header("X-Usage-Remaining"), "2")
        r = ask(self.port, user("u2", org="acme"), path="/org-ask")
        self.assertEqual(r.header("X-Usage-Remaining"), "1")
        r = ask(self.port, user("u3", org="acme"), path="/org-ask")
        self.assertEqual(r.header("X-Usage-Remaining"), "0")
        r = ask(self.port, user("u4", org="acme"), path="/org-ask")
        self.assertEqual(r.status, 402, r)
        self.assertEqual(r.json["used"], 3)
        # another org, and a user without an org, count on their own
        r = ask(self.port, user("u1", org="other"), path="/org-ask")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.seen["x-usage-owner"], "other")
        r = ask(self.port, user("solo"), path="/org-ask")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.seen["x-usage-owner"], "solo")
        self.assertIsNone(r.seen["x-org-id"])
        self.assertEqual(r.header("X-Usage-Remaining"), "2")
        # the org's count did not touch u1's own (scope=user) count
        r = ask(self.port, user("u1", org="acme"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.seen["x-usage-owner"], "u1")
        self.assertEqual(r.header("X-Usage-Remaining"), "2")


class BadIdentityHeaders(GateTestCase):
    """From a trusted peer, a malformed identity header is a 400 with a JSON
    detail naming the header, and nothing is counted."""

    HTTP = """
    usage_gate_zone  usage:1m;
    usage_gate_plan  free  month=5 minute=off;
    usage_gate_default_plan  free;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt  "sentientiq";
"""

    CASES = [
        ("X-User-Id", [("X-User-Id", "a" * 129)],
         "X-User-Id header is longer than 128 bytes"),
        ("X-User-Id", [("X-User-Id", "ab\x01cd")],
         "X-User-Id header may hold only printable ASCII without spaces"),
        ("X-User-Id", [("X-User-Id", "ab\x7fcd")],
         "X-User-Id header may hold only printable ASCII without spaces"),
        ("X-User-Id", [("X-User-Id", "alice smith")],
         "X-User-Id header may hold only printable ASCII without spaces"),
        ("X-User-Id", [("X-User-Id", "")],
         "X-User-Id header is empty"),
        ("X-User-Id", [("X-User-Id", "alice"), ("X-User-Id", "bob")],
         "X-User-Id header was sent more than once"),
        ("X-Org-Id", [("X-User-Id", "carol"), ("X-Org-Id", "o" * 129)],
         None),
        ("X-Org-Id", [("X-User-Id", "carol"), ("X-Org-Id", "ac me")],
         None),
        ("X-Org-Id", [("X-User-Id", "carol"), ("X-Org-Id", "a"),
                      ("X-Org-Id", "b")], None),
        ("X-Plan", [("X-User-Id", "carol"), ("X-Plan", "pro plan")], None),
        ("X-Plan", [("X-User-Id", "carol"), ("X-Plan", "")], None),
        ("X-Plan", [("X-User-Id", "carol"), ("X-Plan", "pro"),
                    ("X-Plan", "free")], None),
    ]

    def test_bad_identity_headers_get_400_and_count_nothing(self):
        self.nginx(self.HTTP + server(gated("/ask", "usage scope=org")))
        for name, headers, detail in self.CASES:
            with self.subTest(headers=headers):
                r = ask(self.port, headers)
                self.assertEqual(r.status, 400, r)
                self.assertIn("application/json",
                              r.header("Content-Type") or "")
                self.assertIsInstance(r.json, dict, r)
                self.assertIn("detail", r.json)
                if detail:
                    self.assertEqual(r.json["detail"], detail)
                else:
                    self.assertTrue(r.json["detail"].startswith(
                        name + " header "), r.json)
        # nothing was counted: not for carol, nor her orgs, nor anon
        for headers in (user("carol"), [], user("alice"), user("x", org="a"),
                        user("y", org="b"), user("z", org="ac")):
            r = ask(self.port, headers)
            self.assertEqual(r.status, 200, (headers, r))
            self.assertEqual(r.header("X-Usage-Remaining"), "4",
                             (headers, r.seen))

    def test_boundary_values_are_accepted(self):
        self.nginx(self.HTTP + server(gated("/ask")))
        uid = "a" * 128
        r = ask(self.port, user(uid))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.seen["x-usage-owner"], uid)
        punct = "!#$%&'*+-.^_`|~\"(),/:;<=>?@[\\]{}0Z"
        r = ask(self.port, user(punct, org=punct))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.seen["x-user-id"], punct)
        self.assertEqual(r.seen["x-org-id"], punct)


class IdentityConfig(GateTestCase):
    """usage_gate_identity and usage_gate_trusted_proxies refuse what they
    cannot use, saying what is accepted, at the line that is wrong."""

    HTTP = """
    usage_gate_zone  usage:1m;
    usage_gate_anon_salt  "sentientiq";
    server {
        listen 127.0.0.1:{{port}};
        location /ask {
            %s  # BAD
            usage_gate usage;
            proxy_pass http://127.0.0.1:9;
        }
        location /free {
            %s  # UNGATED
            usage_gate off;
            proxy_pass http://127.0.0.1:9;
        }
    }
"""

    def _test(self, gated_line, ungated_line="usage_gate_dry_run off;"):
        ng = Nginx(self.HTTP % (gated_line, ungated_line), vars=self.vars())
        self.addCleanup(ng.cleanup)
        ok, out = ng.test_config()
        return ok, out, ng

    def test_bad_sources_and_proxies_fail_nginx_t(self):
        cases = [
            ("usage_gate_identity header cookie;",
             'usage_gate_identity: unknown source "cookie" '
             '(use jwt, header or anon) in {conf}:{line}'),
            ("usage_gate_identity anon header anon;",
             'usage_gate_identity: "anon" is listed twice in {conf}:{line}'),
            ("usage_gate_identity header; usage_gate_identity anon;",
             '"usage_gate_identity" directive is duplicate in '
             '{conf}:{line}'),
            ("usage_gate_identity jwt anon;",
             "usage_gate_identity: the jwt source in {conf}:{line} needs "
             "usage_gate_jwt_keys or usage_gate_jwt_secret_file where a "
             "gate uses it"),
            ("usage_gate_trusted_proxies 10.0.0.0/8 bogus;",
             'usage_gate_trusted_proxies: invalid address or network '
             '"bogus" in {conf}:{line}'),
        ]
        for line, message in cases:
            with self.subTest(line=line):
                ok, out, ng = self._test(line)
                self.assertFalse(ok, out)
                expected = message.format(conf=ng.conf_path,
                                          line=ng.line_of("# BAD"))
                self.assertIn("[emerg] " + expected, out)

    def test_jwt_without_keys_is_accepted_where_no_gate_runs(self):
        # the jwt source is listed only in the location without a gate
        ok, out, _ = self._test("usage_gate_identity anon;",
                                "usage_gate_identity jwt anon;")
        self.assertTrue(ok, out)
        self.assertNotIn("jwt source", out)

    def test_low_address_bits_are_warned_not_refused(self):
        ok, out, ng = self._test("usage_gate_trusted_proxies 10.1.2.3/8;")
        self.assertTrue(ok, out)
        self.assertIn("[warn] usage_gate_trusted_proxies: low address bits "
                      f"of 10.1.2.3/8 are meaningless in {ng.conf_path}:"
                      f"{ng.line_of('# BAD')}", out)


if __name__ == "__main__":
    unittest.main()
