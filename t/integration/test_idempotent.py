"""Writes whose answer is lost are applied at most once.

A small HTTP proxy on loopback stands between nginx and dynalite: it
forwards every request, but for every 5th UpdateItem it lets dynalite
apply the write and then loses the answer: it resets the client's
connection, or holds the answer back past nginx's timeout= and closes.
nginx cannot tell that from a write that never arrived; the table must
still count each allowed request exactly once, for the requests' own
writes and for the sync's (async mode, plans without a monthly limit,
and the give-backs of unused claims).
"""

import http.client
import json
import socket
import threading
import time

from harness import wait_for
from test_dynamodb import CREDS, DynamoDBCase, Load, ask, ddb_http

RESET_EVERY = 5


class ApplyThenReset:
    """127.0.0.1:<own port> in front of dynalite: one upstream request per
    client request; every RESET_EVERY-th UpdateItem is answered with a
    connection reset after dynalite has applied it.  With stall, that
    answer is held back for stall seconds instead, then the connection
    closed; with only, just the UpdateItems whose body only() accepts
    are counted for it."""

    def __init__(self, upstream: int, stall: float = 0.0, only=None,
                 every: int = RESET_EVERY):
        self.upstream = upstream
        self.stall = stall
        self.only = only
        self.every = every
        self.lock = threading.Lock()
        self.updates = 0
        self.resets = 0
        self.gets = 0
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(128)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.closing.set()
        self.thread.join(2)
        self.lsock.close()

    def _accept(self):
        while not self.closing.is_set():
            try:
                c, _ = self.lsock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    @staticmethod
    def _read_request(f):
        line = f.readline()
        if not line:
            return None
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers = []
        length = 0
        while True:
            h = f.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            name, value = h.decode("latin-1").split(":", 1)
            headers.append((name.strip(), value.strip()))
            if name.strip().lower() == "content-length":
                length = int(value)
        body = f.read(length) if length else b""
        return method, path, headers, body

    def _serve(self, c):
        f = c.makefile("rb")
        try:
            while True:
                req = self._read_request(f)
                if req is None:
                    break
                method, path, headers, body = req
                target = dict((k.lower(), v) for k, v in headers).get(
                    "x-amz-target", "")
                up = http.client.HTTPConnection("127.0.0.1", self.upstream,
                                                timeout=10)
                up.request(method, path, body,
                           {k: v for k, v in headers
                            if k.lower() not in ("host", "connection")})
                resp = up.getresponse()
                data = resp.read()
                up.close()
                reset = False
                with self.lock:
                    if (target.endswith(".UpdateItem")
                            and (self.only is None or self.only(body))):
                        self.updates += 1
                        if self.every and self.updates % self.every == 0:
                            self.resets += 1
                            reset = True
                    elif target.endswith(".GetItem"):
                        self.gets += 1
                if reset and self.stall:
                    # applied by dynalite; the answer never comes in time
                    time.sleep(self.stall)
                    break
                if reset:
                    # applied by dynalite; the answer is lost
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    break
                out = [f"HTTP/1.1 {resp.status} {resp.reason}\r\n"]
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding",
                                         "content-length", "connection"):
                        out.append(f"{k}: {v}\r\n")
                out.append(f"Content-Length: {len(data)}\r\n\r\n")
                c.sendall("".join(out).encode("latin-1") + data)
        except (OSError, ValueError):
            pass
        finally:
            f.close()
            c.close()


class LostAnswers(DynamoDBCase):

    def proxied_gate(self, params: str, month: str, **kw):
        proxy = ApplyThenReset(self.ddb.port, **kw).start()
        self.addCleanup(proxy.close)
        conf = ddb_http(self.ddb, params, month).replace(
            self.ddb.endpoint, proxy.endpoint)
        self.nginx(conf, main=CREDS)
        return proxy

    def test_strict_counts_each_allowed_request_once(self):
        proxy = self.proxied_gate("mode=strict timeout=5s", "200")
        owner = self.owner("strict-reset")
        load = Load(self.port, owner, conns=4, max_each=25).start().join()
        self.assertEqual(load.errors, [])
        self.assertEqual(load.status, {200: 100})
        # the faults happened: answers were lost and retries resolved
        self.assertGreaterEqual(proxy.resets, 15, proxy.updates)
        # a retry of an applied write is refused, and a read resolves it
        self.assertGreater(proxy.gets, 0)
        self.assertTable(owner, load.ok())

    def test_auto_counts_each_allowed_request_once(self):
        proxy = self.proxied_gate("mode=auto sync=1s timeout=5s", "150")
        owner = self.owner("auto-reset")
        load = Load(self.port, owner, conns=8, stop_after=3,
                    max_each=60).start().join()
        self.assertEqual(load.errors, [])
        self.assertEqual(set(load.status) - {200, 402}, set(), load.status)
        # never refused below the limit: 402 only once 150 were allowed
        self.assertEqual(load.ok(), 150, load.status)
        self.assertGreaterEqual(proxy.resets, 5, proxy.updates)
        self.assertTable(owner, load.ok())


