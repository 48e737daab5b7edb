#!/usr/bin/python3
"""Runs the integration tests: every t/integration/test_*.py.

usage: /usr/bin/python3 t/integration/run.py [PATTERN]

PATTERN (optional) selects tests whose id (module.Class.test_name) matches
it: a shell-style pattern, or a plain substring.  One line per test, the
failures' details, then exactly one closing line "N passed, N failed"
(errors, skips and unexpected successes count as failed).  Exit code 1 if
any failed.  Works from any directory; UG_MODULE names the built module.
"""

import fnmatch
import os
import re
import sys
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def select(suite, pattern):
    if not pattern:
        return suite
    pat = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
    tests = [t for t in iter_tests(suite) if fnmatch.fnmatch(t.id(), pat)]
    # keep tests of one class together so that setUpClass runs once
    return unittest.TestSuite(tests)


class LineResult(unittest.TestResult):
    """Prints one line per test as it ends.  A test counts once: passed if
    nothing (test, subtest, teardown, cleanup) failed, else failed."""

    def __init__(self, planned=()):
        super().__init__()
        # "module.Class" of every test to run, one entry per test
        self.planned = list(planned)
        self.passed = 0
        self.failed = 0
        self.details = []
        self._current = None
        self._problems = []
        self._start = 0.0

    def startTest(self, test):
        super().startTest(test)
        self._current = test
        self._problems = []
        self._start = time.monotonic()

    def stopTest(self, test):
        super().stopTest(test)
        took = time.monotonic() - self._start
        if self._problems:
            self.failed += 1
            word = self._problems[0][0]
            for w, text in self._problems:
                self.details.append((w, test.id(), text))
        else:
            self.passed += 1
            word = "ok"
        print(f"{word:<5} {test.id()} ({took:.1f}s)", flush=True)
        self._current = None

    def _problem(self, test, word, err):
        text = err if isinstance(err, str) else \
            "".join(traceback.format_exception(*err))
        if self._current is None:
            # setUpClass / setUpModule / tearDown*: no startTest.  A failed
            # set-up fails every test it kept from running.
            n = 1
            m = re.match(r"(setUpClass|setUpModule) \((.*)\)$", test.id())
            if m:
                n = max(1, sum(1 for t in self.planned
                               if t == m.group(2)
                               or t.startswith(m.group(2) + ".")))
            self.failed += n
            print(f"{word:<5} {test.id()}"
                  + (f" ({n} tests not run)" if n > 1 else ""), flush=True)
            self.details.append((word, test.id(), text))
        else:
            self._problems.append((word, text))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._problem(test, "FAIL", err)

    def addError(self, test, err):
        super().addError(test, err)
        self._problem(test, "ERROR", err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._problem(test, "SKIP",
                      f"skipped (counted as failed): {reason}\n")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._problem(test, "XFAIL", "expected failure (counted as failed)\n")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._problem(test, "XPASS",
                      "unexpected success (counted as failed)\n")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            word = "FAIL" if issubclass(err[0], test.failureException) \
                else "ERROR"
            self._problem(test, word, f"{subtest.id()}\n"
                          + "".join(traceback.format_exception(*err)))


def main(argv):
    pattern = argv[1] if len(argv) > 1 else None
    loader = unittest.TestLoader()
    suite = loader.discover(start_dir=HERE, pattern="test_*.py",
                            top_level_dir=HERE)
    suite = select(suite, pattern)
    count = len(list(iter_tests(suite)))

    result = LineResult(t.id().rsplit(".", 1)[0] for t in iter_tests(suite))
    started = time.monotonic()
    suite.run(result)
    took = time.monotonic() - started

    for word, tid, text in result.details:
        print()
        print("=" * 70)
        print(f"{word}: {tid}")
        print("-" * 70)
        print(text.rstrip())

    print()
    print(f"integration: {count} tests in {took:.0f}s")
    print(f"{result.passed} passed, {result.failed} failed")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
