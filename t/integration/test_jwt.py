"""Verified JWT identity: bearer tokens checked before any claim
in them is believed.

Tokens are minted at test time by an independent library (Debian's
python3-jwt, with python3-cryptography for the keys and for the tokens
PyJWT will not make); the keys are made once per run and written into a
temp dir as a JWKS with kids, as PEM, and as an HMAC secret file (see
jwt_keys.py).

What a user sees is asserted: the status, the JSON detail, the
WWW-Authenticate challenge, what reached the example app ("seen"), the
X-Plan and usage headers, the $usage_gate_jwt_* variables in an access log
line, and - for every refused token - that nothing was counted: the
metrics endpoint's counters move only by "unauthorized", and the victim
user's next good request still has its whole month.

One nginx per class (its config is the same for every test of the class).
"""

import base64
import json
import os
import re
import shutil
import tempfile
import time
import unittest
import uuid

import jwt as pyjwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import \
    decode_dss_signature

from harness import (GATE_HTTP, GateTestCase, Nginx, ask, request, user,
                     wait_for)
from jwt_keys import (ALG_KEY, ALL_ALGS, KIDS, KeySet, b64u, b64u_json,
                      es256_der_token, hand, hmac_token, jwk_of, split)

ISS = "https://clerk.example.test"
ISS2 = "https://issuer-2.example.test"
AUD = "api://gate"
AZP = "https://app.example.test"

FREE_MONTH = 20

# The identity block of GATE_HTTP with jwt put first.
JWT_GATE_HTTP = GATE_HTTP.replace("usage_gate_identity  header anon;",
                                  "usage_gate_identity  jwt header anon;")
assert "jwt header anon" in JWT_GATE_HTTP

LOG_FORMAT = """
    log_format jwt '$http_x_test_id sub=$usage_gate_jwt_sub '
                   'kid=$usage_gate_jwt_kid err=$usage_gate_jwt_error '
                   'status=$status owner=$usage_gate_owner';
"""


def loc(path, extra="", upstream="/ask"):
    return f"""
        location {path} {{
            usage_gate usage scope=user;
            {extra}
            proxy_pass http://{{{{app}}}}{upstream};
        }}
"""


# The configuration of JwtIdentity and JwtAttacks: the JWKS and the secret
# at http level, a few locations with their own policies, and the metrics.
MAIN_HTTP = JWT_GATE_HTTP + LOG_FORMAT + """
    large_client_header_buffers 4 32k;
    usage_gate_jwt_keys         {{keys}}/jwks.json;
    usage_gate_jwt_secret_file  {{keys}}/hs.secret;

    server {
        listen 127.0.0.1:{{port}};
        server_name localhost;
        access_log {{dir}}/jwt.log jwt;
""" + loc("/ask") + """
        location /org/ask {
            usage_gate usage scope=org;
            proxy_pass http://{{app}}/ask;
        }
""" + loc("/aud/ask", f"""
            usage_gate_jwt_issuer   {ISS} {ISS2};
            usage_gate_jwt_audience {AUD} {AZP};""") + loc("/claims/ask", """
            usage_gate_jwt_plan_claim app.billing.tier plan;
            usage_gate_jwt_org_claim  tenant.id;""") + loc("/required/ask", """
            usage_gate_jwt_required on;""") + loc("/rsa-jwks/ask", """
            usage_gate_jwt_keys {{keys}}/rsa-jwks.json;""") + \
    loc("/rsa-jwks-hs/ask", """
            usage_gate_jwt_keys {{keys}}/rsa-jwks.json;
            usage_gate_jwt_algorithms HS256 RS256;""") + \
    loc("/rsa-pem-hs/ask", """
            usage_gate_jwt_keys {{keys}}/rsa.pem;
            usage_gate_jwt_algorithms HS256 RS256;""") + \
    loc("/short-secret/ask", """
            usage_gate_jwt_secret_file {{keys}}/short.secret;""") + """
        location = /m {
            usage_gate_metrics;
        }
    }
"""


def bearer(token, *more):
    return [("Authorization", "Bearer " + token)] + list(more)


def challenge_of(detail):
    """The WWW-Authenticate a refused token gets (RFC 6750 section 3)."""
    return ('Bearer error="invalid_token", error_description="'
            + detail.replace('"', "'") + '"')


