"""The first `make` on a fresh machine: nothing the build needs is
installed until t/tools/setup.sh installs it.

The tree as a fresh clone has it (`git ls-files`, plus new files not yet
committed) is copied to a temp dir and make runs there with a PATH whose
first entries are stand-ins: `apt-get` records what it was asked to install
and marks the machine "set up"; until then `dpkg-query` says nothing is
installed and `pkg-config` fails (as it does before `check` is installed);
afterwards they call the real tools.  `npm` and `systemctl` record their
calls and change nothing, `node` and `sudo` pass through.  So a Makefile
that asks pkg-config for Check's flags before setup has run links the unit
tests with the wrong flags, and fails here on its first run, as it did on a
fresh Debian 12.
"""

import os
import shutil
import stat
import subprocess
import tempfile
import unittest

from harness import TOP

SHIMS = {
    "apt-get": """#!/bin/sh
echo "apt-get $*" >> "$UG_FRESH/apt.log"
[ "$1" = install ] && touch "$UG_FRESH/set-up"
exit 0
""",
    "dpkg-query": """#!/bin/sh
[ -f "$UG_FRESH/set-up" ] && exec /usr/bin/dpkg-query "$@"
echo "dpkg-query: no packages found matching $*" >&2
exit 1
""",
    "pkg-config": """#!/bin/sh
[ -f "$UG_FRESH/set-up" ] && exec /usr/bin/pkg-config "$@"
echo "Package check was not found in the pkg-config search path." >&2
exit 1
""",
    "npm": """#!/bin/sh
echo "npm $*" >> "$UG_FRESH/npm.log"
exit 0
""",
    "node": """#!/bin/sh
exec /usr/bin/node "$@"
""",
    "sudo": """#!/bin/sh
exec "$@"
""",
    "systemctl": """#!/bin/sh
echo "systemctl $*" >> "$UG_FRESH/systemctl.log"
exit 1
""",
}

UNIT = "check_fmt"


def tracked_files():
    p = subprocess.run(["git", "-C", TOP, "ls-files", "-co",
                        "--exclude-standard", "-z"],
                       capture_output=True, check=True)
    return [f for f in p.stdout.decode().split("\0")
            if f and os.path.isfile(os.path.join(TOP, f))]


class FreshMachine(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ug-fresh-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.tree = os.path.join(self.dir, "tree")
        for f in tracked_files():
            dst = os.path.join(self.tree, f)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(os.path.join(TOP, f), dst)
        self.shims = os.path.join(self.dir, "shims")
        os.mkdir(self.shims)
        for name, text in SHIMS.items():
            path = os.path.join(self.shims, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP)

    def make(self, *args, makefile_text=None):
        if makefile_text is not None:
            with open(os.path.join(self.tree, "Makefile"), "w") as f:
                f.write(makefile_text)
        env = dict(os.environ, UG_FRESH=self.dir,
                   PATH=self.shims + ":" + os.environ.get("PATH", ""))
        return subprocess.run(["make", "-C", self.tree, *args], env=env,
                              capture_output=True, text=True, timeout=600)

    def log(self, name):
        try:
            with open(os.path.join(self.dir, name)) as f:
                return f.read()
        except OSError:
            return ""

    def unit_binary(self):
        return os.path.join(self.tree, "build", "unit", UNIT)

    def test_first_unit_build_links_after_setup(self):
        p = self.make(self.unit_binary())
        self.assertIn("install", self.log("apt.log"),
                      "setup did not install anything:\n" + p.stdout)
        self.assertIn("check", self.log("apt.log"))
        self.assertEqual(p.returncode, 0,
                         "the first build of a unit test on a fresh machine "
                         "failed:\n" + p.stdout[-3000:] + p.stderr[-3000:])
        r = subprocess.run([self.unit_binary()], capture_output=True,
                           text=True, timeout=120,
                           env=dict(os.environ, CK_FORK="yes"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("Failures: 0, Errors: 0", r.stdout + r.stderr)

    def test_flags_read_before_setup_are_caught(self):
        """The same build with a Makefile that reads Check's flags when it
        is parsed (before setup) fails: the stand-ins reproduce the fresh
        machine."""
        with open(os.path.join(TOP, "Makefile")) as f:
            text = f.read()
        early = "CHECK_LIBS := $(shell pkg-config --libs check " \
                "2>/dev/null || echo -lcheck)"
        lines = [early if ln.startswith("CHECK_LIBS") else ln
                 for ln in text.splitlines()]
        self.assertIn(early, lines, "the Makefile has no CHECK_LIBS line")
        p = self.make(self.unit_binary(),
                      makefile_text="\n".join(lines) + "\n")
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("undefined reference", p.stderr)

    def test_setup_for_the_demo_needs_no_node(self):
        p = subprocess.run(
            [os.path.join(self.tree, "t", "tools", "setup.sh"), "run"],
            env=dict(os.environ, UG_FRESH=self.dir,
                     PATH=self.shims + ":" + os.environ["PATH"]),
            capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        installs = [ln for ln in self.log("apt.log").splitlines()
                    if ln.startswith("apt-get install")]
        self.assertEqual(len(installs), 1, installs)
        asked = set(installs[0].split()[2:])
        for pkg in ("nginx-dev", "libjansson-dev", "python3-fastapi"):
            self.assertIn(pkg, asked)
        for pkg in ("nodejs", "npm", "clang", "wrk", "check"):
            self.assertNotIn(pkg, asked)
        self.assertEqual(self.log("npm.log"), "")

    def test_setup_for_the_module_needs_only_build_deps(self):
        p = subprocess.run(
            [os.path.join(self.tree, "t", "tools", "setup.sh"), "build"],
            env=dict(os.environ, UG_FRESH=self.dir,
                     PATH=self.shims + ":" + os.environ["PATH"]),
            capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        installs = [ln for ln in self.log("apt.log").splitlines()
                    if ln.startswith("apt-get install")]
        self.assertEqual(len(installs), 1, installs)
        asked = set(installs[0].split()[2:])
        self.assertIn("nginx-dev", asked)
        for pkg in ("nodejs", "npm", "clang", "wrk", "check",
                    "python3-fastapi", "prometheus"):
            self.assertNotIn(pkg, asked)
        self.assertEqual(self.log("npm.log"), "")


if __name__ == "__main__":
    unittest.main()