def give_back(body: bytes) -> bool:
    """An UpdateItem that adds a negative delta: a claim given back."""
    try:
        return json.loads(body)["ExpressionAttributeValues"][":n"][
            "N"].startswith("-")
    except (ValueError, KeyError, TypeError):
        return False


class StalledAnswers(DynamoDBCase):
    """The sync's writes: applied, and their answer comes after timeout=.
    Each is settled (sent again as it was, and read when refused) before
    the owner's units are written again; none is counted twice."""

    def stalled_gate(self, params: str, month: str, state: bool = False,
                     **kw):
        proxy = ApplyThenReset(self.ddb.port, stall=2.5, **kw).start()
        self.addCleanup(proxy.close)
        conf = ddb_http(self.ddb, params, month).replace(
            self.ddb.endpoint, proxy.endpoint)
        if state:
            conf = conf.replace("usage:1m;",
                                "usage:1m state={{dir}}/u.state;")
        self.ng = self.nginx(conf, main=CREDS)
        return proxy

    def bursts(self, owner: str, plan: str = None, rounds: int = 12,
               each: int = 5, idle: float = 1.3) -> int:
        """rounds bursts of `each` requests, each burst followed by a
        pause longer than sync=, so that every burst is its own sync
        write.  Returns the number of 200s."""
        ok = 0
        for _ in range(rounds):
            for _ in range(each):
                r = ask(self.port, owner, plan)
                self.assertIn(r.status, (200,), r.status)
                ok += 1
            time.sleep(idle)
        return ok

    def test_async_flushes_are_applied_once(self):
        proxy = self.stalled_gate("mode=async sync=1s timeout=1s", "1000")
        owner = self.owner("async-stall")
        ok = self.bursts(owner)
        self.assertGreaterEqual(proxy.resets, 2, proxy.updates)
        self.assertTable(owner, ok, timeout=20)

    def test_auto_flushes_without_monthly_limit_are_applied_once(self):
        proxy = self.stalled_gate("mode=auto sync=1s timeout=1s", "1000")
        owner = self.owner("auto-pro-stall")
        ok = self.bursts(owner, plan="pro")
        self.assertGreaterEqual(proxy.resets, 2, proxy.updates)
        self.assertTable(owner, ok, timeout=20)

    def test_auto_give_backs_are_applied_once(self):
        proxy = self.stalled_gate("mode=auto sync=1s timeout=1s", "1000",
                                  only=give_back)
        owner = self.owner("auto-giveback-stall")
        ok = self.bursts(owner, rounds=15, each=3, idle=2.2)
        # claims were given back, and some of those answers were lost
        self.assertGreaterEqual(proxy.resets, 1, proxy.updates)
        self.assertTable(owner, ok, timeout=20)

    def test_a_write_not_settled_at_a_reload_is_settled_by_the_new_workers(
            self):
        # every sync write is applied and its answer never comes in time
        proxy = self.stalled_gate("mode=async sync=1s timeout=1s", "1000",
                                  every=1)
        owner = self.owner("reload-unsettled")
        for _ in range(5):
            self.assertEqual(ask(self.port, owner).status, 200)
        wait_for(lambda: proxy.resets >= 1, 10, what="a stalled write")
        self.assertEqual(self.ddb.count(owner), 5)

        # the old workers' last round cannot settle it either: it stays
        # in the zone for the new workers, who resend it as it was
        self.ng.reload()
        self.assertEqual(self.ddb.count(owner), 5)
        proxy.every = 0
        for _ in range(3):
            self.assertEqual(ask(self.port, owner).status, 200)
        self.assertTable(owner, 8, timeout=10)
        time.sleep(2.5)
        self.assertEqual(self.ddb.count(owner), 8)

    def test_a_write_not_settled_at_a_stop_is_settled_after_the_start(self):
        # every sync write is applied and its answer never comes in time
        proxy = self.stalled_gate("mode=async sync=1s timeout=1s", "1000",
                                  state=True, every=1)
        owner = self.owner("stop-unsettled")
        for _ in range(5):
            self.assertEqual(ask(self.port, owner).status, 200)
        wait_for(lambda: proxy.resets >= 1, 10, what="a stalled write")
        self.assertEqual(self.ddb.count(owner), 5)

        # the quit's last round cannot settle it: the state file keeps it
        self.ng.quit()
        self.assertEqual(self.ddb.count(owner), 5)

        # after the start it is settled (applied already), not added again
        proxy.every = 0
        self.ng.start()
        for _ in range(3):
            self.assertEqual(ask(self.port, owner).status, 200)
        self.assertTable(owner, 8, timeout=10)
        time.sleep(2.5)
        self.assertEqual(self.ddb.count(owner), 8)