class JwtGate(GateTestCase):
    """One nginx per class, from HTTP, with the run's keys in {{keys}}."""

    HTTP = MAIN_HTTP
    WORKERS = 2
    SHORT_SECRET = b"s" * 40          # HS256 only: HS384 needs 48, HS512 64

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ks = KeySet.shared()
        cls.keydir = tempfile.mkdtemp(prefix="ug-jwt-keys-")
        cls.key_paths = cls.ks.write(cls.keydir)
        with open(os.path.join(cls.keydir, "short.secret"), "wb") as f:
            f.write(cls.SHORT_SECRET)
        cls.ng = Nginx(cls.HTTP, vars={"port": cls.port, "port2": cls.port2,
                                       "app": cls.app.addr,
                                       "keys": cls.keydir},
                       workers=cls.WORKERS)
        try:
            cls.ng.start()
        except Exception:
            cls.ng.stop()
            cls.app.stop()
            raise
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls.ng.stop()
        problems = cls.ng.problems()
        cls.app.stop()
        shutil.rmtree(cls.keydir, ignore_errors=True)
        if problems:
            raise AssertionError(
                f"nginx error log ({cls.ng.dir}) has unexpected lines:\n"
                + "\n".join(problems))
        cls.ng.cleanup()

    # -- requests

    def uid(self, tag="u"):
        """A user id of this test alone."""
        type(self).n += 1
        return f"{self._testMethodName[5:25]}-{tag}-{type(self).n}"

    def call(self, token=None, path="/ask", headers=(), source="127.0.0.1",
             auth=None):
        """POST path with the token as a bearer; returns the response with
        .tid, the X-Test-Id that names its access log line."""
        tid = uuid.uuid4().hex[:16]
        h = [("X-Test-Id", tid)] + list(headers)
        if auth is not None:
            h.append(("Authorization", auth))
        elif token is not None:
            h.append(("Authorization", "Bearer " + token))
        r = ask(self.port, h, source=source, path=path)
        r.tid = tid
        return r

    def log_entry(self, tid):
        """{sub, kid, err, status, owner} of the request's log line."""
        path = os.path.join(self.ng.dir, "jwt.log")

        def find():
            try:
                with open(path) as f:
                    for line in f:
                        if line.startswith(tid + " "):
                            return line
            except OSError:
                return None
            return None
        line = wait_for(find, 5, what=f"log line {tid}")
        return dict(kv.split("=", 1) for kv in line.split()[1:])

    def counts(self):
        """{(plan, result): n} from usage_gate_requests_total."""
        r = request(self.port, "/m")
        self.assertEqual(r.status, 200, r)
        out = {}
        for m in re.finditer(r'^usage_gate_requests_total\{zone="usage",'
                             r'plan="([^"]+)",result="([^"]+)"\} (\d+)$',
                             r.body.decode(), re.M):
            out[(m.group(1), m.group(2))] = int(m.group(3))
        self.assertTrue(out, r.body[:500])
        return out

    # -- assertions

    def assertAccepted(self, r, sub, plan="free", org=None):
        """200 from the app, which saw the token's identity."""
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Plan"), plan, r)
        seen = r.seen
        self.assertEqual(seen["x-user-id"], sub, seen)
        self.assertEqual(seen["x-usage-owner"], sub, seen)
        self.assertEqual(seen["x-org-id"], org, seen)
        self.assertEqual(seen["x-plan"], plan, seen)

    def assertRefused(self, r, err, detail_re):
        """401 for a bad token: JSON detail, RFC 6750 challenge, nothing
        forwarded, nothing counted on the response, the rc in the log."""
        self.assertEqual(r.status, 401, r)
        self.assertIn("application/json", r.header("Content-Type") or "", r)
        self.assertIsInstance(r.json, dict, r)
        self.assertEqual(set(r.json), {"detail"}, r.json)
        detail = r.json["detail"]
        self.assertRegex(detail, detail_re)
        self.assertEqual(r.header("WWW-Authenticate"), challenge_of(detail))
        self.assertNotIn("seen", r.json)
        for h in ("X-Plan", "X-Usage-Remaining", "X-Usage-Limit"):
            self.assertIsNone(r.header(h), f"{h} on a refused token: {r}")
        e = self.log_entry(r.tid)
        self.assertEqual(e["err"], err, f"$usage_gate_jwt_error: {e}")
        self.assertEqual(e["sub"], "-", "an unverified sub was believed")
        self.assertEqual(e["status"], "401")

    def refuse_all(self, cases, victim, path="/ask"):
        """cases: (label, token or None, err, detail_re[, headers, auth]).
        Each is refused; the metrics move only by "unauthorized" and the
        victim's next good request still has its whole month."""
        before = self.counts()
        n = 0
        for case in cases:
            label, token, err, detail_re = case[:4]
            headers = case[4] if len(case) > 4 else ()
            auth = case[5] if len(case) > 5 else None
            with self.subTest(label):
                r = self.call(token, path, headers, auth=auth)
                n += 1
                self.assertRefused(r, err, detail_re)
        after = self.counts()
        delta = {k: after[k] - before.get(k, 0) for k in after
                 if after[k] != before.get(k, 0)}
        self.assertEqual(delta, {("none", "unauthorized"): n},
                         "refused tokens were counted as something else")
        self.assertUncounted(victim, path)

    def assertUncounted(self, sub, path="/ask"):
        good = self.ks.mint("RS256", {"sub": sub, "iss": ISS, "aud": AUD})
        r = self.call(good, path)
        self.assertAccepted(r, sub)
        self.assertEqual(r.header("X-Usage-Remaining"), str(FREE_MONTH - 1),
                         f"{sub} was counted by a refused token")
        self.assertEqual(r.seen["x-usage-month-used"], "1")


# ---------------------------------------------------------------- accepted

