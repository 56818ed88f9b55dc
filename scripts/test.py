"""Run the test suite on every backend that is here: SQLite + in-process broker always,
PostgreSQL + Redis when reachable. Both runs go in parallel (the machine has 2 cores) and their
outputs are printed one after the other. Exit status: non-zero if any run failed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

PG_URL = os.environ.get("YIKATONG_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("YIKATONG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def main() -> int:
    args = sys.argv[1:]
    runs: list[tuple[str, dict[str, str]]] = [
        ("SQLite + in-process broker", {"YIKATONG_TEST_BACKEND": "sqlite"})
    ]
    pg = reachable("127.0.0.1", 5432) or "127.0.0.1:5432" not in PG_URL
    redis = reachable("127.0.0.1", 6379) or "127.0.0.1:6379" not in REDIS_URL
    if pg and redis:
        runs.append(
            (
                "PostgreSQL + Redis",
                {
                    "YIKATONG_TEST_BACKEND": "postgres",
                    "YIKATONG_TEST_PG_URL": PG_URL,
                    "YIKATONG_TEST_REDIS_URL": REDIS_URL,
                },
            )
        )
    else:
        missing = ", ".join(n for n, ok in (("PostgreSQL", pg), ("Redis", redis)) if not ok)
        print("=" * 78)
        print(f"!!! {missing} not reachable: running on SQLite + in-process broker ONLY !!!")
        print("=" * 78, flush=True)
    if os.environ.get("YIKATONG_TEST_ONLY"):
        only = os.environ["YIKATONG_TEST_ONLY"]
        runs = [r for r in runs if r[1]["YIKATONG_TEST_BACKEND"] == only]
    procs = []
    reports = []
    started = time.monotonic()
    for label, env in runs:
        out = tempfile.TemporaryFile(mode="w+")
        report = tempfile.NamedTemporaryFile(suffix=".xml", delete=False)
        report.close()
        reports.append(report.name)
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", f"--junitxml={report.name}", *args],
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        procs.append((label, proc, out))
    status = 0
    for label, proc, out in procs:
        code = proc.wait()
        out.seek(0)
        print("=" * 78)
        print(f"=== backend: {label}  (exit {code})")
        print("=" * 78)
        sys.stdout.write(out.read())
        sys.stdout.flush()
        if code != 0:
            status = code
    print(
        f"backends tested: {', '.join(label for label, _, _ in procs)} "
        f"in {time.monotonic() - started:.0f}s"
    )
    passed = failed = skipped = 0
    for name in reports:
        try:
            root = ET.parse(name).getroot()
        except (ET.ParseError, OSError):
            continue
        for suite in root.iter("testsuite"):
            total = int(suite.get("tests", 0))
            bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skip = int(suite.get("skipped", 0))
            passed += total - bad - skip
            failed += bad
            skipped += skip
        os.unlink(name)
    if status == 0 and passed == 0:
        status = 5
    # One closing line for the whole run, over every backend.
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return status


if __name__ == "__main__":
    sys.exit(main())
