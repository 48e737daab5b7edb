"""Counts through nginx's lifecycle with DynamoDB: stops, reloads and
binary upgrades, while the store misbehaves, and turning it on for a zone
that already counted.

A small TCP server on loopback stands between nginx and dynalite and
plays the store's faults: it forwards, refuses connections (nothing
listens), or accepts them and never answers.  What is checked is what an
operator sees: how long `nginx -s quit` and `nginx -s reload` take, which
endpoint old workers still talk to, the usage headers, and that the table
ends up with every request that was answered 200.
"""

import os
import re
import signal
import socket
import subprocess
import threading
import time

from harness import NGINX, children_of, pid_alive, port_open, wait_for
from test_dynamodb import CREDS, DynamoDBCase, Load, ask, ddb_http

# the store's timeouts in these tests, and the bound on a graceful stop:
# at most one last write (timeout) after the sync timer's next look (at
# most sync), with room for a loaded machine
TIMEOUT = 1.0
SYNC = 1.0
BOUND = TIMEOUT + SYNC + 3.0


class FaultServer:
    """127.0.0.1:<own port> in front of an upstream port.

    forward: relays both ways; stall: accepts and never answers; refuse:
    nothing listens (connections are refused).  Switching closes every
    open connection, so that a client must connect again."""

    def __init__(self, upstream: int):
        self.upstream = upstream
        self.mode = "forward"
        self.accepted = 0
        self.lock = threading.Lock()
        self.conns = []
        self.lsock = None
        self.thread = None
        self.closing = threading.Event()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self):
        self._listen()
        return self

    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        s.settimeout(0.1)
        self.lsock = s
        self.closing.clear()
        self.thread = threading.Thread(target=self._accept, args=(s,),
                                       daemon=True)
        self.thread.start()

    def _unlisten(self):
        if self.lsock is None:
            return
        self.closing.set()
        self.thread.join(2)
        self.lsock.close()
        self.lsock = None

    def _accept(self, s):
        while not self.closing.is_set():
            try:
                c, _ = s.accept()
            except OSError:
                continue
            with self.lock:
                self.accepted += 1
                self.conns.append(c)
                mode = self.mode
            if mode == "forward":
                threading.Thread(target=self._relay, args=(c,),
                                 daemon=True).start()
            # stall: held open, never read from or answered

    def _relay(self, c):
        try:
            u = socket.create_connection(("127.0.0.1", self.upstream), 5)
        except OSError:
            c.close()
            return
        with self.lock:
            self.conns.append(u)

        def pipe(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            for x in (a, b):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pipe, args=(u, c), daemon=True).start()
        pipe(c, u)

    def set_mode(self, mode: str):
        with self.lock:
            self.mode = mode
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.close()
            except OSError:
                pass
        if mode == "refuse":
            self._unlisten()
        elif self.lsock is None:
            self._listen()

    def close(self):
        self.set_mode("refuse")


def gate_conf(case, endpoint: str, state: bool = True,
              params: str = "") -> str:
    conf = ddb_http(case.ddb, f"mode=async sync={int(SYNC * 1000)}ms "
                              f"timeout={int(TIMEOUT * 1000)}ms {params}",
                    "100000")
    conf = conf.replace(case.ddb.endpoint, endpoint)
    if state:
        conf = conf.replace("usage:1m;", "usage:1m state={{dir}}/u.state;")
    return conf


