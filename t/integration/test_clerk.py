"""Clerk out of the box: session tokens v1 and v2 (Clerk Billing's `pla`)
read by the default claims, and keys fetched from the issuer's JWKS URL.

A loopback issuer (issuer.py) serves a JWKS, mints v1 and v2 tokens with
PyJWT and rotates its key; it counts the fetches it serves, so the tests
can tell how often nginx asked.  What a user sees is asserted: the
status, the JSON detail, what reached the example app ("seen"), X-Plan,
and the error log's lines.
"""

import secrets
import time
import unittest

from cryptography.hazmat.primitives.asymmetric import rsa

from harness import GATE_HTTP, GateTestCase, ask, free_port, wait_for
from issuer import AZP, ISSUER, Issuer

FREE_MONTH = 20

CLERK_GATE_HTTP = GATE_HTTP.replace("usage_gate_identity  header anon;",
                                    "usage_gate_identity  jwt;")
assert "usage_gate_identity  jwt;" in CLERK_GATE_HTTP


def clerk_http(keys_line="usage_gate_jwt_keys {{jwks}};", extra=""):
    """The Clerk configuration of docs/jwt.md: JWKS URL, issuer, authorized
    party; /ask counts per user, /org/ask per organisation."""
    return CLERK_GATE_HTTP + f"""
    {keys_line}
    usage_gate_jwt_issuer    {ISSUER};
    usage_gate_jwt_audience  {AZP};
    {extra}

    server {{
        listen 127.0.0.1:{{{{port}}}};
        location /ask {{
            usage_gate usage scope=user;
            proxy_pass http://{{{{app}}}}/ask;
        }}
        location /org/ask {{
            usage_gate usage scope=org;
            proxy_pass http://{{{{app}}}}/ask;
        }}
    }}
"""


class ClerkCase(GateTestCase):
    """Each test starts its issuer and its nginx."""

    def setUp(self):
        self.iss = Issuer().start()
        self.addCleanup(self.iss.stop)
        self.n = 0

    def uid(self, tag="user"):
        self.n += 1
        return f"{tag}_{self._testMethodName[5:20]}_{self.n}"

    def call(self, token, path="/ask"):
        return ask(self.port, [("Authorization", "Bearer " + token)],
                   path=path)

    def start_gate(self, http=None, **kw):
        ng = self.nginx(http or clerk_http(),
                        vars={"jwks": self.iss.jwks_url}, **kw)
        self.wait_keys()
        return ng

    def wait_keys(self, timeout=10):
        """Until a good token is accepted: the first fetch is done."""
        probe = self.iss.mint_v2("user_probe")
        wait_for(lambda: self.call(probe).status == 200, timeout,
                 interval=0.1, what="the first JWKS fetch")

    def assertGate(self, r, owner, plan, user=None, org=None):
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Plan"), plan, r)
        seen = r.seen
        self.assertEqual(seen["x-usage-owner"], owner, seen)
        self.assertEqual(seen["x-plan"], plan, seen)
        if user is not None:
            self.assertEqual(seen["x-user-id"], user, seen)
        self.assertEqual(seen["x-org-id"], org, seen)


