"""The command line, run as a user would, on a fresh SQLite file (or the test PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def yikatong(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        "YIKATONG_DATA_DIR": str(tmp_path),
        "YIKATONG_DATABASE_URL": f"sqlite://{tmp_path}/cli.sqlite3",
        "YIKATONG_ENV": "development",
        "YIKATONG_LOG_LEVEL": "WARNING",
    }


def test_exported_schema_is_checked_in():
    result = yikatong("export-schema", env={})
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "schema" / "schema.graphql").read_text(), (
        "schema/schema.graphql is stale: run `yikatong export-schema > schema/schema.graphql`"
    )


def test_migrate_demo_is_idempotent_and_audit_verifies(cli_env):
    assert yikatong("migrate", env=cli_env).returncode == 0
    first = yikatong("demo", env=cli_env)
    assert first.returncode == 0, first.stderr
    assert "coffee-admin" in first.stdout and "operator" in first.stdout
    second = yikatong("demo", env=cli_env)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    verify = yikatong("audit", "verify", env=cli_env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "0 problems" in verify.stdout


def test_demo_refused_in_production(cli_env):
    env = {**cli_env, "YIKATONG_ENV": "production", "YIKATONG_SECRET_KEY": "p" * 40}
    result = yikatong("demo", env=env)
    assert result.returncode != 0
    assert "refused" in result.stderr


def test_production_refuses_to_start_without_secret(cli_env):
    env = {**cli_env, "YIKATONG_ENV": "production", "YIKATONG_SECRET_KEY": ""}
    result = yikatong("migrate", env=env)
    assert result.returncode == 2
    assert "YIKATONG_SECRET_KEY" in result.stderr


def test_create_operator_then_duplicate(cli_env):
    assert yikatong("migrate", env=cli_env).returncode == 0
    ok = yikatong(
        "create-operator", "root-op", "--password-stdin", env=cli_env, stdin="a-long-password\n"
    )
    assert ok.returncode == 0, ok.stderr
    again = yikatong(
        "create-operator", "root-op", "--password-stdin", env=cli_env, stdin="a-long-password\n"
    )
    assert again.returncode == 1
    assert "USERNAME_TAKEN" in again.stderr
    weak = yikatong("create-operator", "other-op", "--password-stdin", env=cli_env, stdin="short\n")
    assert weak.returncode == 1


def test_serve_with_demo_answers_graphiql_and_demo_logins(cli_env):
    """README command 1, as a newcomer runs it: serve --demo, open GraphiQL, log in."""
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--demo", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **cli_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        page = httpx.get(f"{base}/graphql", headers={"Accept": "text/html"}, timeout=5)
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        login = httpx.post(
            f"{base}/graphql",
            json={
                "query": "mutation($i: LoginInput!) { login(input: $i) { accessToken errors { code } } }",
                "variables": {"i": {"username": "coffee-admin", "password": "yikatong-demo"}},
            },
            timeout=10,
        ).json()
        assert login["data"]["login"]["errors"] == [] and login["data"]["login"]["accessToken"]
    finally:
        server.kill()
        output = server.communicate()[0]
    assert "coffee-admin" in output