class GracefulStop(DynamoDBCase):
    """`nginx -s quit` and `nginx -s reload` end within the bound while
    DynamoDB refuses or stalls, and no unit is lost or counted twice."""

    def fault(self) -> FaultServer:
        f = FaultServer(self.ddb.port).start()
        self.addCleanup(f.close)
        return f

    def served(self, port: int, owner: str, n: int) -> int:
        ok = 0
        for _ in range(n):
            r = ask(port, owner)
            self.assertEqual(r.status, 200, r)
            ok += 1
        return ok

    def timed_quit(self, ng) -> float:
        workers = ng.workers_now()
        self.assertTrue(workers)
        t0 = time.monotonic()
        ng.proc.send_signal(signal.SIGQUIT)
        try:
            ng.proc.wait(BOUND + 10)
        except subprocess.TimeoutExpired:
            pass
        took = time.monotonic() - t0
        # the harness kills what is left, and the assertion says how long
        ng.quit(1)
        return took

    def quit_while(self, mode: str):
        fault = self.fault()
        ng = self.nginx(gate_conf(self, fault.endpoint), main=CREDS)
        owner = self.owner(f"quit-{mode}")
        total = self.served(self.port, owner, 5)
        self.assertTable(owner, 5)

        fault.set_mode(mode)
        total += self.served(self.port, owner, 7)
        time.sleep(SYNC + 0.5)          # a sync round has met the fault
        took = self.timed_quit(ng)
        self.assertLess(took, BOUND, f"nginx -s quit took {took:.1f}s "
                                     f"with the store {mode}")
        self.assertEqual(self.ddb.count(owner), 5)

        # the store comes back, then nginx: the state file's units land
        fault.set_mode("forward")
        ng.start()
        self.assertTable(owner, total, timeout=10)
        total += self.served(self.port, owner, 3)
        self.assertTable(owner, total)
        self.assertIn("exiting", ng.error_log())

    def test_quit_while_the_store_refuses(self):
        self.quit_while("refuse")

    def test_quit_while_the_store_stalls(self):
        self.quit_while("stall")

    def test_quit_under_load_while_the_store_stalls(self):
        fault = self.fault()
        ng = self.nginx(gate_conf(self, fault.endpoint), main=CREDS)
        owner = self.owner("quit-load")
        fault.set_mode("stall")
        load = Load(self.port, owner, conns=4, max_each=100000,
                    pause=0.01).start()
        time.sleep(2.5)
        took = self.timed_quit(ng)
        load.stopping.set()
        load.join()
        self.assertLess(took, BOUND)
        fault.set_mode("forward")
        ng.start()
        self.assertGreater(load.ok(), 0)
        self.assertTable(owner, load.ok(), timeout=10)

    def reload_away_from(self, mode: str):
        fault = self.fault()
        ng = self.nginx(gate_conf(self, fault.endpoint), main=CREDS)
        owner = self.owner(f"reload-{mode}")
        total = self.served(self.port, owner, 4)
        self.assertTable(owner, 4)

        # traffic before, during and after the reload keeps units waiting
        load = Load(self.port, owner, conns=2, max_each=100000,
                    pause=0.02).start()
        fault.set_mode(mode)
        total += self.served(self.port, owner, 6)
        time.sleep(SYNC + 0.5)
        old = set(ng.workers_now())

        # the new configuration names dynalite itself
        ng.write_conf(gate_conf(self, self.ddb.endpoint))
        t0 = time.monotonic()
        p = subprocess.run(
            [NGINX, "-p", ng.dir, "-c", "nginx.conf", "-e",
             ng.error_log_path, "-s", "reload"],
            capture_output=True, text=True, timeout=30, env=ng._env())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

        wait_for(lambda: len(set(ng.workers_now()) - old) >= ng.workers,
                 10, what="the new workers")
        time.sleep(0.3)
        accepted = fault.accepted
        wait_for(lambda: not any(pid_alive(w) for w in old), BOUND + 10,
                 what="the old workers to exit")
        took = time.monotonic() - t0
        self.assertLess(took, BOUND, f"old workers took {took:.1f}s to "
                                     f"exit after a reload, store {mode}")
        # nothing more reached the endpoint the configuration dropped
        self.assertEqual(fault.accepted, accepted)
        time.sleep(0.5)
        load.stopping.set()
        load.join()
        self.assertEqual(load.errors, [])
        self.assertEqual(set(load.status), {200}, load.status)
        total += load.ok()

        # the new workers write the units with the new endpoint
        self.assertTable(owner, total, timeout=10)
        total += self.served(self.port, owner, 3)
        self.assertTable(owner, total)
        time.sleep(SYNC + 0.5)
        self.assertEqual(fault.accepted, accepted)

    def test_reload_while_the_store_refuses(self):
        self.reload_away_from("refuse")

    def test_reload_while_the_store_stalls(self):
        self.reload_away_from("stall")

    def test_failed_reload_leaves_the_workers_writing(self):
        # a long sync: what is counted waits for the last round at quit
        conf = gate_conf(self, self.ddb.endpoint, state=False).replace(
            f"sync={int(SYNC * 1000)}ms", "sync=60s")
        ng = self.nginx(conf, main=CREDS,
                        expect_log=[r"Address already in use",
                                    r"still could not bind"])
        owner = self.owner("failed-reload")
        total = self.served(self.port, owner, 3)

        # the new configuration maps the zones, then cannot bind a port
        busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        ng.write_conf(conf + f"""
    server {{
        listen 127.0.0.1:{busy.getsockname()[1]};
        return 204;
    }}
""")
        old = set(ng.workers_now())
        p = subprocess.run(
            [NGINX, "-p", ng.dir, "-c", "nginx.conf", "-e",
             ng.error_log_path, "-s", "reload"],
            capture_output=True, text=True, timeout=30, env=ng._env())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        wait_for(lambda: "Address already in use" in ng.error_log(), 15,
                 what="the reload to fail")
        time.sleep(0.5)
        self.assertEqual(set(ng.workers_now()), old)

        # the workers that still run count, and write it all at the stop
        total += self.served(self.port, owner, 5)
        self.assertLess(self.ddb.count(owner) or 0, total)
        ng.quit()
        self.assertEqual(self.ddb.count(owner), total)

    def test_worker_shutdown_timeout_cuts_the_last_write_short(self):
        fault = self.fault()
        conf = gate_conf(self, fault.endpoint).replace(
            f"timeout={int(TIMEOUT * 1000)}ms", "timeout=8s")
        ng = self.nginx(conf, main=CREDS + "worker_shutdown_timeout 1s;\n")
        owner = self.owner("shutdown-timeout")
        total = self.served(self.port, owner, 3)
        self.assertTable(owner, 3)
        fault.set_mode("stall")
        total += self.served(self.port, owner, 5)
        took = self.timed_quit(ng)
        # the 8 s write is cut at 1 s; its units stay in the state file
        self.assertLess(took, 1.0 + SYNC + 3.0)
        fault.set_mode("forward")
        ng.start()
        self.assertTable(owner, total, timeout=10)

    def test_quit_without_a_state_file_says_what_is_lost(self):
        fault = self.fault()
        ng = self.nginx(gate_conf(self, fault.endpoint, state=False),
                        main=CREDS, expect_log=[r"units not written"])
        owner = self.owner("lost")
        fault.set_mode("refuse")
        self.served(self.port, owner, 4)
        time.sleep(SYNC + 0.5)
        took = self.timed_quit(ng)
        self.assertLess(took, BOUND)
        lines = [ln for ln in ng.error_log().splitlines()
                 if "units not written" in ln]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(" 4 units not written to DynamoDB", lines[0])