class ClerkTokens(ClerkCase):
    """Both token shapes with the default claims."""

    def test_v2_pla_scopes(self):
        self.start_gate()
        iss = self.iss

        # u:pro -> pro, per user
        u = self.uid()
        self.assertGate(self.call(iss.mint_v2(u, pla="u:pro")), u, "pro", u)

        # o:team on scope=org -> the org (o.id) owns the count, plan team
        u, o = self.uid(), self.uid("org")
        r = self.call(iss.mint_v2(u, org=o, pla="o:team"), "/org/ask")
        self.assertGate(r, o, "team", u, o)

        # u:free,o:pro -> pro on scope=org, free on scope=user
        u, o = self.uid(), self.uid("org")
        tok = iss.mint_v2(u, org=o, pla="u:free,o:pro")
        self.assertGate(self.call(tok, "/org/ask"), o, "pro", u, o)
        r = self.call(tok, "/ask")
        self.assertGate(r, u, "free", u, o)
        self.assertEqual(r.header("X-Usage-Remaining"), str(FREE_MONTH - 1))

        # the same entries the other way round
        u, o = self.uid(), self.uid("org")
        tok = iss.mint_v2(u, org=o, pla="o:pro,u:free")
        self.assertGate(self.call(tok, "/org/ask"), o, "pro", u, o)
        self.assertGate(self.call(tok, "/ask"), u, "free", u, o)

    def test_v1_and_metadata_plans(self):
        self.start_gate()
        iss = self.iss

        # v1: org_id + public_metadata.plan
        u, o = self.uid(), self.uid("org")
        tok = iss.mint_v1(u, org_id=o, plan="team")
        self.assertGate(self.call(tok, "/org/ask"), o, "team", u, o)
        self.assertGate(self.call(tok, "/ask"), u, "team", u, o)

        # v2 without pla: public_metadata.plan
        u, o = self.uid(), self.uid("org")
        tok = iss.mint_v2(u, org=o, public_metadata={"plan": "Enterprise"})
        self.assertGate(self.call(tok, "/org/ask"), o, "enterprise", u, o)

        # a pla that names no plan does not shadow public_metadata.plan
        u = self.uid()
        tok = iss.mint_v2(u, pla="", public_metadata={"plan": "team"})
        self.assertGate(self.call(tok), u, "team", u)

        # pla comes first when it names one
        u = self.uid()
        tok = iss.mint_v2(u, pla="u:pro", public_metadata={"plan": "team"})
        self.assertGate(self.call(tok), u, "pro", u)

        # no plan at all: the default plan
        u = self.uid()
        self.assertGate(self.call(iss.mint_v2(u)), u, "free", u)

    def test_unknown_slug_is_default_plan_logged_once(self):
        ng = self.start_gate(workers=1)
        for i in range(3):
            u = self.uid()
            tok = self.iss.mint_v2(u, pla="u:Platinum_Yearly")
            self.assertGate(self.call(tok), u, "free", u)
        lines = wait_for(lambda: [
            ln for ln in ng.error_log().splitlines()
            if 'token plan "Platinum_Yearly" is not a configured plan'
            in ln] or None, 5, what="the unknown plan's log line")
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("[info]", lines[0])
        self.assertIn('default plan "free"', lines[0])