class JwtIdentity(JwtGate):
    """Good tokens: who reaches the app, on which plan."""

    def test_every_algorithm_accepted_with_user_org_and_plan(self):
        plans = ["PRO", "team", "Enterprise", "free"]
        for i, alg in enumerate(ALL_ALGS):
            with self.subTest(alg=alg):
                sub = self.uid(alg)
                sent = plans[i % len(plans)]
                tok = self.ks.mint(alg, {
                    "sub": sub, "org_id": f"org-{alg}",
                    "public_metadata": {"plan": sent}})
                h, _, _ = split(tok)
                self.assertEqual(h["alg"], alg)
                r = self.call(tok)
                self.assertAccepted(r, sub, sent.lower(), f"org-{alg}")
                self.assertEqual(r.seen["x-usage-month-used"], "1")
                if sent.lower() == "free":
                    self.assertEqual(r.header("X-Usage-Remaining"), "19")
                else:
                    self.assertIsNone(r.header("X-Usage-Remaining"))
                e = self.log_entry(r.tid)
                self.assertEqual(e["sub"], sub)
                self.assertEqual(e["err"], "-")
                self.assertEqual(e["kid"], KIDS.get(ALG_KEY[alg], "-"))

    def test_plan_claims_meta_fallback_unknown_and_missing(self):
        cases = [
            ("public_metadata", {"public_metadata": {"plan": "tEaM"}},
             "team"),
            ("meta fallback", {"meta": {"plan": "Pro"}}, "pro"),
            ("public_metadata wins", {"public_metadata": {"plan": "team"},
                                      "meta": {"plan": "enterprise"}},
             "team"),
            ("empty public_metadata, meta", {"public_metadata": {},
                                             "meta": {"plan": "pro"}},
             "pro"),
            ("unknown plan", {"public_metadata": {"plan": "platinum"}},
             "free"),
            ("no plan claim", {}, "free"),
            ("top-level plan is not a default path", {"plan": "pro"},
             "free"),
        ]
        for label, claims, plan in cases:
            with self.subTest(label):
                sub = self.uid()
                r = self.call(self.ks.mint("ES256", dict(claims, sub=sub)))
                self.assertAccepted(r, sub, plan)
        # org: org_id, else org
        sub = self.uid()
        r = self.call(self.ks.mint("EdDSA", {"sub": sub, "org": "o-2"}))
        self.assertAccepted(r, sub, "free", "o-2")
        sub = self.uid()
        r = self.call(self.ks.mint("EdDSA", {"sub": sub, "org": "o-2",
                                             "org_id": "o-1"}))
        self.assertAccepted(r, sub, "free", "o-1")

    def test_sid_is_the_user_when_there_is_no_sub(self):
        sid = self.uid("sess")
        r = self.call(self.ks.mint("RS256", {
            "sid": sid, "public_metadata": {"plan": "pro"}}))
        self.assertAccepted(r, sid, "pro")
        self.assertEqual(self.log_entry(r.tid)["sub"], sid)
        # sub wins over sid
        sub = self.uid()
        r = self.call(self.ks.mint("RS256", {"sub": sub, "sid": sid}))
        self.assertAccepted(r, sub)
        # neither: refused, not anonymous
        r = self.call(self.ks.mint("RS256", {"public_metadata":
                                             {"plan": "pro"}}))
        self.assertRefused(r, "no_subject", r"sub")

    def test_custom_plan_and_org_claim_paths(self):
        sub = self.uid()
        tok = self.ks.mint("PS256", {
            "sub": sub, "app": {"billing": {"tier": "Enterprise"}},
            "tenant": {"id": "t-9"},
            # the default paths are not consulted where others are set
            "public_metadata": {"plan": "free"}, "org_id": "o-default"})
        r = self.call(tok, "/claims/ask")
        self.assertAccepted(r, sub, "enterprise", "t-9")
        # the second plan path
        sub = self.uid()
        r = self.call(self.ks.mint("PS256", {"sub": sub, "plan": "team"}),
                      "/claims/ask")
        self.assertAccepted(r, sub, "team")
        # a default path only: default plan, no org
        sub = self.uid()
        r = self.call(self.ks.mint("PS256", {
            "sub": sub, "public_metadata": {"plan": "pro"},
            "org_id": "o-x"}), "/claims/ask")
        self.assertAccepted(r, sub, "free", None)
        # and the same token on /ask uses the defaults
        sub2 = self.uid()
        r = self.call(self.ks.mint("PS256", {
            "sub": sub2, "public_metadata": {"plan": "pro"},
            "org_id": "o-x"}))
        self.assertAccepted(r, sub2, "pro", "o-x")

    def test_issuer_and_audience_accepted(self):
        cases = [
            ("aud string", {"iss": ISS, "aud": AUD}),
            ("aud array", {"iss": ISS, "aud": ["api://other", AUD]}),
            ("second audience", {"iss": ISS, "aud": AZP}),
            ("azp, no aud", {"iss": ISS, "azp": AZP}),
            ("azp, aud of another service", {"iss": ISS, "aud": "x://y",
                                             "azp": AZP}),
            ("second issuer", {"iss": ISS2, "aud": AUD}),
        ]
        for label, claims in cases:
            with self.subTest(label):
                sub = self.uid()
                tok = self.ks.mint("ES384", dict(
                    claims, sub=sub, public_metadata={"plan": "pro"}))
                self.assertAccepted(self.call(tok, "/aud/ask"), sub, "pro")

    def test_scope_org_counts_the_tokens_org(self):
        org = self.uid("org")
        for i, alg in enumerate(("RS256", "ES256", "HS256")):
            sub = self.uid(alg)
            r = self.call(self.ks.mint(alg, {"sub": sub, "org_id": org}),
                          "/org/ask")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.seen["x-user-id"], sub)
            self.assertEqual(r.seen["x-org-id"], org)
            self.assertEqual(r.seen["x-usage-owner"], org)
            self.assertEqual(r.header("X-Usage-Remaining"),
                             str(FREE_MONTH - 1 - i))
            self.assertEqual(self.log_entry(r.tid)["owner"], org)
        # without an org claim, the user is the owner
        sub = self.uid()
        r = self.call(self.ks.mint("EdDSA", {"sub": sub}), "/org/ask")
        self.assertAccepted(r, sub)

    def test_no_token_falls_to_headers_then_anon_when_not_required(self):
        # trusted proxy's headers
        r = self.call(None, headers=user("hdr-alice", "team", "acme"))
        self.assertAccepted(r, "hdr-alice", "team", "acme")
        e = self.log_entry(r.tid)
        self.assertEqual((e["sub"], e["kid"], e["err"]), ("-", "-", "-"))
        # an Authorization that is not a bearer is no token either
        r = self.call(None, headers=user("hdr-bob", "pro"),
                      auth="Basic dXNlcjpwYXNz")
        self.assertAccepted(r, "hdr-bob", "pro")
        # untrusted peer: anonymous
        r = self.call(None, source="127.0.0.2")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.seen["x-usage-owner"].startswith("anon:"), r.seen)
        self.assertEqual(r.header("X-Plan"), "free")

    def test_required_on_without_token_is_401(self):
        for label, headers, source in (
                ("no token", [], "127.0.0.1"),
                ("trusted proxy headers", user("alice", "enterprise"),
                 "127.0.0.1"),
                ("untrusted peer", [], "127.0.0.2"),
                ("basic auth", user("alice", "enterprise"), "127.0.0.1")):
            with self.subTest(label):
                r = self.call(None, "/required/ask", headers, source=source,
                              auth="Basic YTpi" if label == "basic auth"
                              else None)
                self.assertEqual(r.status, 401, r)
                self.assertIn("application/json", r.header("Content-Type"))
                self.assertEqual(set(r.json), {"detail"}, r.json)
                self.assertRegex(r.json["detail"], r"(?i)token|bearer")
                www = r.header("WWW-Authenticate")
                self.assertIsNotNone(www, r)
                self.assertTrue(www.startswith("Bearer"), www)
                for h in ("X-Plan", "X-Usage-Remaining"):
                    self.assertIsNone(r.header(h), r)
        sub = self.uid()
        r = self.call(self.ks.mint("RS256", {"sub": sub}), "/required/ask")
        self.assertAccepted(r, sub)
        self.assertEqual(r.header("X-Usage-Remaining"), str(FREE_MONTH - 1))

    def test_required_on_without_token_gets_a_bare_challenge(self):
        # RFC 6750 section 3.1: when a request lacks any authentication
        # information, the challenge SHOULD NOT include an error code; the
        # module's own ngx_http_usage_gate_challenge says "a request with
        # no credentials at all gets the bare challenge".  invalid_token is
        # for a token that was sent and refused.
        r = self.call(None, "/required/ask")
        self.assertEqual(r.status, 401, r)
        www = r.header("WWW-Authenticate")
        self.assertIsNotNone(www, r)
        self.assertTrue(www.startswith("Bearer"), www)
        self.assertNotIn("invalid_token", www,
                         "no token was sent, yet the challenge says "
                         "invalid_token")

    def test_bearer_scheme_is_case_insensitive(self):
        sub = self.uid()
        tok = self.ks.mint("EdDSA", {"sub": sub})
        r = self.call(None, auth="bearer " + tok)
        self.assertAccepted(r, sub)
        r = self.call(None, auth="BEARER " + tok)
        self.assertAccepted(r, sub)
        self.assertEqual(r.header("X-Usage-Remaining"), "18")

    def test_variables_in_the_access_log(self):
        sub = self.uid()
        r = self.call(self.ks.mint("RS256", {"sub": sub}))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.log_entry(r.tid),
                         {"sub": sub, "kid": "rsa-1", "err": "-",
                          "status": "200", "owner": sub})
        # HS256 with the secret (no kid)
        r = self.call(self.ks.mint("HS256", {"sub": sub}))
        self.assertEqual(r.status, 200, r)
        e = self.log_entry(r.tid)
        self.assertEqual((e["sub"], e["kid"], e["err"]), (sub, "-", "-"))
        # refused: the kid is logged, the sub is not believed
        r = self.call(self.ks.mint("ES256", {"sub": sub,
                                             "exp": int(time.time()) - 600}))
        self.assertEqual(r.status, 401, r)
        self.assertEqual(self.log_entry(r.tid),
                         {"sub": "-", "kid": "ec-p256", "err": "expired",
                          "status": "401", "owner": "-"})
        r = self.call(hand({"alg": "none", "kid": "k-none"},
                           {"sub": sub}))
        e = self.log_entry(r.tid)
        self.assertEqual((e["sub"], e["err"], e["status"], e["owner"]),
                         ("-", "alg_none", "401", "-"))
        # a token that is required but absent
        r = self.call(None, "/required/ask")
        e = self.log_entry(r.tid)
        self.assertEqual((e["sub"], e["kid"], e["status"]),
                         ("-", "-", "401"))
        self.assertEqual(e["err"], "missing")
        # no token, not required: nothing
        r = self.call(None)
        e = self.log_entry(r.tid)
        self.assertEqual((e["sub"], e["kid"], e["err"], e["status"]),
                         ("-", "-", "-", "200"))