def without_dynamodb(conf: str) -> str:
    """The same http{} text with the usage_gate_dynamodb directive left
    out."""
    return re.sub(r"usage_gate_dynamodb[^;]*;", "", conf)


class Backfill(DynamoDBCase):
    """DynamoDB configured for a zone that already counted: the table gets
    the zone's units added, and the zone keeps them."""

    def backfill(self, mode: str):
        conf = ddb_http(self.ddb, f"mode={mode} sync=300ms", "50")
        conf = conf.replace("usage:1m;", "usage:1m state={{dir}}/u.state;")
        ng = self.nginx(without_dynamodb(conf), main=CREDS)
        owner = self.owner(f"backfill-{mode}")
        for i in range(30):
            r = ask(self.port, owner)
            self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Usage-Remaining"), "20")
        ng.quit()
        self.assertIsNone(self.ddb.count(owner))

        ng.write_conf(conf)
        ng.start()
        r = ask(self.port, owner)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Usage-Remaining"), "19")
        self.assertTable(owner, 31)
        # and the limit still holds where the zone left it
        for i in range(19):
            self.assertEqual(ask(self.port, owner).status, 200)
        self.assertEqual(ask(self.port, owner).status, 402)
        self.assertTable(owner, 50)

    def test_auto_adds_what_the_zone_counted_before(self):
        self.backfill("auto")

    def test_strict_adds_what_the_zone_counted_before(self):
        self.backfill("strict")

    def test_async_adds_what_the_zone_counted_before(self):
        self.backfill("async")