class ClerkKeys(ClerkCase):
    """Keys from the JWKS URL: one fetch for all workers, rotation,
    unknown kids, an issuer that is down, reload."""

    def test_one_fetch_for_all_workers(self):
        self.start_gate(workers=2)
        # both workers verify with the set the first fetch stored
        for i in range(8):
            u = self.uid()
            self.assertGate(self.call(self.iss.mint_v2(u, pla="u:pro")),
                            u, "pro", u)
        time.sleep(2.5)
        self.assertEqual(self.iss.hits, 1, "each worker fetched the JWKS")

    def test_refresh_interval(self):
        self.start_gate(clerk_http(
            "usage_gate_jwt_keys {{jwks}} refresh=2s;"), workers=2)
        start = self.iss.hits
        time.sleep(6.5)
        fetched = self.iss.hits - start
        # every 2 s, by whichever worker comes first: 3, not 6
        self.assertGreaterEqual(fetched, 2, fetched)
        self.assertLessEqual(fetched, 4, fetched)

    def test_rotation_picked_up_without_reload(self):
        ng = self.start_gate()
        workers = set(ng.workers_now())
        old_kid = self.iss.kid
        old_key = dict(self.iss.keys)[old_kid]
        u = self.uid()
        self.assertGate(self.call(self.iss.mint_v2(u)), u, "free", u)
        new_kid = self.iss.rotate(keep_old=False)
        self.assertNotEqual(old_kid, new_kid)

        u = self.uid()
        tok = self.iss.mint_v2(u, pla="u:team")
        t0 = time.monotonic()
        r = wait_for(lambda: (lambda r: r if r.status == 200 else None)(
            self.call(tok)), 5, interval=0.2, what="the rotated key")
        self.assertLess(time.monotonic() - t0, 5)
        self.assertGate(r, u, "team", u)
        self.assertEqual(set(ng.workers_now()), workers, "nginx reloaded")

        # the withdrawn key no longer verifies
        r = self.call(self.iss.sign({"sub": self.uid()}, kid=old_kid,
                                    key=old_key))
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json, {"detail": "no key matches the token's kid"})

    def test_random_kids_cost_the_issuer_little(self):
        self.start_gate()
        before = self.iss.hits
        forger = rsa.generate_private_key(public_exponent=65537,
                                          key_size=2048)
        statuses = []
        for i in range(50):
            tok = self.iss.sign({"sub": self.uid(), "pla": "u:pro"},
                                kid="ins_" + secrets.token_hex(8),
                                key=forger)
            r = self.call(tok)
            statuses.append(r.status)
            if r.status == 401:
                self.assertEqual(set(r.json), {"detail"}, r.json)
        self.assertEqual(statuses, [401] * 50)
        time.sleep(1.5)
        fetched = self.iss.hits - before
        self.assertGreaterEqual(fetched, 1, "an unknown kid never refetched")
        self.assertLessEqual(fetched, 5, fetched)

    def test_issuer_down_known_kid_keeps_working(self):
        ng = self.start_gate(clerk_http(
            "usage_gate_jwt_keys {{jwks}} refresh=1s;"))
        self.iss.stop()
        time.sleep(3.5)                 # a few failed refreshes
        for i in range(4):
            u = self.uid()
            self.assertGate(self.call(self.iss.mint_v2(u, pla="u:pro")),
                            u, "pro", u)
        log = ng.error_log()
        self.assertRegex(log, r'\[error\].*usage_gate_jwt_keys: fetching '
                              r'"http://127\.0\.0\.1:\d+/\.well-known/'
                              r'jwks\.json" failed: .*the last good key '
                              r'set stays in use')

        # a reload keeps the set: the zone outlives the old workers
        ng.reload()
        for i in range(4):
            u = self.uid()
            self.assertGate(self.call(self.iss.mint_v2(u, pla="o:team")),
                            u, "team", u)

    def test_no_key_set_yet_is_503(self):
        port = free_port()
        ng = self.nginx(clerk_http(), vars={
            "jwks": f"http://127.0.0.1:{port}/.well-known/jwks.json"})
        tok = self.iss.mint_v2(self.uid(), pla="u:pro")
        for i in range(3):
            r = self.call(tok)
            self.assertEqual(r.status, 503, r)
            self.assertEqual(set(r.json), {"detail"}, r.json)
            self.assertIn("issuer's keys", r.json["detail"])
            self.assertIsNone(r.header("WWW-Authenticate"))
        # a request without a token is still refused as unauthenticated
        r = ask(self.port, [], path="/ask")
        self.assertEqual(r.status, 401, r)
        lines = [ln for ln in ng.error_log().splitlines()
                 if "no key set from" in ln]
        self.assertGreaterEqual(len(lines), 1, ng.error_log())
        self.assertLessEqual(len(lines), 2, lines)    # once per worker
        self.assertIn("bearer tokens get 503", lines[0])

        # the issuer comes up on that URL: tokens are accepted
        other = Issuer(port=port)
        other.keys = self.iss.keys
        other.start()
        self.addCleanup(other.stop)
        r = wait_for(lambda: (lambda r: r if r.status == 200 else None)(
            self.call(tok)), 20, interval=0.25, what="the late key set")
        self.assertEqual(r.header("X-Plan"), "pro")


    def test_https_certificate_is_verified(self):
        # a self-signed issuer: the system CA store does not trust it, so
        # its keys are never taken, and tokens get 503, not 200
        tls = Issuer(tls=True).start()
        self.addCleanup(tls.stop)
        tls.keys = self.iss.keys
        ng = self.nginx(clerk_http(), vars={"jwks": tls.jwks_url})
        tok = self.iss.mint_v2(self.uid(), pla="u:pro")
        log = wait_for(lambda: (lambda t: t if "failed: TlsFailed" in t
                                else None)(ng.error_log()), 10,
                       what="the refused TLS fetch")
        self.assertRegex(log, r'fetching "https://127\.0\.0\.1:\d+/'
                              r'\.well-known/jwks\.json" failed: TlsFailed')
        r = self.call(tok)
        self.assertEqual(r.status, 503, r)
        self.assertEqual(tls.hits, 0, "a JWKS was served over untrusted TLS")


class ClerkConfig(ClerkCase):
    """Mistakes in the keys directive stop nginx -t with a clear line."""

    def check_refused(self, keys_line, message):
        ng = self.make_nginx(clerk_http(keys_line),
                             vars={"jwks": self.iss.jwks_url},
                             expect_log=[r"\[emerg\].*" + message])
        ok, out = ng.test_config()
        self.assertFalse(ok, out)
        self.assertRegex(out, message)

    def test_bad_parameters(self):
        self.check_refused("usage_gate_jwt_keys {{jwks}} refresh=never;",
                           r'invalid refresh "never"')
        self.check_refused("usage_gate_jwt_keys {{jwks}} every=1m;",
                           r'unknown parameter "every=1m"')
        self.check_refused("usage_gate_jwt_keys {{jwks}};\n"
                           "    usage_gate_jwt_keys {{jwks}};",
                           r"one URL per level")
        self.check_refused("usage_gate_jwt_keys {{jwks}};\n"
                           "    usage_gate_jwt_secret_file /etc/hostname;",
                           r"cannot be combined")
        self.check_refused("usage_gate_jwt_keys /etc/hostname refresh=1m;",
                           r'"refresh=1m" applies to a URL')


if __name__ == "__main__":
    unittest.main()
