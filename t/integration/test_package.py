"""The Debian package, installed as an operator installs it.

`t/tools/build-deb.sh` builds build/deb/libnginx-mod-http-usage-gate_*.deb
(or keeps one newer than every source file); the test installs it with
`dpkg -i`, checks that the stock /usr/sbin/nginx with the stock
/etc/nginx/nginx.conf and a gated site in /etc/nginx/sites-enabled/ passes
`nginx -t`, that an nginx loading the module the way the package enables it
(/etc/nginx/modules-enabled/) serves the gate with workers as www-data, and
that `dpkg -P` removes every trace.  /etc/nginx is left exactly as it was.
Needs root (dpkg) and a machine where the package is not installed.
"""

import fcntl
import hashlib
import os
import signal
import subprocess
import time

from harness import (TOP, GateTestCase, ask, free_port, port_open, request,
                     user, wait_for, worker_dir)

PACKAGE = "libnginx-mod-http-usage-gate"
SO = "/usr/lib/nginx/modules/ngx_http_usage_gate_module.so"
AVAILABLE = "/usr/share/nginx/modules-available/mod-http-usage-gate.conf"
ENABLED = "/etc/nginx/modules-enabled/50-mod-http-usage-gate.conf"
SITE = "/etc/nginx/sites-enabled/ug-package-test"
NGINX = "/usr/sbin/nginx"
# held for the whole class: two test runs on one machine (two engineers,
# or make test and a single test) must not install and purge at once
LOCK = "/run/lock/ug-package-test.lock"

# A gated site as README's "Install on Debian/Ubuntu" shows it: http-level
# gate directives and a server, in one file under sites-enabled/.
SITE_TEXT = """
usage_gate_zone  ug_package_test:1m;
usage_gate_plan  free  month=3  minute=off;
usage_gate_default_plan  free;
usage_gate_identity  header anon;
usage_gate_trusted_proxies  127.0.0.1;
usage_gate_anon_salt  "package-test-salt";

server {{
    listen 127.0.0.1:{port};

    location /ask {{
        usage_gate  ug_package_test  scope=user;
        proxy_pass  http://{app};
    }}
}}
"""


def snapshot(top: str = "/etc/nginx"):
    """Every path under top with what it is: file content hash and mode,
    symlink target, or directory."""
    out = {}
    for d, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(d, name)
            st = os.lstat(p)
            if os.path.islink(p):
                out[p] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[p] = ("dir", st.st_mode)
            else:
                with open(p, "rb") as f:
                    out[p] = ("file", st.st_mode,
                              hashlib.sha256(f.read()).hexdigest())
    return out


def installed_version(pkg: str = PACKAGE):
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", pkg],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None
    status, _, version = p.stdout.rpartition(" ")
    return version if "installed" in status.split() and \
        "not-installed" not in status.split() else None


def dpkg(*args) -> subprocess.CompletedProcess:
    """dpkg, waiting (up to 2 minutes) while another dpkg or apt holds the
    lock."""
    deadline = time.monotonic() + 120
    while True:
        p = subprocess.run(["dpkg", *args], capture_output=True, text=True,
                           env=dict(os.environ,
                                    DEBIAN_FRONTEND="noninteractive"))
        locked = "lock" in p.stderr and p.returncode != 0
        if not locked or time.monotonic() > deadline:
            return p
        time.sleep(2)