class BinaryUpgrade(DynamoDBCase):
    """Debian's `upgrade`: USR2 to the master (a new master with the new
    binary starts beside it), then QUIT to the old one.  nginx changes
    binaries only as a daemon (a master whose parent still runs ignores
    USR2), so these tests start it as one and follow it by its pid
    file."""

    def pid_in(self, ng, name: str):
        try:
            with open(os.path.join(ng.dir, name)) as f:
                return int(f.read().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def daemon(self, conf: str):
        ng = self.make_nginx(conf, main=CREDS)
        with open(ng.conf_path) as f:
            text = f.read()
        self.assertIn("daemon off;", text)
        with open(ng.conf_path, "w") as f:
            f.write(text.replace("daemon off;", "daemon on;"))
        p = subprocess.run([NGINX, "-p", ng.dir, "-c", "nginx.conf", "-e",
                            ng.error_log_path], capture_output=True,
                           text=True, timeout=30, env=ng._env())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

        def stop_all():
            for name in ("nginx.pid.oldbin", "nginx.pid"):
                pid = self.pid_in(ng, name)
                if pid and pid_alive(pid):
                    os.kill(pid, signal.SIGTERM)
                    wait_for(lambda: not pid_alive(pid), 10,
                             what=f"nginx {pid} to stop")
        self.addCleanup(stop_all)
        master = wait_for(lambda: self.pid_in(ng, "nginx.pid"), 10,
                          what="the pid file")
        wait_for(lambda: len(children_of(master)) >= ng.workers and
                 port_open(self.port), 15, what="nginx to serve")
        return ng, master

    def state_upgrade_under_load(self, winch: bool = False):
        """A zone with a state file and no DynamoDB: after the old master
        has gone, the new zone counts every 200 both served."""
        conf = without_dynamodb(ddb_http(self.ddb, "", "100000"))
        conf = conf.replace("usage:1m;", "usage:1m state={{dir}}/u.state "
                                         "state_interval=1s;")
        ng, old = self.daemon(conf)
        owner = self.owner("upgrade-state")
        load = Load(self.port, owner, conns=2, max_each=100000,
                    pause=0.01).start()
        time.sleep(2.5)
        os.kill(old, signal.SIGUSR2)

        def new_master():
            pid = self.pid_in(ng, "nginx.pid")
            if pid and pid != old and \
                    len(children_of(pid)) >= ng.workers:
                return pid
            return None
        new = wait_for(new_master, 15, what="the new master's workers")
        time.sleep(1.5)                 # both masters' workers serve
        if winch:
            workers = [w for w in children_of(old) if w != new]
            os.kill(old, signal.SIGWINCH)
            wait_for(lambda: not any(pid_alive(w) for w in workers),
                     BOUND + 10, what="the old workers to exit")
            time.sleep(1.5)
        os.kill(old, signal.SIGQUIT)
        wait_for(lambda: not pid_alive(old), BOUND + 10,
                 what="the old master to exit")
        time.sleep(1.0)                 # the new workers alone
        load.stopping.set()
        load.join()
        self.assertEqual(load.errors, [])
        self.assertEqual(set(load.status), {200}, load.status)
        time.sleep(2.5)                 # the next state write merges
        r = ask(self.port, owner)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(int(r.header("X-Usage-Remaining")),
                         100000 - load.ok() - 1, load.ok())
        self.assertIn("binary upgrade: added", open(ng.error_log_path,
                      errors="replace").read())

    def test_state_file_zone_counts_every_200(self):
        self.state_upgrade_under_load()

    def test_state_file_zone_winch_then_quit(self):
        self.state_upgrade_under_load(winch=True)

    def upgrade_under_load(self, mode: str, winch: bool = False):
        # the state file, written every second, lists units the sync
        # (every 2 s) has not written yet when the new master loads it
        conf = ddb_http(self.ddb, f"mode={mode} sync=2s timeout=1s",
                        "100000")
        conf = conf.replace("usage:1m;", "usage:1m state={{dir}}/u.state "
                                         "state_interval=1s;")
        ng, old = self.daemon(conf)
        owner = self.owner(f"upgrade-{mode}")
        load = Load(self.port, owner, conns=2, max_each=100000,
                    pause=0.01).start()
        time.sleep(2.5)
        os.kill(old, signal.SIGUSR2)

        def new_master():
            pid = self.pid_in(ng, "nginx.pid")
            if pid and pid != old and \
                    len(children_of(pid)) >= ng.workers:
                return pid
            return None
        new = wait_for(new_master, 15, what="the new master's workers")
        self.assertEqual(self.pid_in(ng, "nginx.pid.oldbin"), old)
        time.sleep(1.0)                 # both masters' workers serve
        if winch:
            # the old workers leave first; the old master stays, ready to
            # take over again, until it is told to quit
            workers = [w for w in children_of(old) if w != new]
            os.kill(old, signal.SIGWINCH)
            wait_for(lambda: not any(pid_alive(w) for w in workers),
                     BOUND + 10, what="the old workers to exit")
            time.sleep(0.5)
        t0 = time.monotonic()
        os.kill(old, signal.SIGQUIT)
        wait_for(lambda: not pid_alive(old), BOUND + 10,
                 what="the old master to exit")
        self.assertLess(time.monotonic() - t0, BOUND)
        time.sleep(1.0)                 # the new workers alone
        load.stopping.set()
        load.join()
        self.assertEqual(load.errors, [])
        self.assertEqual(set(load.status), {200}, load.status)
        self.assertTrue(pid_alive(new))
        time.sleep(3.0)                 # every sync due has run
        self.assertTable(owner, load.ok(), timeout=10)

    def test_async_table_equals_every_200(self):
        self.upgrade_under_load("async")

    def test_auto_table_equals_every_200(self):
        self.upgrade_under_load("auto")

    def test_winch_then_quit_table_equals_every_200(self):
        self.upgrade_under_load("async", winch=True)
