"""Integration test harness: the stock /usr/sbin/nginx with the built module
in front of the real example FastAPI app, all on loopback.

Standard library only.  What it gives a test:

  free_port()                a free TCP port on 127.0.0.1
  worker_dir()               a temp dir the (unprivileged) workers may use
  worker_mkdir()             a directory in it the workers may write in
  App                        t/app/app.py under uvicorn on its own port
  Nginx                      nginx in its own temp dir, from a template;
                             master as root, workers as WORKER_USER
  request() / ask()          one HTTP request from a chosen SOURCE address;
                             status, all headers (duplicates kept), JSON body
  GateTestCase               a TestCase base: one App per class, nginx per
                             test, error-log and ASAN checks at teardown

Environment:
  UG_MODULE   path of ngx_http_usage_gate_module.so (default: the build tree)
  UG_ASAN=1   preload gcc's libasan into nginx and fail a test whose nginx
              wrote an ASAN report
  UG_KEEP=1   keep the temp dirs of tests (for debugging)

Templates: the text given for the http{} block (and for the main context)
may use {{port}}, {{port2}}, {{app}} (host:port of the app), {{dir}} (the
nginx temp dir) and any extra names passed as `vars`.  nginx's own braces
are left alone.
"""

from __future__ import annotations

import calendar
import glob
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
EXAMPLES = os.path.join(TOP, "t", "app")
DOCS = os.path.join(TOP, "docs")

NGINX = "/usr/sbin/nginx"
PYTHON = "/usr/bin/python3"
MODULE = os.environ.get("UG_MODULE") or os.path.join(
    TOP, "build", "nginx", "objs", "ngx_http_usage_gate_module.so")
MODULE = os.path.abspath(MODULE)

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
ASAN = os.environ.get("UG_ASAN") == "1"
KEEP = os.environ.get("UG_KEEP") == "1"

ANON_SALT_SEED = "sentientiq"

BAD_LOG_RE = re.compile(r"\[(alert|emerg|crit)\]")
SIGNAL_EXIT_RE = re.compile(r"exited on signal")


# Workers run as a deployment runs them: the master as root (when the tests
# run as root), the workers as an unprivileged user.
WORKER_USER = "nobody"
WORKER_GROUP = "nogroup"


# ---------------------------------------------------------------- utilities

def worker_dir(prefix: str) -> str:
    """A new temp dir the workers may use as their own: readable by all
    (mkdtemp makes it 0700) and, when the tests run as root, owned by the
    worker user, as a deployment gives /var/lib/nginx/<module> to www-data."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    if os.geteuid() == 0:
        shutil.chown(d, WORKER_USER, WORKER_GROUP)
    return d


def worker_mkdir(path: str) -> str:
    """mkdir of a directory the workers write in (a state file's), owned by
    the worker user when the tests run as root."""
    os.mkdir(path, 0o755)
    if os.geteuid() == 0:
        shutil.chown(path, WORKER_USER, WORKER_GROUP)
    return path


_port_lock = threading.Lock()
_ports_given = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now.

    Chosen below the kernel's ephemeral range (32768-60999 on Linux), so
    that a client socket can never be given the same port: a connect to a
    port that is not listening yet could otherwise connect to itself."""
    with _port_lock:
        for _ in range(1000):
            port = random.randint(20000, 32000)
            if port in _ports_given:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, port))
            except OSError:
                continue
            finally:
                s.close()
            if port_open(port, host):
                continue
            _ports_given.add(port)
            return port
    raise RuntimeError("no free port")


def wait_for(pred, timeout: float, interval: float = 0.05, what: str = ""):
    """Polls pred() until it returns something truthy; returns that."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{what or pred}")
        time.sleep(interval)


def _euid(pid: int) -> Optional[int]:
    """A process's effective uid, or None once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for ln in f:
                if ln.startswith("Uid:"):
                    return int(ln.split()[2])
    except (OSError, IndexError, ValueError):
        pass
    return None


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def anon_owner(addr: str, salt: str = ANON_SALT_SEED) -> str:
    """The seed's anonymous owner: anon: + 24 hex of HMAC-SHA256(salt, ip)."""
    mac = hmac.new(salt.encode(), addr.encode(), hashlib.sha256)
    return "anon:" + mac.hexdigest()[:24]