# ---------------------------------------------------------------- attacks

class JwtAttacks(JwtGate):
    """Every bad token: 401, counted nowhere, no fall back."""

    def forged_claims(self, sub):
        return {"sub": sub, "org_id": "evil",
                "public_metadata": {"plan": "enterprise"},
                "exp": int(time.time()) + 600}

    def test_alg_none_in_any_spelling(self):
        victim = self.uid("victim")
        claims = self.forged_claims(victim)
        pyjwt_none = pyjwt.encode(claims, None, algorithm="none")
        cases = [("PyJWT alg none", pyjwt_none)]
        for alg in ("none", "None", "NONE", "nOnE"):
            cases.append((f"{alg}, empty signature",
                          hand({"alg": alg, "typ": "JWT"}, claims)))
        real = self.ks.mint("RS256", claims)
        cases.append(("none with a real key's kid and signature",
                      hand({"alg": "none", "kid": "rsa-1"}, claims)
                      + split(real)[2]))
        cases.append(("None, HMAC of the secret as signature", hmac_token(
            self.ks.priv["hmac"], "HS256", {}, claims).replace(
            b64u_json({"alg": "HS256"}), b64u_json({"alg": "None"}), 1)))
        self.refuse_all([(label, tok, "alg_none", r"(?i)none|unsigned")
                         for label, tok in cases], victim)

    def test_tampered_payload(self):
        victim = self.uid("victim")
        cases = []
        for alg in ALL_ALGS:
            tok = self.ks.mint(alg, {"sub": victim,
                                     "public_metadata": {"plan": "free"}})
            h, p, s = tok.split(".")
            forged = dict(split(tok)[1], public_metadata={
                "plan": "enterprise"})
            cases.append((alg, f"{h}.{b64u_json(forged)}.{s}",
                          "bad_signature", r"(?i)signature"))
        self.refuse_all(cases, victim)

    def test_stripped_signature(self):
        victim = self.uid("victim")
        cases = []
        for alg in ("RS256", "ES256", "EdDSA", "HS256"):
            h, p, _ = self.ks.mint(alg, self.forged_claims(victim)).split(".")
            cases.append((alg, f"{h}.{p}.", "bad_signature",
                          r"(?i)signature"))
        self.refuse_all(cases, victim)

    def test_expired(self):
        victim = self.uid("victim")
        now = int(time.time())
        cases = [(alg, self.ks.mint(alg, {"sub": victim, "exp": exp}),
                  "expired", r"(?i)expired")
                 for alg, exp in (("RS256", now - 120), ("ES256", now - 61),
                                  ("HS256", now - 86400 * 365),
                                  ("EdDSA", 1))]
        self.refuse_all(cases, victim)

    def test_not_yet_valid(self):
        victim = self.uid("victim")
        now = int(time.time())
        cases = [(alg, self.ks.mint(alg, {"sub": victim, "nbf": nbf}),
                  "not_yet_valid", r"(?i)not (yet )?valid|nbf")
                 for alg, nbf in (("RS256", now + 120), ("ES384", now + 3600),
                                  ("HS512", now + 86400 * 365))]
        self.refuse_all(cases, victim)

    def test_leeway_of_60s_by_default(self):
        now = int(time.time())
        for label, claims in (("expired 30 s ago", {"exp": now - 30}),
                              ("valid from 30 s ahead", {"nbf": now + 30})):
            with self.subTest(label):
                sub = self.uid()
                r = self.call(self.ks.mint("RS256", dict(claims, sub=sub)))
                self.assertAccepted(r, sub)
        victim = self.uid("victim")
        self.refuse_all([
            ("expired 90 s ago",
             self.ks.mint("RS256", {"sub": victim, "exp": now - 90}),
             "expired", r"(?i)expired"),
            ("valid from 90 s ahead",
             self.ks.mint("RS256", {"sub": victim, "nbf": now + 90}),
             "not_yet_valid", r"(?i)not (yet )?valid|nbf")], victim)

    def test_wrong_issuer(self):
        victim = self.uid("victim")
        cases = [(label, self.ks.mint("ES256", dict(claims, sub=victim)),
                  "bad_issuer", r"(?i)issuer")
                 for label, claims in (
                     ("other issuer", {"iss": "https://evil.example",
                                       "aud": AUD}),
                     ("issuer in another case", {"iss": ISS.upper(),
                                                 "aud": AUD}),
                     ("issuer with a trailing slash", {"iss": ISS + "/",
                                                       "aud": AUD}),
                     ("no iss", {"aud": AUD}),
                     ("iss as an array", {"iss": [ISS], "aud": AUD}))]
        self.refuse_all(cases, victim, "/aud/ask")

    def test_wrong_audience(self):
        victim = self.uid("victim")
        cases = [(label, self.ks.mint("ES256", dict(claims, sub=victim,
                                                    iss=ISS)),
                  "bad_audience", r"(?i)audience")
                 for label, claims in (
                     ("other aud", {"aud": "api://other"}),
                     ("aud array without ours", {"aud": ["a://1", "b://2"]}),
                     ("other azp", {"azp": "https://evil.example"}),
                     ("no aud, no azp", {}),
                     ("aud prefix", {"aud": AUD + "x"}))]
        self.refuse_all(cases, victim, "/aud/ask")

    def test_unknown_kid(self):
        victim = self.uid("victim")
        cases = [(f"{alg} kid {kid}",
                  self.ks.mint(alg, {"sub": victim}, kid=kid),
                  "unknown_key", r"(?i)key")
                 for alg, kid in (("RS256", "no-such-kid"),
                                  ("ES256", "rsa-1"),   # kid of another kty
                                  ("EdDSA", "ec-p256"),
                                  ("PS384", ""))]
        self.refuse_all(cases, victim)

    def test_another_key_with_the_same_kid(self):
        victim = self.uid("victim")
        claims = self.forged_claims(victim)
        cases = [
            ("RS256 kid rsa-1", self.ks.mint("RS256", claims, kid="rsa-1",
                                             key="rsa_other")),
            ("PS256 kid rsa-1", self.ks.mint("PS256", claims, kid="rsa-1",
                                             key="rsa_other")),
            ("RS256 without kid", self.ks.mint("RS256", claims, kid=None,
                                               key="rsa_other")),
        ]
        self.refuse_all([(label, tok, "bad_signature", r"(?i)signature")
                         for label, tok in cases], victim)

    def test_hs256_keyed_with_the_rsa_public_pem(self):
        pem = open(self.key_paths["rsa_pem"], "rb").read()
        der = self.ks.pub("rsa").public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)
        jwks_text = open(self.key_paths["rsa_jwks"], "rb").read()
        secrets = (("PEM", pem), ("PEM without newline", pem.rstrip(b"\n")),
                   ("DER", der), ("JWKS text", jwks_text))
        for path, err in (
                # only the RSA key, HS256 not allowed (the default list)
                ("/rsa-jwks/ask", "alg_not_allowed"),
                # HS256 allowed, but no HMAC key: an RSA key never keys it
                ("/rsa-jwks-hs/ask", "unknown_key"),
                ("/rsa-pem-hs/ask", "unknown_key")):
            with self.subTest(path=path):
                victim = self.uid("victim")
                claims = self.forged_claims(victim)
                cases = []
                for label, secret in secrets:
                    for kid in ("rsa-1", None):
                        h = {"kid": kid} if kid else {}
                        cases.append((f"{label} kid={kid}",
                                      hmac_token(secret, "HS256", h, claims),
                                      err, r"(?i)algorithm|key"))
                self.refuse_all(cases, victim, path)
        # where a secret is configured as well, the PEM is simply wrong
        victim = self.uid("victim")
        self.refuse_all([("PEM vs the secret", hmac_token(
            pem, "HS256", {}, self.forged_claims(victim)),
            "bad_signature", r"(?i)signature")], victim)

    def test_es256_with_a_der_signature(self):
        victim = self.uid("victim")
        key = self.ks.priv["ec256"]
        tok = es256_der_token(key, {"kid": "ec-p256", "typ": "JWT"},
                              {"sub": victim, "exp": int(time.time()) + 600})
        self.refuse_all([("DER", tok, "bad_signature", r"(?i)signature")],
                        victim)
        # the same signature as JOSE's r || s is accepted: only the
        # encoding was at fault
        h, p, s = tok.split(".")
        r_, s_ = decode_dss_signature(base64.urlsafe_b64decode(
            s + "=" * (-len(s) % 4)))
        raw = r_.to_bytes(32, "big") + s_.to_bytes(32, "big")
        r = self.call(f"{h}.{p}.{b64u(raw)}")
        self.assertAccepted(r, victim)
        self.assertEqual(r.header("X-Usage-Remaining"), "18")

    def test_garbage(self):
        victim = self.uid("victim")
        cases = [(repr(g), g, "malformed", r"(?i)malformed")
                 for g in ("garbage", "a.b.c", "..", "....", "eyJ",
                           "Bearer", "null.null.null",
                           "%%%.%%%.%%%", "x" * 500,
                           b64u(os.urandom(300)),
                           ".".join(b64u(os.urandom(40)) for _ in range(3)))]
        self.refuse_all(cases, victim)

    def test_token_over_8kb(self):
        victim = self.uid("victim")
        big = self.ks.mint("RS256", {"sub": victim, "pad": "x" * 7000})
        self.assertGreater(len(big), 8192)
        huge = self.ks.mint("ES256", {"sub": victim, "pad": "y" * 20000})
        self.refuse_all([("9 KB", big, "too_large", r"8 ?192|large"),
                         ("27 KB", huge, "too_large", r"8 ?192|large"),
                         ("9 KB of garbage", "A" * 9000, "too_large",
                          r"8 ?192|large")], victim)
        # a signed token just under the limit is fine
        sub = self.uid()
        claims = {"sub": sub, "pad": ""}
        base = len(self.ks.mint("RS256", claims))
        claims["pad"] = "z" * ((8150 - base) * 3 // 4)
        tok = self.ks.mint("RS256", claims)
        self.assertTrue(8000 < len(tok) <= 8192, len(tok))
        self.assertAccepted(self.call(tok), sub)

    def test_json_nested_40_deep(self):
        victim = self.uid("victim")
        deep = "leaf"
        for _ in range(40):
            deep = {"n": deep}
        deep_list = []
        for _ in range(40):
            deep_list = [deep_list]
        cases = [
            ("payload, objects", self.ks.mint(
                "RS256", {"sub": victim, "n": deep}), "malformed",
             r"(?i)deep|nest"),
            ("payload, arrays", self.ks.mint(
                "HS256", {"sub": victim, "n": deep_list}), "malformed",
             r"(?i)deep|nest"),
            ("header", self.ks.mint("RS256", {"sub": victim},
                                    headers={"x": deep}), "malformed",
             r"(?i)deep|nest"),
            ("header, raw brackets", hand(b"[" * 2000 + b"]" * 2000,
                                          {"sub": victim}, b"x" * 10),
             "malformed", r"(?i)deep|nest|object"),
        ]
        self.refuse_all(cases, victim)

    def test_header_or_payload_not_a_json_object(self):
        victim = self.uid("victim")
        payload = {"sub": victim}
        sig = split(self.ks.mint("RS256", payload))[2]
        cases = [(f"header {h!r}", hand(h, payload, b"") + sig, "malformed",
                  r"(?i)header")
                 for h in (b"[]", b'"RS256"', b"123", b"null", b"true",
                           b'{"alg":"RS256"', b"", b"\x00\xff",
                           b'{"alg":"RS256","alg":"none"}')]
        # a correctly signed payload that is not an object
        key = self.ks.priv["rsa"]
        for p in (b"[1,2]", b'"sub"', b"42", b"{"):
            si = f"{b64u_json({'alg': 'RS256', 'kid': 'rsa-1'})}.{b64u(p)}"
            s = key.sign(si.encode(), padding.PKCS1v15(), hashes.SHA256())
            cases.append((f"payload {p!r}", f"{si}.{b64u(s)}", "malformed",
                          r"(?i)payload"))
        self.refuse_all(cases, victim)

    def test_invalid_base64url(self):
        victim = self.uid("victim")
        tok = self.ks.mint("RS256", self.forged_claims(victim))
        h, p, s = tok.split(".")
        bad_len = s + "A" * ((1 - len(s)) % 4)     # length 4k+1
        std = base64.b64encode(
            b'{"alg":"RS256","kid":"rsa-1"}>>>?').decode()
        self.assertTrue("+" in std and "/" in std and "=" not in std, std)
        self.assertEqual(len(bad_len) % 4, 1)
        cases = [
            ("header !", f"{h[:5]}!{h[6:]}.{p}.{s}"),
            ("header padded", f"{h}==.{p}.{s}"),
            ("payload +", f"{h}.{p[:8]}+{p[9:]}.{s}"),
            ("payload /", f"{h}.{p[:8]}/{p[9:]}.{s}"),
            ("payload space", f"{h}.{p[:8]} {p[9:]}.{s}"),
            ("signature *", f"{h}.{p}.{s[:10]}*{s[11:]}"),
            ("signature length 4k+1", f"{h}.{p}.{bad_len}"),
            ("standard base64 header (+ and /)", f"{std}.{p}.{s}"),
        ]
        self.refuse_all([(label, t, "malformed", r"(?i)base64|malformed")
                         for label, t in cases], victim)

    def test_two_and_four_segments(self):
        victim = self.uid("victim")
        tok = self.ks.mint("RS256", self.forged_claims(victim))
        h, p, s = tok.split(".")
        cases = [("two", f"{h}.{p}"), ("two, no payload", f"{h}."),
                 ("four", f"{tok}.{s}"), ("four, empty", f"{tok}."),
                 ("five (JWE-shaped)", f"{h}.{p}.{s}.{s}.{s}"),
                 ("one", h)]
        self.refuse_all([(label, t, "malformed", r"(?i)three|part|segment")
                         for label, t in cases], victim)

    def test_time_and_subject_claims_of_the_wrong_type(self):
        victim = self.uid("victim")
        now = int(time.time())
        cases = [
            ("exp as a string", {"sub": victim, "exp": str(now + 600)}),
            ("exp of the past as a string", {"sub": victim, "exp": "1"}),
            ("nbf as a string", {"sub": victim, "nbf": str(now + 9999)}),
            ("exp as an object", {"sub": victim, "exp": {"t": now + 600}}),
            ("sub as a number", {"sub": 12345}),
            ("sub with a space", {"sub": "a b"}),
        ]
        self.refuse_all([(label, self.ks.mint("RS256", c, ttl=None),
                          "malformed", r"(?i)malformed")
                         for label, c in cases], victim)

    def test_keys_embedded_in_the_header_are_not_trusted(self):
        victim = self.uid("victim")
        claims = self.forged_claims(victim)
        evil_jwk = jwk_of(self.ks.pub("rsa_other"), "rsa-1")
        cases = [
            ("jwk", {"jwk": evil_jwk}, "rsa-1"),
            ("jwk, no kid", {"jwk": evil_jwk}, None),
            ("jku", {"jku": "http://127.0.0.1:9/jwks.json"}, "evil"),
            ("x5u", {"x5u": "http://127.0.0.1:9/cert.pem"}, None),
        ]
        self.refuse_all([
            (label, self.ks.mint("RS256", claims, kid=kid, key="rsa_other",
                                 headers=h),
             "bad_signature" if kid in ("rsa-1", None) else "unknown_key",
             r"(?i)signature|key") for label, h, kid in cases], victim)

    def test_crit_header(self):
        victim = self.uid("victim")
        claims = self.forged_claims(victim)
        cases = [(f"crit {c!r}", self.ks.mint(alg, claims, headers={
            "crit": c, "exp": 1}), "crit", r"(?i)crit")
            for alg, c in (("RS256", ["exp"]), ("ES256", ["b64"]),
                           ("HS256", []), ("EdDSA", "exp"))]
        self.refuse_all(cases, victim)

    def test_bad_token_never_falls_back_to_headers_or_anon(self):
        victim = self.uid("victim")
        bad = self.ks.mint("RS256", self.forged_claims(victim),
                           key="rsa_other")
        expired = self.ks.mint("ES256", {"sub": victim, "exp": 1})
        proxy = user(victim, "enterprise", "acme")
        self.refuse_all([
            ("bad signature + trusted proxy headers", bad, "bad_signature",
             r"(?i)signature", proxy),
            ("expired + trusted proxy headers", expired, "expired",
             r"(?i)expired", proxy),
            ("garbage + trusted proxy headers", "garbage", "malformed",
             r"(?i)malformed", proxy),
            ("alg none + trusted proxy headers",
             hand({"alg": "none"}, {"sub": victim}), "alg_none",
             r"(?i)none", proxy),
        ], victim)
        # from an untrusted peer: no anonymous pass either
        r = self.call(bad, source="127.0.0.2")
        self.assertRefused(r, "bad_signature", r"(?i)signature")
        # and the proxy's headers alone still work
        r = self.call(None, headers=proxy)
        self.assertAccepted(r, victim, "enterprise", "acme")

    def test_secret_too_short_for_hs384_and_hs512(self):
        # a 40-byte secret keys HS256 only (RFC 7518 section 3.2)
        secret = self.SHORT_SECRET
        sub = self.uid()
        tok = pyjwt.encode({"sub": sub, "exp": int(time.time()) + 300},
                           secret, algorithm="HS256")
        self.assertAccepted(self.call(tok, "/short-secret/ask"), sub)
        victim = self.uid("victim")
        cases = []
        for alg in ("HS384", "HS512"):
            t = pyjwt.encode({"sub": victim, "exp": int(time.time()) + 300},
                             secret, algorithm=alg)
            cases.append((alg, t, ("alg_not_allowed", "unknown_key"),
                          r"(?i)algorithm|key"))
        # the secret with the newline the file would have had: wrong key
        cases.append(("secret plus newline", pyjwt.encode(
            {"sub": victim, "exp": int(time.time()) + 300},
            self.ks.priv["hmac"] + b"\n", algorithm="HS256"),
            "bad_signature", r"(?i)signature"))
        before = self.counts()
        for label, t, errs, detail_re in cases:
            with self.subTest(label):
                r = self.call(t, "/short-secret/ask" if label != (
                    "secret plus newline") else "/ask")
                self.assertEqual(r.status, 401, r)
                errs = errs if isinstance(errs, tuple) else (errs,)
                self.assertIn(self.log_entry(r.tid)["err"], errs)
                self.assertRegex(r.json["detail"], detail_re)
        after = self.counts()
        self.assertEqual(after[("none", "unauthorized")]
                         - before[("none", "unauthorized")], len(cases))
        self.assertEqual(after[("free", "allowed")],
                         before[("free", "allowed")])
        r = self.call(pyjwt.encode(
            {"sub": victim, "exp": int(time.time()) + 300}, secret,
            algorithm="HS256"), "/short-secret/ask")
        self.assertAccepted(r, victim)
        self.assertEqual(r.header("X-Usage-Remaining"), str(FREE_MONTH - 1))


# ---------------------------------------------------------------- cache

CACHE_HTTP = JWT_GATE_HTTP + LOG_FORMAT + """
    usage_gate_jwt_cache        {{cache}};
    usage_gate_jwt_keys         {{keys}}/jwks.json;
    usage_gate_jwt_secret_file  {{keys}}/hs.secret;
    usage_gate_jwt_leeway       0s;

    server {
        listen 127.0.0.1:{{port}};
        server_name localhost;
        access_log {{dir}}/jwt.log jwt;
""" + loc("/ask") + loc("/aud/ask", f"""
            usage_gate_jwt_issuer   {ISS};""") + loc("/leeway/ask", """
            usage_gate_jwt_leeway   60s;""") + """
        location = /m {
            usage_gate_metrics;
        }
    }
"""


class JwtCacheOn(JwtGate):
    """The per-worker cache of verified tokens (one worker, so that the
    second request of a token is a cache hit)."""

    HTTP = CACHE_HTTP.replace("{{cache}}", "64")
    WORKERS = 1

    def test_same_token_twice_is_accepted_and_counted_twice(self):
        for alg in ("RS256", "ES256", "EdDSA", "HS256"):
            with self.subTest(alg=alg):
                sub = self.uid(alg)
                tok = self.ks.mint(alg, {"sub": sub, "org_id": "o",
                                         "public_metadata": {"plan": "free"}})
                for i in range(3):
                    r = self.call(tok)
                    self.assertAccepted(r, sub, "free", "o")
                    self.assertEqual(r.header("X-Usage-Remaining"),
                                     str(FREE_MONTH - 1 - i))
                    self.assertEqual(self.log_entry(r.tid)["sub"], sub)
                # the cached token with its signature changed: refused
                h, p, s = tok.split(".")
                s2 = ("B" if s[0] != "B" else "C") + s[1:]
                r = self.call(f"{h}.{p}.{s2}")
                self.assertRefused(r, "bad_signature", r"(?i)signature")

    def test_token_expiring_while_cached_is_refused_after_exp(self):
        sub = self.uid()
        exp = int(time.time()) + 2
        tok = self.ks.mint("ES256", {"sub": sub, "exp": exp})
        # the same exp where the leeway is 60 s
        tok_lee = self.ks.mint("EdDSA", {"sub": sub, "exp": exp})
        for i in range(2):
            r = self.call(tok)
            self.assertAccepted(r, sub)
            self.assertAccepted(self.call(tok_lee, "/leeway/ask"), sub)
        left = exp + 0.3 - time.time()
        if left > 0:
            time.sleep(left)
        r = self.call(tok)
        self.assertRefused(r, "expired", r"(?i)expired")
        # and stays refused
        r = self.call(tok)
        self.assertRefused(r, "expired", r"(?i)expired")
        # within the leeway the cached token's expiry does not refuse it
        r = self.call(tok_lee, "/leeway/ask")
        self.assertAccepted(r, sub)
        self.assertEqual(r.header("X-Usage-Remaining"), str(FREE_MONTH - 5))

    def test_more_tokens_than_the_cache_holds(self):
        subs = [self.uid(str(i)) for i in range(100)]
        toks = [self.ks.mint("HS256", {"sub": s}) for s in subs]
        for rnd in range(2):
            for sub, tok in zip(subs, toks):
                r = self.call(tok)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.seen["x-usage-owner"], sub)
                self.assertEqual(r.header("X-Usage-Remaining"),
                                 str(FREE_MONTH - 1 - rnd))

    def test_cached_token_is_checked_against_each_locations_policy(self):
        sub = self.uid()
        tok = self.ks.mint("RS256", {"sub": sub})       # no iss
        for _ in range(2):
            self.assertAccepted(self.call(tok), sub)
        r = self.call(tok, "/aud/ask")
        self.assertRefused(r, "bad_issuer", r"(?i)issuer")
        tok2 = self.ks.mint("RS256", {"sub": sub, "iss": ISS})
        self.assertAccepted(self.call(tok2, "/aud/ask"), sub)
        self.assertAccepted(self.call(tok2, "/aud/ask"), sub)


