"""Identity and counting on nginx's other request paths: error_page after
a refusal, subrequests (SSI includes, mirror), auth_request, CORS
preflights, reserved anonymous ids, log escaping and a full zone.

Every test puts a recording upstream (echo.EchoServer) behind nginx and
asserts what that upstream saw and what the gate counted (through
X-Usage-Remaining on a later request of the same owner, or the metrics).

The rule under test: the gate owns X-User-Id, X-Org-Id, X-Plan and the
X-Usage-* request headers on every request that enters a gated location,
whatever the outcome; a subrequest is never counted and carries only the
identity the gate resolved for its main request.
"""

import os
import re
import shutil
import tempfile

from echo import EchoServer, EchoTestCase
from harness import GateTestCase, anon_owner, ask, request, wait_for
from jwt_keys import KeySet

UNTRUSTED = "127.0.0.2"

FORGED = [("X-User-Id", "user_victim"), ("X-Org-Id", "org_victim"),
          ("X-Plan", "enterprise"), ("X-Usage-Owner", "user_victim"),
          ("X-Usage-Month-Used", "0"),
          ("X-Usage-Month-Remaining", "99999")]

OWNED = ("X-User-Id", "X-Org-Id", "X-Plan", "X-Usage-Owner",
         "X-Usage-Month-Used", "X-Usage-Month-Remaining")

HTTP = """
    usage_gate_zone  usage:1m;
    usage_gate_plan  free        month=5   minute=100;
    usage_gate_plan  enterprise  month=off minute=600;
    usage_gate_default_plan  free;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt  "sentientiq";

    server {
        listen 127.0.0.1:{{port}};

        location /api/ {
            usage_gate usage;
            error_page 402 429 = @fallback;
            proxy_pass http://{{echo}};
        }

        location /strict/ {
            usage_gate usage;
            usage_gate_identity header;
            error_page 401 = @login;
            proxy_pass http://{{echo}};
        }

        location /jwt/ {
            usage_gate usage;
            usage_gate_identity jwt;
            usage_gate_jwt_keys {{keys}}/jwks.json;
            error_page 401 = @login;
            proxy_pass http://{{echo}};
        }

        location /gfb/ {
            usage_gate usage;
            error_page 402 429 = /gated-fallback/;
            proxy_pass http://{{echo}};
        }

        location /gated-fallback/ {
            usage_gate usage;
            proxy_pass http://{{echo}};
        }

        location @login {
            rewrite ^ /login break;
            proxy_pass http://{{echo}};
        }

        location @fallback {
            rewrite ^ /fallback break;
            proxy_pass http://{{echo}};
        }

        location /page/ {
            ssi on;
            root {{html}};
        }

        location /mirrored/ {
            usage_gate usage;
            mirror /mirror;
            proxy_pass http://{{echo}};
        }

        location = /mirror {
            internal;
            usage_gate usage;
            proxy_pass http://{{echo}}/mirror$request_uri;
        }

        location /count-preflight/ {
            usage_gate usage;
            usage_gate_preflight count;
            proxy_pass http://{{echo}};
        }
    }

    server {
        listen 127.0.0.1:{{port2}};
        usage_gate usage;

        location /api/ {
            auth_request /auth;
            proxy_pass http://{{echo}};
        }

        location = /auth {
            internal;
            proxy_pass http://{{echo}}/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }
    }
"""