def month_reset_seconds(now: Optional[float] = None) -> int:
    """Seconds from now until 00:00:00 UTC on the 1st of the next month."""
    t = int(now if now is not None else time.time())
    tm = time.gmtime(t)
    y, m = (tm.tm_year + 1, 1) if tm.tm_mon == 12 else (tm.tm_year,
                                                          tm.tm_mon + 1)
    return calendar.timegm((y, m, 1, 0, 0, 0)) - t


def minute_guard(needed: float = 10.0):
    """Sleeps into the next calendar minute unless `needed` seconds remain
    in this one: for checks of per-calendar-minute counts."""
    left = 60.0 - (time.time() % 60.0)
    if left < needed:
        time.sleep(left + 0.2)


def children_of(pid: int) -> List[int]:
    """PIDs whose parent is pid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may hold spaces and parens
        rest = stat[stat.rfind(")") + 2:].split()
        if len(rest) > 1 and int(rest[1]) == pid:
            out.append(int(d))
    return out


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    state = stat[stat.rfind(")") + 2:].split()[0]
    return state != "Z"


# ---------------------------------------------------------------- HTTP

class Response:
    def __init__(self, status: int, reason: str,
                 headers: List[Tuple[str, str]], body: bytes):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.json = None
        try:
            self.json = json.loads(body.decode()) if body else None
        except (ValueError, UnicodeDecodeError):
            self.json = None

    def all(self, name: str) -> List[str]:
        """Every value of a header, in order (duplicates kept)."""
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def header(self, name: str) -> Optional[str]:
        """The single value of a header, None if absent; a header sent more
        than once is an assertion failure."""
        vals = self.all(name)
        if len(vals) > 1:
            raise AssertionError(f"response header {name} sent "
                                 f"{len(vals)} times: {vals}")
        return vals[0] if vals else None

    @property
    def seen(self) -> Dict[str, Optional[str]]:
        """What the example app saw (its "seen" object)."""
        if not isinstance(self.json, dict) or "seen" not in self.json:
            raise AssertionError(f"no 'seen' in the body (status "
                                 f"{self.status}): {self.body[:300]!r}")
        return self.json["seen"]

    def __repr__(self):
        return (f"<Response {self.status} {self.headers} "
                f"{self.body[:300]!r}>")


HeaderList = Sequence[Tuple[str, str]]


def _header_list(headers) -> List[Tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers)


def send(conn: http.client.HTTPConnection, method: str, path: str,
         headers=None, body: Optional[bytes] = None) -> Response:
    """One request on an open (possibly keep-alive) connection."""
    hl = _header_list(headers)
    names = {k.lower() for k, _ in hl}
    conn.putrequest(method, path, skip_host="host" in names,
                    skip_accept_encoding=True)
    for k, v in hl:
        conn.putheader(k, v)
    if body is not None and "content-length" not in names:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    data = r.read()
    return Response(r.status, r.reason, r.getheaders(), data)


def connect(port: int, source: str = "127.0.0.1", host: str = "127.0.0.1",
            timeout: float = 15.0) -> http.client.HTTPConnection:
    """A connection whose client socket is bound to `source`: 127.0.0.2
    acts as an untrusted peer while 127.0.0.1 is a trusted proxy."""
    return http.client.HTTPConnection(host, port, timeout=timeout,
                                      source_address=(source, 0))


def hammer(port: int, total: int, conns: int, headers, body: bytes,
           path: str = "/ask", together: bool = False,
           timeout: float = 120.0) -> Tuple[Dict[int, int], List[str]]:
    """`total` POSTs of `body` to `path` over `conns` keep-alive
    connections at once, as fast as each connection gets its answers.
    headers: a list, or a function of the connection's number (0 ..
    conns-1) that returns one.  together: every connection is open
    before the first request is sent.  Returns ({status: count}, the
    errors the connections met)."""
    lock = threading.Lock()
    todo = [total]
    statuses: Dict[int, int] = {}
    errors: List[str] = []
    barrier = threading.Barrier(conns) if together else None

    def worker(n: int):
        hl = headers(n) if callable(headers) else headers
        c = connect(port, timeout=30)
        try:
            c.connect()
            if barrier is not None:
                barrier.wait(10)
            while True:
                with lock:
                    if todo[0] == 0:
                        return
                    todo[0] -= 1
                r = send(c, "POST", path, hl, body)
                with lock:
                    statuses[r.status] = statuses.get(r.status, 0) + 1
        except Exception as e:  # noqa: BLE001 -- returned to the caller
            with lock:
                errors.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(n,))
               for n in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return statuses, errors


def request(port: int, path: str = "/", method: str = "GET", headers=None,
            body=None, source: str = "127.0.0.1",
            timeout: float = 15.0) -> Response:
    """One request on a fresh connection.  body may be bytes, str or a
    JSON-able object (sent as application/json)."""
    hl = _header_list(headers)
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body).encode()
        if not any(k.lower() == "content-type" for k, _ in hl):
            hl.append(("Content-Type", "application/json"))
    elif isinstance(body, str):
        body = body.encode()
    conn = connect(port, source=source, timeout=timeout)
    try:
        return send(conn, method, path, hl, body)
    finally:
        conn.close()


ASK_BODY = {"agent": "oracle", "question": "Will it ship?"}


def ask(port: int, headers=None, source: str = "127.0.0.1",
        path: str = "/ask") -> Response:
    """POST /ask as the app expects it."""
    return request(port, path, "POST", headers, ASK_BODY, source=source)


def user(uid: Optional[str] = None, plan: Optional[str] = None,
         org: Optional[str] = None) -> List[Tuple[str, str]]:
    """Identity headers as a trusted proxy would send them."""
    h = []
    if uid is not None:
        h.append(("X-User-Id", uid))
    if org is not None:
        h.append(("X-Org-Id", org))
    if plan is not None:
        h.append(("X-Plan", plan))
    return h


# ---------------------------------------------------------------- the app

class App:
    """t/app/app.py under uvicorn on 127.0.0.1:<port>."""

    def __init__(self, port: Optional[int] = None):
        self.port = port or free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.dir = tempfile.mkdtemp(prefix="ug-app-")
        self.log_path = os.path.join(self.dir, "app.log")

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self):
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "uvicorn", "app:app", "--app-dir", EXAMPLES,
             "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning", "--no-access-log"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited: {self.log()}")
            try:
                r = request(self.port, "/health", timeout=2)
                if r.status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"app did not answer /health: {self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- nginx

_VAR_RE = re.compile(r"\{\{(\w+)\}\}")


def render(template: str, vars: Dict[str, object]) -> str:
    def sub(m):
        if m.group(1) not in vars:
            raise KeyError(f"template names {{{{{m.group(1)}}}}}, "
                           f"which is not given")
        return str(vars[m.group(1)])
    return _VAR_RE.sub(sub, template)


class Nginx:
    """/usr/sbin/nginx with the module, in its own temp dir.

    http: the text of the http{} block (server blocks, gate directives);
    main: extra main-context text (e.g. `env ...;`);
    faketime: e.g. '@2027-01-31 23:59:50' to run nginx on a shifted clock;
    expect_log: regexes of [alert]/[emerg]/[crit] lines the test expects.
    """

    def __init__(self, http: str, main: str = "", vars=None,
                 workers: int = 2, faketime: Optional[str] = None,
                 expect_log: Iterable[str] = (), events: str = ""):
        self.dir = worker_dir("ug-nginx-")
        self.vars = dict(vars or {})
        self.vars.setdefault("dir", self.dir)
        self.workers = workers
        self.faketime = faketime
        self.expect_log = [re.compile(p) for p in expect_log]
        self.events = events
        self.main = main
        self.http = http
        self.proc: Optional[subprocess.Popen] = None
        self.conf_path = os.path.join(self.dir, "nginx.conf")
        self.error_log_path = os.path.join(self.dir, "error.log")
        self.access_log_path = os.path.join(self.dir, "access.log")
        self.out_path = os.path.join(self.dir, "stderr.log")
        self.asan_prefix = os.path.join(self.dir, "asan")
        self.write_conf()

    # -- configuration

    def conf_text(self, http: Optional[str] = None,
                  main: Optional[str] = None) -> str:
        http = self.http if http is None else http
        main = self.main if main is None else main
        d = self.dir
        # nginx hands a new binary (USR2) only the variables named by
        # `env`: the preloads must reach it as they reached the first one
        env_lines = ""
        if self.faketime:
            env_lines = "env FAKETIME;\nenv FAKETIME_NO_CACHE;\n"
        if self.faketime or ASAN:
            env_lines += "env LD_PRELOAD;\n"
        if ASAN:
            env_lines += "env ASAN_OPTIONS;\n"
        user_line = (f"user {WORKER_USER} {WORKER_GROUP};\n"
                     if os.geteuid() == 0 else "")
        text = (
            f"load_module {MODULE};\n"
            f"daemon off;\n"
            f"master_process on;\n"
            f"worker_processes {self.workers};\n"
            f"{user_line}"
            f"pid {d}/nginx.pid;\n"
            f"error_log {d}/error.log info;\n"
            f"{env_lines}"
            f"{render(main, self.vars)}\n"
            f"events {{\n    worker_connections 1024;\n{self.events}}}\n"
            f"http {{\n"
            f"    access_log {d}/access.log;\n"
            f"    client_body_temp_path {d}/client_body_temp;\n"
            f"    proxy_temp_path {d}/proxy_temp;\n"
            f"    fastcgi_temp_path {d}/fastcgi_temp;\n"
            f"    uwsgi_temp_path {d}/uwsgi_temp;\n"
            f"    scgi_temp_path {d}/scgi_temp;\n"
            f"{render(http, self.vars)}\n"
            f"}}\n")
        return text

    def write_conf(self, http: Optional[str] = None,
                   main: Optional[str] = None):
        if http is not None:
            self.http = http
        if main is not None:
            self.main = main
        with open(self.conf_path, "w") as f:
            f.write(self.conf_text())

    def line_of(self, marker: str) -> int:
        """1-based line number of the first config line containing marker."""
        with open(self.conf_path) as f:
            for i, line in enumerate(f, 1):
                if marker in line:
                    return i
        raise AssertionError(f"{marker!r} is not in the config")

    def _env(self) -> Dict[str, str]:
        env = dict(os.environ)
        preload = []
        if self.faketime:
            preload.append(FAKETIME_LIB)
            env["FAKETIME"] = self.faketime
            env["FAKETIME_NO_CACHE"] = "1"
        if ASAN:
            lib = subprocess.run(["gcc", "-print-file-name=libasan.so"],
                                 capture_output=True, text=True).stdout.strip()
            preload.append(lib)
            opts = "detect_leaks=0:log_path=" + self.asan_prefix
            if self.faketime:
                # libasan first with libfaketime after it deadlocks at
                # start (a futex in their constructors); the other order
                # works once ASAN is told not to insist on being first
                opts = "verify_asan_link_order=0:" + opts
            env["ASAN_OPTIONS"] = opts
        if preload:
            env["LD_PRELOAD"] = ":".join(preload)
        return env

    def test_config(self, http: Optional[str] = None,
                    main: Optional[str] = None) -> Tuple[bool, str]:
        """`nginx -t` on this config (rewritten first if http/main are
        given): (ok, combined output)."""
        if http is not None or main is not None:
            self.write_conf(http, main)
        p = subprocess.run(
            [NGINX, "-t", "-p", self.dir, "-c", "nginx.conf",
             "-e", self.error_log_path],
            capture_output=True, text=True, env=self._env(), timeout=60)
        return p.returncode == 0, p.stdout + p.stderr

    # -- processes

    def start(self, timeout: float = 15.0):
        out = open(self.out_path, "ab")
        self.proc = subprocess.Popen(
            [NGINX, "-p", self.dir, "-c", "nginx.conf",
             "-e", self.error_log_path],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self._env())
        out.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"nginx exited with {self.proc.returncode}:\n"
                    f"{self.output()}\n{self.error_log()}")
            if len(self.workers_now()) >= self.workers and \
                    self._listening():
                self._check_worker_users()
                return self
            if time.monotonic() > deadline:
                raise AssertionError("nginx did not start:\n"
                                     + self.error_log())
            time.sleep(0.05)

    def _check_worker_users(self):
        """Workers never run as root: a test that passes only with root
        workers would hide what a deployment meets.  A worker forked a
        moment ago is still root until nginx switches it to its user, so
        only a worker that stays root for two seconds fails."""
        deadline = time.monotonic() + 2.0
        while True:
            root = [w for w in self.workers_now() if _euid(w) == 0]
            if not root:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"nginx worker {root[0]} runs as root; "
                                     f"the tests run workers as "
                                     f"{WORKER_USER}")
            time.sleep(0.05)

    def listen_ports(self) -> List[int]:
        """The loopback ports the config listens on."""
        with open(self.conf_path) as f:
            text = f.read()
        return [int(p) for p in
                re.findall(r"^\s*listen\s+127\.0\.0\.1:(\d+)", text, re.M)]

    def _listening(self) -> bool:
        return all(port_open(p) for p in self.listen_ports())

    @property
    def pid(self) -> int:
        assert self.proc is not None, "nginx is not running"
        return self.proc.pid

    def workers_now(self) -> List[int]:
        if not self.proc or self.proc.poll() is not None:
            return []
        return [p for p in children_of(self.proc.pid) if pid_alive(p)]

    def reload(self, http: Optional[str] = None, main: Optional[str] = None,
               timeout: float = 20.0):
        """`nginx -s reload` (after rewriting the config if given), then
        waits until every old worker has exited and a full new generation
        of workers runs."""
        if http is not None or main is not None:
            self.write_conf(http, main)
        old = set(self.workers_now())
        p = subprocess.run(
            [NGINX, "-p", self.dir, "-c", "nginx.conf", "-e",
             self.error_log_path, "-s", "reload"],
            capture_output=True, text=True, timeout=30, env=self._env())
        if p.returncode != 0:
            raise AssertionError(f"nginx -s reload failed: "
                                 f"{p.stdout}{p.stderr}")

        def done():
            if self.proc.poll() is not None:
                raise AssertionError("nginx exited during reload:\n"
                                     + self.error_log())
            now = set(self.workers_now())
            return (not (now & old) and len(now) >= self.workers
                    and all(not pid_alive(p) for p in old))
        wait_for(done, timeout, what="a new generation of nginx workers")
        wait_for(self._listening, 5, what="nginx listening after reload")

    def quit(self, timeout: float = 20.0):
        """Graceful stop (SIGQUIT)."""
        self._signal_and_wait(signal.SIGQUIT, timeout)

    def stop(self, timeout: float = 10.0):
        """Fast stop (SIGTERM), then SIGKILL if it hangs."""
        self._signal_and_wait(signal.SIGTERM, timeout)

    def kill9(self, timeout: float = 10.0):
        """A crash: SIGKILL to the master and every worker at once (no exit
        handlers run), then waits until all are gone.  start() may follow,
        in the same temp dir."""
        if not self.proc:
            return
        pids = [self.proc.pid] + self.workers_now()
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        self.proc.wait(timeout)
        wait_for(lambda: not any(pid_alive(p) for p in pids), timeout,
                 what="killed nginx processes to be gone")
        self.proc = None

    def _signal_and_wait(self, sig, timeout):
        if not self.proc:
            return
        if self.proc.poll() is None:
            workers = self.workers_now()
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                for w in workers:
                    try:
                        os.kill(w, signal.SIGKILL)
                    except OSError:
                        pass
            # workers of a stopped master must be gone too
            deadline = time.monotonic() + 5
            while any(pid_alive(w) for w in workers) and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
        self.proc = None

    # -- logs

    def error_log(self) -> str:
        try:
            with open(self.error_log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def output(self) -> str:
        try:
            with open(self.out_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def access_log(self) -> List[str]:
        try:
            with open(self.access_log_path, errors="replace") as f:
                return f.read().splitlines()
        except OSError:
            return []

    def access_log_path_for(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def log_lines(self, name: str, count: int,
                  timeout: float = 5.0) -> List[str]:
        """Waits until the log file `name` in the temp dir has at least
        count lines (nginx writes the access log after the response)."""
        path = os.path.join(self.dir, name)

        def read():
            try:
                with open(path, errors="replace") as f:
                    lines = f.read().splitlines()
            except OSError:
                return None
            return lines if len(lines) >= count else None
        return wait_for(read, timeout, what=f"{count} lines in {name}")

    def problems(self) -> List[str]:
        """Error-log lines a test did not expect: [alert], [emerg], [crit]
        and worker exits on signals; plus ASAN reports."""
        out = []
        for line in self.error_log().splitlines():
            if BAD_LOG_RE.search(line) or SIGNAL_EXIT_RE.search(line):
                if SIGNAL_EXIT_RE.search(line) or \
                        not any(p.search(line) for p in self.expect_log):
                    out.append(line)
        for f in glob.glob(self.asan_prefix + "*"):
            with open(f, errors="replace") as fh:
                out.append(f"ASAN report {f}:\n{fh.read()[:4000]}")
        return out

    def cleanup(self):
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- TestCase

class GateTestCase(unittest.TestCase):
    """One example app per test class, each class with its own ports; each
    test starts its own nginx (stopped, and its error log checked, at
    teardown, also when the test fails)."""

    app: App
    port: int
    port2: int
    maxDiff = None
    # worker processes of each nginx; a class that reads log lines in
    # request order uses 1 (two workers may write them out of order)
    WORKERS = 2

    @classmethod
    def setUpClass(cls):
        cls.app = App().start()
        cls.port = free_port()
        cls.port2 = free_port()
        while cls.port2 == cls.port:
            cls.port2 = free_port()

    @classmethod
    def tearDownClass(cls):
        cls.app.stop()

    def vars(self, **extra):
        v = {"port": self.port, "port2": self.port2, "app": self.app.addr}
        v.update(extra)
        return v

    def make_nginx(self, http: str, **kw) -> Nginx:
        """An nginx (not started) whose cleanup is registered."""
        vars = self.vars(**kw.pop("vars", {}))
        kw.setdefault("workers", self.WORKERS)
        ng = Nginx(http, vars=vars, **kw)
        self.addCleanup(self._finish_nginx, ng)
        return ng

    def nginx(self, http: str, **kw) -> Nginx:
        """Starts nginx with this http{} text; it listens where the text
        says (use {{port}})."""
        ng = self.make_nginx(http, **kw)
        ng.start()
        return ng

    def _finish_nginx(self, ng: Nginx):
        ng.stop()
        problems = ng.problems()
        if problems:
            # the temp dir is kept for inspection
            raise AssertionError(
                f"nginx error log ({ng.dir}) has unexpected lines:\n"
                + "\n".join(problems))
        ng.cleanup()

    # -- helpers for assertions

    def assertAbout(self, value, expected, slack, msg=None):
        """value within [expected - slack, expected + slack]."""
        self.assertIsNotNone(value, msg)
        v = int(value)
        self.assertTrue(expected - slack <= v <= expected + slack,
                        f"{v} is not within {slack} of {expected}"
                        + (f": {msg}" if msg else ""))


# A gate configuration shared by many tests: the issue's interface block.
GATE_HTTP = """
    usage_gate_zone  usage:10m;
    usage_gate_plan  free        month=20  minute=30;
    usage_gate_plan  pro         month=off minute=120;
    usage_gate_plan  team        month=off minute=300;
    usage_gate_plan  enterprise  month=off minute=600;
    usage_gate_default_plan  free;
    usage_gate_identity  header anon;
    usage_gate_trusted_proxies  127.0.0.1;
    usage_gate_anon_salt  "sentientiq";
"""


def server(locations: str, port: str = "{{port}}") -> str:
    """A server block on 127.0.0.1:port with the given locations."""
    return f"""
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
{locations}
    }}
"""


def gated(path: str, args: str = "usage scope=user",
          upstream: str = "/ask", extra: str = "") -> str:
    """A location gated with `usage_gate args` proxying to the app."""
    return f"""
        location {path} {{
            usage_gate {args};
            {extra}
            proxy_pass http://{{{{app}}}}{upstream};
        }}
"""