class JwtCacheOff(JwtGate):
    HTTP = CACHE_HTTP.replace("{{cache}}", "off")
    WORKERS = 1

    def test_cache_off_still_verifies_every_time(self):
        sub = self.uid()
        tok = self.ks.mint("ES256", {"sub": sub, "exp": int(time.time()) + 2,
                                     "public_metadata": {"plan": "free"}})
        for i in range(3):
            r = self.call(tok)
            self.assertAccepted(r, sub)
            self.assertEqual(r.header("X-Usage-Remaining"),
                             str(FREE_MONTH - 1 - i))
        h, p, s = tok.split(".")
        r = self.call(f"{h}.{b64u_json(dict(split(tok)[1], sub='x'))}.{s}")
        self.assertRefused(r, "bad_signature", r"(?i)signature")
        r = self.call(tok, "/aud/ask")
        self.assertRefused(r, "bad_issuer", r"(?i)issuer")
        left = split(tok)[1]["exp"] + 0.3 - time.time()
        if left > 0:
            time.sleep(left)
        r = self.call(tok)
        self.assertRefused(r, "expired", r"(?i)expired")


class JwtReload(GateTestCase):
    """usage_gate_jwt_keys is reread on reload: a key taken out of the
    JWKS stops verifying, even for a token a worker had cached."""

    def test_key_rotation_on_reload(self):
        ks = KeySet.shared()
        d = tempfile.mkdtemp(prefix="ug-jwt-keys-")
        self.addCleanup(shutil.rmtree, d, True)
        ks.write(d)
        jwks = os.path.join(d, "jwks.json")
        http = JWT_GATE_HTTP + """
    usage_gate_jwt_keys {{keys}}/jwks.json;
    server {
        listen 127.0.0.1:{{port}};
""" + loc("/ask") + """
    }
"""
        ng = self.nginx(http, vars={"keys": d}, workers=1)
        old = ks.mint("RS256", {"sub": "rot-old"})
        new = ks.mint("RS256", {"sub": "rot-new"}, kid="rsa-2",
                      key="rsa_other")
        for _ in range(2):
            r = ask(self.port, bearer(old))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.seen["x-user-id"], "rot-old")
        r = ask(self.port, bearer(new))
        self.assertEqual(r.status, 401, r)
        # rotate: rsa-1 out, rsa-2 (the other key) in
        keys = [k for k in ks.jwks()["keys"] if k["kid"] != "rsa-1"]
        keys.append(jwk_of(ks.pub("rsa_other"), "rsa-2"))
        with open(jwks, "w") as f:
            json.dump({"keys": keys}, f)
        ng.reload()
        r = ask(self.port, bearer(new))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.seen["x-user-id"], "rot-new")
        r = ask(self.port, bearer(old))
        self.assertEqual(r.status, 401, r)
        self.assertRegex(r.json["detail"], r"(?i)key")
        self.assertEqual(r.header("WWW-Authenticate"),
                         challenge_of(r.json["detail"]))


