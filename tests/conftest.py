"""The test harness: the real ASGI app on the backend chosen by YIKATONG_TEST_BACKEND.

sqlite (default): a fresh SQLite file and the in-process broker.
postgres: a fresh PostgreSQL database (dropped afterwards) and Redis with a per-run prefix.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

BACKEND = os.environ.get("YIKATONG_TEST_BACKEND", "sqlite")
RUN_ID = secrets.token_hex(4)


class CapturingSms:
    """Stands in for the SMS provider (a boundary we cannot reach): keeps what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    async def send(self, phone: str, template: str, params: dict[str, str]) -> None:
        self.sent.append((phone, template, params))

    def last_code(self, phone: str) -> str:
        for p, _, params in reversed(self.sent):
            if p == phone:
                return params["code"]
        raise AssertionError(f"no SMS to {phone}")


def pytest_report_header(config: pytest.Config) -> str:
    label = "PostgreSQL + Redis" if BACKEND == "postgres" else "SQLite + in-process broker"
    return f"yikatong test backend: {label}"


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    if BACKEND == "postgres":
        admin_url = os.environ.get(
            "YIKATONG_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/test"
        )
        name = f"yikatong_test_{RUN_ID}"
        conn = await asyncpg.connect(admin_url.replace("postgres://", "postgresql://", 1))
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        base = admin_url.rsplit("/", 1)[0]
        yield f"{base}/{name}"
        conn = await asyncpg.connect(admin_url.replace("postgres://", "postgresql://", 1))
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite://{Path(tmp) / 'test.sqlite3'}"


@dataclass
class ProviderKeys:
    """Keys the tests sign provider notifications with, as WeChat Pay and Alipay do."""

    wechatpay_private_key: Any
    wechatpay_key_id: str
    wechatpay_mchid: str
    wechatpay_appid: str
    wechatpay_apiv3_key: str
    alipay_private_key: Any
    alipay_app_id: str


@pytest.fixture(scope="session")
def provider_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProviderKeys, Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    keys = ProviderKeys(
        wechatpay_private_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        wechatpay_key_id="PUB_KEY_ID_0114232134912410000000000000000001",
        wechatpay_mchid="1900000109",
        wechatpay_appid="wxd678efh567hg6787",
        wechatpay_apiv3_key="a" * 16 + "B" * 16,
        alipay_private_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        alipay_app_id="2021000000000001",
    )
    folder = tmp_path_factory.mktemp("provider-keys")
    files = []
    for name, private in (
        ("wechatpay.pem", keys.wechatpay_private_key),
        ("alipay.pem", keys.alipay_private_key),
    ):
        path = folder / name
        path.write_bytes(
            private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        files.append(path)
    return keys, files[0], files[1]


@pytest.fixture(scope="session")
def settings(
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    provider_keys: tuple[ProviderKeys, Path, Path],
) -> Any:
    from app.settings import Settings

    keys, wechatpay_pem, alipay_pem = provider_keys
    return Settings(
        wechatpay_mchid=keys.wechatpay_mchid,
        wechatpay_appid=keys.wechatpay_appid,
        wechatpay_apiv3_key=keys.wechatpay_apiv3_key,
        wechatpay_platform_public_key_file=str(wechatpay_pem),
        wechatpay_platform_public_key_id=keys.wechatpay_key_id,
        alipay_app_id=keys.alipay_app_id,
        alipay_public_key_file=str(alipay_pem),
        env="test",
        database_url=database_url,
        redis_url=os.environ.get("YIKATONG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
        if BACKEND == "postgres"
        else None,
        redis_prefix=f"ykt-test-{RUN_ID}:",
        secret_key="test-secret-" + "x" * 40,
        data_dir=tmp_path_factory.mktemp("data"),
        otp_per_ip_per_hour=10_000,
        log_json=True,
        log_level="WARNING",
    )


@pytest.fixture(scope="session")
def sms() -> CapturingSms:
    return CapturingSms()


@pytest.fixture(scope="session")
async def app(settings: Any, sms: CapturingSms) -> AsyncIterator[Any]:
    from app.asgi import create_app
    from app.db import migrate

    await migrate(settings.database_url)
    application = create_app(settings, sms=sms)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.10", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="session")
async def server_url(app: Any) -> AsyncIterator[str]:
    """The same app served by uvicorn on a real socket (for websocket clients)."""
    import asyncio

    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    await task
