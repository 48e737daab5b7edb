"""A loopback upstream that records every request it gets and answers
with what it saw, for tests that must know exactly which headers reached
an upstream (and how many requests did), whatever nginx path led there.

    echo = EchoServer().start()
    ...  proxy_pass http://127.0.0.1:{echo.port};
    echo.requests          # [Seen(method, path, headers), ...]
    echo.stop()

Paths starting with /status/NNN are answered with status NNN; every other
path with 200, or with `echo.status` when a test sets it (a webhook
receiver that fails).  Request bodies (up to 1 MiB) are kept.  The body is JSON: {"method", "path", "headers"}.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional, Tuple

from harness import GateTestCase, free_port


class Seen:
    def __init__(self, method: str, path: str,
                 headers: List[Tuple[str, str]], body: bytes = b""):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    def all(self, name: str) -> List[str]:
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def get(self, name: str) -> Optional[str]:
        vals = self.all(name)
        return ", ".join(vals) if vals else None

    def __repr__(self):
        return f"<Seen {self.method} {self.path} {self.headers}>"


class EchoServer:

    def __init__(self, port: Optional[int] = None):
        self.port = port or free_port()
        self.requests: List[Seen] = []
        # when set, every path not under /status/ gets this status; the
        # next fail_first requests get 503 whatever status says
        self.status: Optional[int] = None
        self.fail_first = 0
        self._lock = threading.Lock()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "EchoServer":
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self):
                n = min(int(self.headers.get("Content-Length") or 0),
                        1 << 20)
                data = self.rfile.read(n) if n else b""
                seen = Seen(self.command, self.path,
                            list(self.headers.items()), data)
                with outer._lock:
                    outer.requests.append(seen)
                with outer._lock:
                    status = outer.status or 200
                    if outer.fail_first > 0:
                        outer.fail_first -= 1
                        status = 503
                if self.path.startswith("/status/"):
                    status = int(self.path.split("/")[2][:3])
                body = json.dumps({"method": self.command,
                                   "path": self.path,
                                   "headers": seen.headers}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = _answer
            do_HEAD = do_PATCH = _answer

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        daemon=True)
        self._thread.start()
        return self

    def take(self) -> List[Seen]:
        """The requests seen so far, forgetting them."""
        with self._lock:
            out, self.requests = self.requests, []
        return out

    def stop(self):
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


class EchoTestCase(GateTestCase):
    """A GateTestCase with a recording upstream for the class: cls.echo."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.echo = EchoServer().start()

    @classmethod
    def tearDownClass(cls):
        cls.echo.stop()
        super().tearDownClass()