# ---------------------------------------------------------------- nginx -t

class JwtConfigErrors(unittest.TestCase):
    """`nginx -t` refuses a JWT configuration that cannot work, and says
    which directive and what is wrong."""

    @classmethod
    def setUpClass(cls):
        cls.ks = KeySet.shared()
        cls.keydir = tempfile.mkdtemp(prefix="ug-jwt-keys-")
        cls.key_paths = cls.ks.write(cls.keydir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.keydir, ignore_errors=True)

    def nginx_t(self, http_extra, loc_extra="", identity="jwt header anon"):
        http = GATE_HTTP.replace(
            "usage_gate_identity  header anon;",
            f"usage_gate_identity  {identity};") + http_extra + """
    server {
        listen 127.0.0.1:{{port}};
""" + loc("/ask", loc_extra) + """
    }
"""
        ng = Nginx(http, vars={"port": 9, "port2": 9, "app": "127.0.0.1:9",
                               "keys": self.keydir}, workers=1)
        self.addCleanup(ng.cleanup)
        ok, out = ng.test_config()
        return ng, ok, out

    def write(self, name, data):
        p = os.path.join(self.keydir, name)
        with open(p, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return p

    def assertRefusedAt(self, ng, ok, out, marker, *patterns):
        self.assertFalse(ok, f"nginx -t accepted it:\n{out}")
        line = ng.line_of(marker)
        self.assertRegex(out, rf"\[emerg\].*in {re.escape(ng.conf_path)}"
                              rf":{line}\b", out)
        for p in patterns:
            self.assertRegex(out, p)

    def test_a_good_configuration_passes(self):
        ng, ok, out = self.nginx_t(
            "usage_gate_jwt_keys {{keys}}/jwks.json;\n"
            "usage_gate_jwt_keys {{keys}}/rsa.pem;\n"
            "usage_gate_jwt_secret_file {{keys}}/hs.secret;\n"
            "usage_gate_jwt_algorithms RS256 ES256 EdDSA HS512;\n"
            "usage_gate_jwt_cache 10;\n")
        self.assertTrue(ok, out)

    def test_missing_keys_file(self):
        path = os.path.join(self.keydir, "missing-jwks.json")
        ng, ok, out = self.nginx_t(f"usage_gate_jwt_keys {path};\n")
        self.assertRefusedAt(ng, ok, out, "usage_gate_jwt_keys",
                             r"usage_gate_jwt_keys",
                             re.escape(path), r"No such file")

    def test_missing_secret_file(self):
        path = os.path.join(self.keydir, "missing.secret")
        ng, ok, out = self.nginx_t(f"usage_gate_jwt_secret_file {path};\n")
        self.assertRefusedAt(ng, ok, out, "usage_gate_jwt_secret_file",
                             r"usage_gate_jwt_secret_file", re.escape(path))

    def test_malformed_jwks(self):
        good_rsa = self.ks.jwks()["keys"][0]
        small = rsa.generate_private_key(65537, 1024).public_key()
        cases = [
            ("not JSON", '{"keys": [', r"(?i)json"),
            ("keys empty", '{"keys": []}', r'"keys" is empty'),
            ("keys not an array", '{"keys": {}}', r'"keys" is not an array'),
            ("EC P-521", json.dumps({"keys": [{
                "kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}]}),
             r'key 1: .*crv "P-521"'),
            ("RSA without n", json.dumps({"keys": [{"kty": "RSA",
                                                    "e": "AQAB"}]}),
             r'key 1: no "n"'),
            ("second key of unknown kty", json.dumps(
                {"keys": [good_rsa, {"kty": "XYZ", "kid": "x"}]}),
             r'key 2: unsupported kty "XYZ"'),
            ("RSA 1024 bits", json.dumps({"keys": [jwk_of(small, "s")]}),
             r"key 1: RSA modulus of 1024 bits"),
            ("EC point not on the curve", json.dumps({"keys": [{
                "kty": "EC", "crv": "P-256", "x": b64u(b"\x01" * 32),
                "y": b64u(b"\x02" * 32)}]}), r"key 1: .*(not on|point)"),
            ("neither JSON nor PEM", "hello", r"neither JWKS JSON nor a PEM"),
            ("PEM private key", self.ks.priv["ec256"].private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()).decode(),
             r"(?i)not accepted|public|no \""),
        ]
        for label, text, what in cases:
            with self.subTest(label):
                path = self.write(f"bad-{abs(hash(label))}.json", text)
                ng, ok, out = self.nginx_t(f"usage_gate_jwt_keys {path};\n")
                self.assertRefusedAt(
                    ng, ok, out, "usage_gate_jwt_keys",
                    rf'usage_gate_jwt_keys: "{re.escape(path)}": ', what)

    def test_jwt_identity_without_a_key(self):
        ng, ok, out = self.nginx_t("")
        self.assertRefusedAt(ng, ok, out, "usage_gate_identity",
                             r"usage_gate_identity: the jwt source",
                             r"usage_gate_jwt_keys or "
                             r"usage_gate_jwt_secret_file")
        # jwt settings without a key anywhere
        ng, ok, out = self.nginx_t("usage_gate_jwt_issuer https://x;\n")
        self.assertFalse(ok, out)
        self.assertRegex(out, r"without a key|needs usage_gate_jwt_keys")

    def test_unknown_algorithm_name(self):
        for name in ("XS999", "none", "rs256", "ES512", "HS1"):
            with self.subTest(name):
                ng, ok, out = self.nginx_t(
                    "usage_gate_jwt_keys {{keys}}/jwks.json;\n"
                    f"usage_gate_jwt_algorithms RS256 {name};\n")
                self.assertRefusedAt(ng, ok, out, "usage_gate_jwt_algorithms",
                                     rf'usage_gate_jwt_algorithms: unknown '
                                     rf'algorithm "{name}"')

    def test_secret_shorter_than_32_bytes(self):
        path = self.write("short31.secret", b"k" * 31 + b"\n")
        ng, ok, out = self.nginx_t(f"usage_gate_jwt_secret_file {path};\n")
        self.assertRefusedAt(ng, ok, out, "usage_gate_jwt_secret_file",
                             r"usage_gate_jwt_secret_file", re.escape(path),
                             r"31 bytes")


if __name__ == "__main__":
    unittest.main()
