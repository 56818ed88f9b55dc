"""The bridge tests need pyscard (the `devices` extra) and, for the integration test, pcscd with
vpcd. Without them they are skipped, and the skip is announced at the end of the run in capitals
so nobody takes a green run for a tested bridge."""

from __future__ import annotations

from typing import Any

import pytest

_skipped: list[tuple[str, str]] = []


def _note(report: pytest.TestReport | pytest.CollectReport) -> None:
    if report.skipped and "tests/devices" in report.nodeid:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append((report.nodeid, str(reason)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _note(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _note(report)  # a whole module skipped (pyscard missing)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _skipped:
        return
    write = terminalreporter.write_line
    write("")
    write("!" * 78)
    write("!!! READER BRIDGE TESTS SKIPPED: the bridge was NOT fully tested here")
    for reason in sorted({reason for _, reason in _skipped}):
        write(f"!!!   {reason}")
    write("!" * 78)