class DebianPackage(GateTestCase):

    @classmethod
    def setUpClass(cls):
        cls.lock = open(LOCK, "w")
        fcntl.flock(cls.lock, fcntl.LOCK_EX)
        super().setUpClass()
        b = subprocess.run([os.path.join(TOP, "t", "tools", "build-deb.sh"),
                            os.path.join(TOP, "build", "deb")],
                           capture_output=True, text=True, timeout=900)
        if b.returncode != 0:
            cls.tearDownClass()
            raise AssertionError("build-deb.sh failed:\n" + b.stderr)
        cls.deb = b.stdout.strip().splitlines()[-1]

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.lock.close()

    def setUp(self):
        self.assertEqual(os.geteuid(), 0, "the package test needs root "
                         "(dpkg -i, /etc/nginx)")
        self.assertIsNone(installed_version(), f"{PACKAGE} is installed on "
                          f"this machine; the test installs and purges it: "
                          f"remove it first (dpkg -P {PACKAGE})")
        self.assertFalse(os.path.exists(SITE), SITE)
        self.etc_before = snapshot()
        self.addCleanup(self.restore)

    def restore(self):
        """Whatever happened: the site file and the package go, and
        /etc/nginx is as it was."""
        if os.path.exists(SITE):
            os.unlink(SITE)
        if installed_version() is not None:
            dpkg("-P", PACKAGE)
        self.assertEqual(snapshot(), self.etc_before,
                         "/etc/nginx differs from before the test")

    def serve(self, site_path: str):
        """An nginx that loads what /etc/nginx/modules-enabled/ enables, as
        the stock nginx.conf does, and includes the site file; master as
        root, workers as Debian's www-data.  Returns (process, dir)."""
        d = worker_dir("ug-package-")
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
user www-data;
worker_processes 2;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
include /etc/nginx/modules-enabled/*.conf;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body_temp;
    proxy_temp_path {d}/proxy_temp;
    fastcgi_temp_path {d}/fastcgi_temp;
    uwsgi_temp_path {d}/uwsgi_temp;
    scgi_temp_path {d}/scgi_temp;
    include {site_path};
}}
""")
        # the stock prefix, against which modules-enabled/ names the .so
        proc = subprocess.Popen([NGINX, "-p", "/usr/share/nginx/", "-c", conf,
                                 "-e", os.path.join(d, "error.log")],
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        self.addCleanup(self.stop, proc, d)
        return proc, d

    def stop(self, proc, d):
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        subprocess.run(["rm", "-rf", d])

    def test_install_serve_purge(self):
        p = dpkg("-i", self.deb)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

        # what the package put where Debian's module packages put it
        self.assertTrue(os.path.isfile(SO), SO)
        with open(AVAILABLE) as f:
            self.assertEqual(
                f.read().strip(),
                "load_module modules/ngx_http_usage_gate_module.so;")
        self.assertEqual(os.readlink(ENABLED), AVAILABLE)
        deps = subprocess.run(
            ["dpkg-query", "-W", "-f=${Depends}", PACKAGE],
            capture_output=True, text=True).stdout
        abi = subprocess.run(
            ["dpkg-query", "-W", "-f=${Provides}", "nginx"],
            capture_output=True, text=True).stdout
        self.assertIn("nginx-abi-", abi)
        nginx_abi = [a.strip() for a in abi.split(",")
                     if a.strip().startswith("nginx-abi-")][0]
        for dep in (nginx_abi, "libcurl4", "libjansson4", "libssl3"):
            self.assertIn(dep, deps)

        # the stock nginx, stock nginx.conf, and a gated site
        port = free_port()
        with open(SITE, "w") as f:
            f.write(SITE_TEXT.format(port=port, app=self.app.addr))
        t = subprocess.run([NGINX, "-t"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(t.returncode, 0, t.stdout + t.stderr)
        self.assertIn("/etc/nginx/nginx.conf test is successful", t.stderr)

        # the same site, served by an nginx that enables modules as the
        # stock nginx.conf does
        proc, d = self.serve(SITE)
        wait_for(lambda: proc.poll() is not None or port_open(port), 15,
                 what="nginx with the packaged module to listen")
        self.assertIsNone(proc.poll(), open(os.path.join(d, "error.log"))
                          .read())
        codes = []
        for i in range(4):
            r = ask(port, user("pkg-user"))
            codes.append(r.status)
            if i == 0:
                self.assertEqual(r.header("X-Plan"), "free", r)
                self.assertEqual(r.header("X-Usage-Remaining"), "2", r)
                self.assertEqual(r.seen["x-user-id"], "pkg-user", r)
        self.assertEqual(codes, [200, 200, 200, 402])
        self.assertEqual(request(port, "/ask", "POST", user("other"),
                                 {"agent": "a", "question": "q"}).status, 200)
        ps = subprocess.run(["ps", "-o", "user=", "--ppid", str(proc.pid)],
                            capture_output=True, text=True).stdout.split()
        self.assertEqual(set(ps), {"www-data"}, ps)
        self.stop(proc, d)

        os.unlink(SITE)
        p = dpkg("-P", PACKAGE)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for path in (SO, AVAILABLE, ENABLED, ENABLED + ".removed"):
            self.assertFalse(os.path.lexists(path), f"{path} is left")
        self.assertIsNone(installed_version())
        t = subprocess.run([NGINX, "-t"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(t.returncode, 0, t.stdout + t.stderr)