class RequestPaths(GateTestCase):

    WORKERS = 1

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.echo = EchoServer().start()
        cls.ks = KeySet.shared()
        cls.keydir = tempfile.mkdtemp(prefix="ug-paths-keys-")
        os.chmod(cls.keydir, 0o755)
        cls.ks.write(cls.keydir)
        cls.html = tempfile.mkdtemp(prefix="ug-paths-html-")
        os.chmod(cls.html, 0o755)
        os.makedirs(os.path.join(cls.html, "page"))
        os.chmod(os.path.join(cls.html, "page"), 0o755)
        page = os.path.join(cls.html, "page", "index.html")
        with open(page, "w") as f:
            f.write("<p>\n"
                    '<!--# include virtual="/api/one" -->\n'
                    '<!--# include virtual="/api/two" -->\n'
                    '<!--# include virtual="/api/three" -->\n'
                    "</p>\n")
        os.chmod(page, 0o644)

    @classmethod
    def tearDownClass(cls):
        cls.echo.stop()
        shutil.rmtree(cls.keydir, ignore_errors=True)
        shutil.rmtree(cls.html, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        self.ng = self.nginx(HTTP, vars={"echo": self.echo.addr,
                                         "keys": self.keydir,
                                         "html": self.html})
        self.echo.take()

    # -- helpers

    def assertNoForged(self, seen, why):
        for name, value in FORGED:
            self.assertNotIn(value, seen.all(name),
                             f"{why}: the upstream saw the client's "
                             f"{name}: {value} in {seen}")

    def remaining(self, headers, source="127.0.0.1", path="/api/probe"):
        """Spends one unit and returns what is left afterwards."""
        r = ask(self.port, headers, source=source, path=path)
        self.assertEqual(r.status, 200, r)
        return int(r.header("X-Usage-Remaining"))

    # -- error_page

    def test_401_to_a_named_location_carries_no_forged_identity(self):
        r = ask(self.port, FORGED, source=UNTRUSTED, path="/strict/x")
        self.assertEqual(r.status, 200, r)        # @login answered
        seen = self.echo.take()
        self.assertEqual([s.path for s in seen], ["/login"], seen)
        self.assertNoForged(seen[0], "error_page 401 = @login")
        for name in OWNED:
            self.assertEqual(seen[0].all(name), [], f"{name} in {seen[0]}")

    def test_bad_token_then_error_page_carries_no_forged_identity(self):
        hdrs = FORGED + [("Authorization", "Bearer not.a.token")]
        r = ask(self.port, hdrs, source=UNTRUSTED, path="/jwt/x")
        self.assertEqual(r.status, 200, r)
        seen = self.echo.take()
        self.assertEqual([s.path for s in seen], ["/login"], seen)
        self.assertNoForged(seen[0], "bad token, error_page 401")

    def test_402_to_a_named_fallback_carries_the_gates_identity(self):
        owner = anon_owner(UNTRUSTED)
        for _ in range(5):
            r = ask(self.port, FORGED, source=UNTRUSTED, path="/api/x")
            self.assertEqual(r.status, 200, r)
        r = ask(self.port, FORGED, source=UNTRUSTED, path="/api/x")
        self.assertEqual(r.status, 200, r)        # @fallback answered
        seen = self.echo.take()
        self.assertEqual([s.path for s in seen],
                         ["/api/x"] * 5 + ["/fallback"], seen)
        for s in seen:
            self.assertNoForged(s, "quota reached, error_page 402")
            self.assertEqual(s.all("X-User-Id"), [owner], s)
            self.assertEqual(s.all("X-Plan"), ["free"], s)

    def test_402_to_a_gated_fallback_is_not_counted_again(self):
        owner = anon_owner(UNTRUSTED)
        for _ in range(5):
            ask(self.port, FORGED, source=UNTRUSTED, path="/gfb/x")
        r = ask(self.port, FORGED, source=UNTRUSTED, path="/gfb/x")
        self.assertEqual(r.status, 200, r)
        seen = self.echo.take()
        self.assertEqual(seen[-1].path, "/gated-fallback/", seen)
        self.assertNoForged(seen[-1], "error_page 402 to a gated location")
        self.assertEqual(seen[-1].all("X-User-Id"), [owner])
        # the owner is at its limit: the fallback did not pass the gate
        # as a call of its own, and a direct call is refused
        r = ask(self.port, FORGED, source=UNTRUSTED,
                path="/gated-fallback/y")
        self.assertEqual(r.status, 402, r)

    # -- subrequests

    def test_ssi_includes_are_not_counted_and_carry_no_forged_identity(self):
        r = request(self.port, "/page/index.html", headers=FORGED,
                    source=UNTRUSTED)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body.count(b'"path"'), 3, r.body)
        seen = self.echo.take()
        self.assertEqual(sorted(s.path for s in seen),
                         ["/api/one", "/api/three", "/api/two"], seen)
        for s in seen:
            self.assertNoForged(s, "SSI include")
        # nothing was counted for the page's owner
        self.assertEqual(self.remaining(FORGED, source=UNTRUSTED), 4)

    def test_mirror_is_counted_once_and_carries_the_gates_identity(self):
        owner = anon_owner(UNTRUSTED)
        r = ask(self.port, FORGED, source=UNTRUSTED, path="/mirrored/x")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Usage-Remaining"), "4")
        seen = wait_for(lambda: (len(self.echo.requests) >= 2
                                 and self.echo.take()), 5,
                        what="the request and its mirror upstream")
        self.assertEqual(sorted(s.path for s in seen),
                         ["/mirror/mirrored/x", "/mirrored/x"], seen)
        for s in seen:
            self.assertNoForged(s, "mirror")
            self.assertEqual(s.all("X-User-Id"), [owner], s)
            self.assertEqual(s.all("X-Plan"), ["free"], s)
        self.assertEqual(self.remaining(FORGED, source=UNTRUSTED), 3)

    # -- auth_request

    def test_auth_request_counts_once_and_denies_with_the_gates_answer(self):
        hdrs = [("X-User-Id", "auth-user")]
        for i in range(5):
            r = ask(self.port2, hdrs, path="/api/x")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("X-Usage-Remaining"), str(4 - i))
        r = ask(self.port2, hdrs, path="/api/x")
        self.assertEqual(r.status, 402, r)
        self.assertIsNotNone(r.json, r)
        self.assertIn("detail", r.json)
        self.assertIsNotNone(r.header("Retry-After"), r)
        seen = self.echo.take()
        self.assertEqual([s.path for s in seen].count("/auth"), 6, seen)
        self.assertEqual([s.path for s in seen].count("/api/x"), 5, seen)

    # -- reserved anonymous ids

    def test_anon_ids_from_a_trusted_header_are_refused(self):
        for name in ("X-User-Id", "X-Org-Id"):
            hdrs = [("X-User-Id", "someone"), (name, "anon:" + "0" * 24)]
            if name == "X-User-Id":
                hdrs = hdrs[1:]
            r = ask(self.port, hdrs, path="/api/x")
            self.assertEqual(r.status, 400, r)
            self.assertRegex(r.json["detail"], r"anon:.*reserved")
        self.assertEqual(self.echo.take(), [])

    def test_anon_sub_from_a_token_is_refused(self):
        victim = anon_owner(UNTRUSTED)
        tok = self.ks.mint("RS256", {"sub": victim})
        r = ask(self.port, [("Authorization", f"Bearer {tok}")],
                path="/jwt/x")
        self.assertEqual(r.status, 200, r)             # error_page 401
        seen = self.echo.take()
        self.assertEqual([s.path for s in seen], ["/login"])
        # the anonymous client's quota is untouched
        self.assertEqual(self.remaining([], source=UNTRUSTED), 4)

    # -- log lines

    def test_owner_ids_are_escaped_in_the_error_log(self):
        hdrs = [("X-User-Id", 'evil"user\\x')]
        for _ in range(5):
            self.assertEqual(ask(self.port, hdrs, path="/api/x").status, 200)
        r = ask(self.port, hdrs, path="/api/x")
        self.assertEqual(r.status, 200, r)      # @fallback
        log = self.ng.error_log()
        self.assertIn('evil\\"user\\\\x', log)
        self.assertNotIn('evil"user', log)

    # -- CORS preflights

    def preflight(self, path, hdrs):
        return request(self.port, path, "OPTIONS", headers=hdrs + [
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "POST")])

    def test_preflight_is_not_counted_and_never_refused(self):
        hdrs = [("X-User-Id", "cors-user")]
        for _ in range(5):
            self.assertEqual(self.preflight("/api/x", hdrs).status, 200)
        self.assertEqual(self.remaining(hdrs), 4)
        for _ in range(4):
            self.assertEqual(ask(self.port, hdrs, path="/api/x").status,
                             200)
        # at the limit: a call is refused, a preflight still passes
        r = ask(self.port, hdrs, path="/gated-fallback/x")
        self.assertEqual(r.status, 402, r)
        self.assertEqual(self.preflight("/api/x", hdrs).status, 200)
        # and an OPTIONS that is not a preflight is a call
        r = request(self.port, "/gated-fallback/x", "OPTIONS", headers=hdrs)
        self.assertEqual(r.status, 402, r)

    def test_preflight_is_counted_when_asked_to(self):
        hdrs = [("X-User-Id", "cors-counted")]
        for _ in range(2):
            r = self.preflight("/count-preflight/x", hdrs)
            self.assertEqual(r.status, 200, r)
        self.assertEqual(self.remaining(hdrs), 2)


