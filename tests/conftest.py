"""The test harness: the real ASGI app on the backend chosen by YIKATONG_TEST_BACKEND.

sqlite (default): a fresh SQLite file and the in-process broker.
postgres: a fresh PostgreSQL database (dropped afterwards) and Redis with a per-run prefix.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from starlette.requests import Request
from starlette.responses import Response

from domain import clock

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
    """Keys the tests sign provider notifications with, as WeChat Pay and Alipay do, and our own
    keys the app signs orders with (the merchant API key, the Alipay application key)."""

    wechatpay_private_key: Any
    wechatpay_key_id: str
    wechatpay_mchid: str
    wechatpay_appid: str
    wechatpay_apiv3_key: str
    alipay_private_key: Any
    alipay_app_id: str
    wechatpay_merchant_private_key: Any
    wechatpay_merchant_serial: str
    wechatpay_merchant_key_file: Path
    alipay_app_private_key: Any
    alipay_app_key_file: Path


PUBLIC_URL = "https://yikatong.example.com"


@pytest.fixture(scope="session")
def provider_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProviderKeys, Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    def new_key() -> Any:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    folder = tmp_path_factory.mktemp("provider-keys")
    merchant_key, app_key = new_key(), new_key()
    # Our keys as the providers' tools hand them out: WeChat's apiclient_key.pem (PKCS#8 PEM),
    # and the bare base64 PKCS#8 text Alipay's key tool prints.
    merchant_file = folder / "apiclient_key.pem"
    merchant_file.write_bytes(
        merchant_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    app_file = folder / "alipay-app-private-key.txt"
    app_file.write_bytes(
        base64.b64encode(
            app_key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    )
    keys = ProviderKeys(
        wechatpay_private_key=new_key(),
        wechatpay_key_id="PUB_KEY_ID_0114232134912410000000000000000001",
        wechatpay_mchid="1900000109",
        wechatpay_appid="wxd678efh567hg6787",
        wechatpay_apiv3_key="a" * 16 + "B" * 16,
        alipay_private_key=new_key(),
        alipay_app_id="2021000000000001",
        wechatpay_merchant_private_key=merchant_key,
        wechatpay_merchant_serial="444F4864EA9B34415B2AC5A9C0E4F1D0E8A7B6C5",
        wechatpay_merchant_key_file=merchant_file,
        alipay_app_private_key=app_key,
        alipay_app_key_file=app_file,
    )
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


class FakeWechatPay:
    """WeChat Pay's APP order API (POST /v3/pay/transactions/app), served on a real socket.

    It checks what WeChat checks: the WECHATPAY2-SHA256-RSA2048 Authorization (our merchant
    key's signature over method, path, timestamp, nonce and body; mchid; serial_no; a fresh
    timestamp), the headers and every body field; a repeated out_trade_no must repeat the first
    order exactly. It answers {"prepay_id"} signed with the platform key, as WeChat does.
    Set `failure` to make it fail: "rejected" (400 PARAM_ERROR), "down" (500 SYSTEM_ERROR),
    "forged" (200 signed by another key), "unsigned" (200 without signature), "slow" (answers
    after `delay` seconds).
    """

    PATH = "/v3/pay/transactions/app"

    def __init__(self, keys: ProviderKeys) -> None:
        self.keys = keys
        self.url = ""
        self.failure: str | None = None
        self.delay = 2.0
        self.requests: list[dict[str, Any]] = []  # accepted order bodies, in order
        self.orders: dict[str, tuple[bytes, str]] = {}  # out_trade_no -> (first body, prepay_id)

    def reset(self) -> None:
        self.failure = None

    def calls_for(self, out_trade_no: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["out_trade_no"] == out_trade_no]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        response = await self.answer(Request(scope, receive))
        await response(scope, receive, send)

    async def answer(self, request: Request) -> Response:
        body = await request.body()

        def error(status: int, code: str, message: str) -> Response:
            return Response(
                json.dumps({"code": code, "message": message}, ensure_ascii=False),
                status_code=status,
                media_type="application/json",
            )

        if request.method != "POST" or request.url.path != self.PATH:
            return error(404, "NOT_FOUND", "no such API")
        problem = self.authorization_problem(request, body)
        if problem:
            return error(401, "SIGN_ERROR", problem)
        if request.headers.get("accept") != "application/json" or not request.headers.get(
            "content-type", ""
        ).startswith("application/json"):
            return error(400, "PARAM_ERROR", "Accept and Content-Type must be application/json")
        if not request.headers.get("user-agent"):
            return error(400, "PARAM_ERROR", "User-Agent is required")
        try:
            order = json.loads(body)
        except ValueError:
            return error(400, "PARAM_ERROR", "body is not JSON")
        problem = self.order_problem(order)
        if problem:
            return error(400, "PARAM_ERROR", problem)
        if self.failure == "rejected":
            return error(400, "PARAM_ERROR", "参数错误 (told to fail)")
        if self.failure == "down":
            return error(500, "SYSTEM_ERROR", "系统异常，请稍后重试")
        if self.failure == "slow":
            await asyncio.sleep(self.delay)
        first = self.orders.get(order["out_trade_no"])
        if first is not None and json.loads(first[0]) != order:
            return error(400, "INVALID_REQUEST", "201 商户订单号重复")
        self.requests.append(order)
        prepay_id = first[1] if first else "wx" + secrets.token_hex(16)
        self.orders[order["out_trade_no"]] = (body, prepay_id)
        answer = json.dumps({"prepay_id": prepay_id}).encode()
        return Response(answer, 200, self.signed_headers(answer), "application/json")

    def authorization_problem(self, request: Request, body: bytes) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, rest = header.partition(" ")
        if scheme != "WECHATPAY2-SHA256-RSA2048":
            return "wrong authorization scheme"
        fields = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if set(fields) != {"mchid", "nonce_str", "signature", "timestamp", "serial_no"}:
            return f"authorization fields {sorted(fields)}"
        if fields["mchid"] != self.keys.wechatpay_mchid:
            return "mchid does not match"
        if fields["serial_no"] != self.keys.wechatpay_merchant_serial:
            return "unknown merchant certificate serial"
        if abs(int(fields["timestamp"]) - clock.now().timestamp()) > 300:
            return "timestamp expired"
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        message = (
            f"POST\n{path}\n{fields['timestamp']}\n{fields['nonce_str']}\n".encode() + body + b"\n"
        )
        try:
            self.keys.wechatpay_merchant_private_key.public_key().verify(
                base64.b64decode(fields["signature"]), message, padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, ValueError):
            return "signature does not verify"
        return None

    def order_problem(self, order: Any) -> str | None:
        expected = {"appid", "mchid", "description", "out_trade_no", "time_expire", "notify_url"}
        if not isinstance(order, dict) or set(order) != expected | {"amount"}:
            return f"fields {sorted(order) if isinstance(order, dict) else order!r}"
        if (order["appid"], order["mchid"]) != (
            self.keys.wechatpay_appid,
            self.keys.wechatpay_mchid,
        ):
            return "appid and mchid do not match"
        if not isinstance(order["description"], str) or not 0 < len(order["description"]) <= 127:
            return "description"
        if not re.fullmatch(r"[0-9A-Za-z_\-|*]{6,32}", order["out_trade_no"]):
            return "out_trade_no"
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", order["time_expire"]):
            return "time_expire is not rfc3339 in +08:00"
        url = order["notify_url"]
        if not url.startswith("https://") or "?" in url:
            return "notify_url must be https without a query"
        amount = order["amount"]
        if set(amount) != {"total", "currency"} or amount["currency"] != "CNY":
            return "amount"
        if not isinstance(amount["total"], int) or isinstance(amount["total"], bool):
            return "amount.total is not an integer"
        if amount["total"] <= 0:
            return "amount.total must be positive"
        return None

    def signed_headers(self, body: bytes) -> dict[str, str]:
        headers = {"Request-ID": "08F4" + secrets.token_hex(8).upper()}
        if self.failure == "unsigned":
            return headers
        key = self.keys.wechatpay_private_key
        if self.failure == "forged":
            key = self.keys.wechatpay_merchant_private_key  # not WeChat's key
        timestamp = str(int(clock.now().timestamp()))
        nonce = secrets.token_hex(16)
        message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
        signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return {
            **headers,
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": base64.b64encode(signature).decode(),
            "Wechatpay-Serial": self.keys.wechatpay_key_id,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        }


@pytest.fixture(scope="session")
async def wechatpay_server(
    provider_keys: tuple[ProviderKeys, Path, Path],
) -> AsyncIterator[FakeWechatPay]:
    """The fake WeChat Pay order API on 127.0.0.1; the app's settings point at it."""
    import uvicorn

    fake = FakeWechatPay(provider_keys[0])
    server = uvicorn.Server(
        uvicorn.Config(fake, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    fake.url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    yield fake
    server.should_exit = True
    await task


@pytest.fixture(scope="session")
def settings(
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    provider_keys: tuple[ProviderKeys, Path, Path],
    wechatpay_server: FakeWechatPay,
) -> Any:
    from app.settings import Settings

    keys, wechatpay_pem, alipay_pem = provider_keys
    return Settings(
        wechatpay_mchid=keys.wechatpay_mchid,
        wechatpay_appid=keys.wechatpay_appid,
        wechatpay_apiv3_key=keys.wechatpay_apiv3_key,
        wechatpay_platform_public_key_file=str(wechatpay_pem),
        wechatpay_platform_public_key_id=keys.wechatpay_key_id,
        wechatpay_merchant_private_key_file=str(keys.wechatpay_merchant_key_file),
        wechatpay_merchant_serial=keys.wechatpay_merchant_serial,
        wechatpay_api_base=wechatpay_server.url,
        alipay_app_id=keys.alipay_app_id,
        alipay_public_key_file=str(alipay_pem),
        alipay_app_private_key_file=str(keys.alipay_app_key_file),
        public_url=PUBLIC_URL,
        env="test",
        database_url=database_url,
        redis_url=os.environ.get("YIKATONG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
        if BACKEND == "postgres"
        else None,
        redis_prefix=f"ykt-test-{RUN_ID}:",
        secret_key="test-secret-" + "x" * 40,
        data_dir=tmp_path_factory.mktemp("data"),
        otp_per_ip_per_hour=10_000,
        otp_verifications_per_ip_per_hour=10_000,  # every test logs consumers in from one IP
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