FULL_HTTP = """
    usage_gate_zone  small:32k {zone_args};
    usage_gate_plan  free  month=100 minute=100;
    usage_gate_default_plan  free;
    usage_gate_identity  header;
    usage_gate_trusted_proxies  127.0.0.1;

    server {{
        listen 127.0.0.1:{{{{port}}}};
        location /api/ {{
            usage_gate small;
            proxy_pass http://{{{{echo}}}};
        }}
        location = /metrics {{ usage_gate_metrics; }}
    }}
"""


class FullZone(EchoTestCase):

    WORKERS = 1

    def flood(self, zone_args, n=300):
        self.nginx(FULL_HTTP.format(zone_args=zone_args),
                   vars={"echo": self.echo.addr},
                   expect_log=[r"is full"])
        statuses = []
        for i in range(n):
            r = ask(self.port, [("X-User-Id", f"flood-{i:05d}")],
                    path="/api/x")
            statuses.append(r.status)
        metrics = request(self.port, "/metrics").body.decode()
        owners = int(re.search(r'^usage_gate_owners\{zone="small"\} (\d+)',
                               metrics, re.M).group(1))
        return statuses, owners, metrics

    def result_count(self, metrics, result):
        total = 0
        for m in re.finditer(r'^usage_gate_requests_total\{([^}]*)\} (\d+)',
                             metrics, re.M):
            if f'result="{result}"' in m.group(1):
                total += int(m.group(2))
        return total

    def test_new_owners_share_an_overflow_minute_bucket(self):
        # a bucket of 2 a minute: one unit back every 30 s, far longer
        # than the flood takes
        statuses, owners, metrics = self.flood("overflow_minute=2")
        self.assertLess(owners, 300, "the zone was meant to fill up")
        # every owner that fits passes; past that, 2 a minute in all
        self.assertEqual(statuses.count(200), owners + 2, statuses)
        self.assertEqual(statuses.count(429), 300 - owners - 2)
        self.assertEqual(self.result_count(metrics, "overflow"), 2)
        self.assertEqual(self.result_count(metrics, "overflow_rate"),
                         300 - owners - 2)

    def test_full_deny_answers_503(self):
        statuses, owners, metrics = self.flood("full=deny")
        self.assertLess(owners, 300)
        self.assertEqual(statuses.count(200), owners)
        self.assertEqual(statuses.count(503), 300 - owners)
        self.assertEqual(self.result_count(metrics, "full"), 300 - owners)
