"""Authentication over HTTP: password login, rotating refresh tokens, forged access tokens,
phone one-time codes, and the language of error messages.

The database and the rate limiters live for the whole session, so every test uses its own
usernames and phones. OTP tests use a client with an address of their own, so that the
per-address limit on code guesses (60 an hour) is not shared with the rest of the suite.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import jwt
import pytest

from tests.helpers import PASSWORD, gql, login, top_code, uid

REQUEST_OTP = """mutation($i: RequestOtpInput!) { requestOtp(input: $i) {
  maskedPhone expiresInSeconds errors { field code message } } }"""
LOGIN_OTP = """mutation($i: LoginWithOtpInput!) { loginWithOtp(input: $i) {
  accessToken refreshToken role errors { field code message } } }"""
REFRESH = """mutation($i: RefreshTokenInput!) { refreshToken(input: $i) {
  accessToken refreshToken role errors { field code message } } }"""
VIEWER = "{ viewer { id role username maskedPhone } }"


# --- helpers -------------------------------------------------------------------------------


def new_phone() -> str:
    return "139" + f"{secrets.randbelow(10**8):08d}"


def masked(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


@contextlib.asynccontextmanager
async def client_at(app: Any, ip: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """The same app seen from another client address."""
    ip = ip or f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def own_ip(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with client_at(app) as c:
        yield c


async def fresh_window(seconds: int, margin: float) -> None:
    """The limiters use fixed wall-clock windows: do not start a burst just before one ends."""
    left = seconds - time.time() % seconds
    if left < margin:
        await asyncio.sleep(left + 0.1)


def limiter_clock_ahead(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Move only the rate limiters' clock (the one-code-a-minute window) forward."""
    from app import ratelimit

    real = time.time
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: real() + seconds))


async def request_otp(c: httpx.AsyncClient, phone: str, **kw: Any) -> dict[str, Any]:
    body = await gql(c, REQUEST_OTP, {"i": {"phone": phone}}, **kw)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["requestOtp"]
    return payload


async def login_otp(c: httpx.AsyncClient, phone: str, code: str, **kw: Any) -> dict[str, Any]:
    body = await gql(c, LOGIN_OTP, {"i": {"phone": phone, "code": code}}, **kw)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["loginWithOtp"]
    return payload


async def refresh(c: httpx.AsyncClient, token: str) -> dict[str, Any]:
    body = await gql(c, REFRESH, {"i": {"refreshToken": token}})
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["refreshToken"]
    return payload


async def viewer(c: httpx.AsyncClient, token: str) -> dict[str, Any]:
    body = await gql(c, VIEWER, token=token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["viewer"]
    return result


async def new_operator() -> tuple[str, str]:
    """A password user: (username, user id)."""
    from domain.identity.service import create_operator

    name = uid("auth")
    user = await create_operator(name, PASSWORD)
    return name, user.id


async def otp_login(c: httpx.AsyncClient, sms: Any, phone: str) -> dict[str, Any]:
    sent = await request_otp(c, phone)
    assert sent["errors"] == [], sent
    payload = await login_otp(c, phone, sms.last_code(phone))
    assert payload["errors"] == [], payload
    return payload


def b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(segment: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return result


# --- login ---------------------------------------------------------------------------------


async def test_login_returns_tokens_and_viewer_works(client):
    name, user_id = await new_operator()
    body = await gql(
        client,
        """mutation($i: LoginInput!) { login(input: $i) {
             accessToken refreshToken role errors { field code message } } }""",
        {"i": {"username": name, "password": PASSWORD}},
    )
    assert "errors" not in body, body
    payload = body["data"]["login"]
    assert payload["errors"] == []
    assert payload["role"] == "OPERATOR"
    assert payload["accessToken"] and payload["refreshToken"]
    assert payload["accessToken"] != payload["refreshToken"]
    me = await viewer(client, payload["accessToken"])
    assert me["id"] == user_id
    assert me["role"] == "OPERATOR"
    assert me["username"] == name


async def test_login_username_is_case_insensitive(client):
    name, user_id = await new_operator()
    payload = await login(client, f"  {name.upper()} ", PASSWORD)
    assert payload["errors"] == [], payload
    assert (await viewer(client, payload["accessToken"]))["id"] == user_id


async def test_wrong_password_and_unknown_user_are_indistinguishable(client):
    name, _ = await new_operator()
    wrong_body = await gql(
        client,
        "mutation($i: LoginInput!) { login(input: $i) { accessToken refreshToken role "
        "errors { field code message } } }",
        {"i": {"username": name, "password": "not-the-password"}},
    )
    unknown_body = await gql(
        client,
        "mutation($i: LoginInput!) { login(input: $i) { accessToken refreshToken role "
        "errors { field code message } } }",
        {"i": {"username": uid("ghost"), "password": "not-the-password"}},
    )
    for body in (wrong_body, unknown_body):
        assert "errors" not in body, body  # a UserError, not a top-level error
        payload = body["data"]["login"]
        assert codes(payload) == ["INVALID_CREDENTIALS"]
        assert payload["accessToken"] is None and payload["refreshToken"] is None
        assert payload["role"] is None
    assert wrong_body["data"]["login"]["errors"] == unknown_body["data"]["login"]["errors"]


async def test_malformed_username_is_just_invalid_credentials(client):
    payload = await login(client, "x" * 300 + "'; drop table users; --", "whatever-password")
    assert codes(payload) == ["INVALID_CREDENTIALS"]


async def test_deactivated_user_cannot_log_in(client):
    from domain.identity.models import User

    name, user_id = await new_operator()
    await User.filter(id=user_id).update(is_active=False)
    payload = await login(client, name, PASSWORD)
    assert codes(payload) == ["INVALID_CREDENTIALS"]
    assert payload["accessToken"] is None


async def test_login_rate_limited_on_the_eleventh_attempt(client, app):
    name, _ = await new_operator()
    await fresh_window(900, 60)
    for _ in range(10):
        payload = await login(client, name, "wrong-password-123")
        assert codes(payload) == ["INVALID_CREDENTIALS"], payload
    # The 11th is refused even with the right password, in any letter case.
    payload = await login(client, name, PASSWORD)
    assert codes(payload) == ["RATE_LIMITED"], payload
    assert payload["accessToken"] is None
    payload = await login(client, name.upper(), PASSWORD)
    assert codes(payload) == ["RATE_LIMITED"], payload
    # The limit is per username and address: the user can still log in from elsewhere.
    async with client_at(app) as elsewhere:
        payload = await login(elsewhere, name, PASSWORD)
    assert payload["errors"] == [], payload
    other_name, _ = await new_operator()
    payload = await login(client, other_name, PASSWORD)
    assert payload["errors"] == [], payload


# --- refresh tokens ------------------------------------------------------------------------


async def test_refresh_rotates_and_the_new_refresh_token_works(client):
    name, user_id = await new_operator()
    first = await login(client, name, PASSWORD)
    second = await refresh(client, first["refreshToken"])
    assert second["errors"] == [], second
    assert second["role"] == "OPERATOR"
    assert second["refreshToken"] != first["refreshToken"]
    assert second["accessToken"] != first["accessToken"]
    assert (await viewer(client, second["accessToken"]))["id"] == user_id
    third = await refresh(client, second["refreshToken"])
    assert third["errors"] == [], third
    assert third["refreshToken"] not in (first["refreshToken"], second["refreshToken"])
    assert (await viewer(client, third["accessToken"]))["id"] == user_id


async def test_refresh_token_reuse_revokes_the_whole_family(client):
    name, user_id = await new_operator()
    first = await login(client, name, PASSWORD)
    second = await refresh(client, first["refreshToken"])
    third = await refresh(client, second["refreshToken"])
    assert second["errors"] == [] and third["errors"] == []

    reused = await refresh(client, first["refreshToken"])
    assert codes(reused) == ["REFRESH_TOKEN_REUSED"], reused
    assert reused["accessToken"] is None and reused["refreshToken"] is None
    # Even the newest token of the family (never used) is now refused, and so is the reused one.
    for token in (third["refreshToken"], second["refreshToken"], first["refreshToken"]):
        payload = await refresh(client, token)
        assert codes(payload) == ["REFRESH_TOKEN_INVALID"], payload

    # Another login of the same user (another family) is not affected.
    other = await login(client, name, PASSWORD)
    rotated = await refresh(client, other["refreshToken"])
    assert rotated["errors"] == [], rotated
    assert (await viewer(client, rotated["accessToken"]))["id"] == user_id


@pytest.mark.parametrize(
    "token",
    ["garbage", "rt_" + "A" * 43, "", "x" * 5000],
    ids=["garbage", "rt-lookalike", "empty", "long"],
)
async def test_garbage_refresh_token_is_invalid(client, token):
    payload = await refresh(client, token)
    assert codes(payload) == ["REFRESH_TOKEN_INVALID"], payload
    assert payload["accessToken"] is None


async def test_access_token_is_not_a_refresh_token(client):
    name, _ = await new_operator()
    tokens = await login(client, name, PASSWORD)
    payload = await refresh(client, tokens["accessToken"])
    assert codes(payload) == ["REFRESH_TOKEN_INVALID"], payload


async def test_expired_refresh_token_is_invalid(client):
    from domain import clock

    name, _ = await new_operator()
    tokens = await login(client, name, PASSWORD)
    clock.advance(timedelta(days=31))
    try:
        payload = await refresh(client, tokens["refreshToken"])
    finally:
        clock.reset()
    assert codes(payload) == ["REFRESH_TOKEN_INVALID"], payload


async def test_refresh_token_is_stored_only_as_a_hash(client):
    from domain.identity.models import RefreshToken

    name, user_id = await new_operator()
    first = await login(client, name, PASSWORD)
    second = await refresh(client, first["refreshToken"])
    raws = [first["refreshToken"], second["refreshToken"]]

    all_hashes = await RefreshToken.all().values_list("token_hash", flat=True)
    for raw in raws:
        assert raw not in all_hashes
        assert not await RefreshToken.filter(token_hash=raw).exists()
    rows = await RefreshToken.filter(user_id=user_id).values()
    assert len(rows) == 2
    stored = {row["token_hash"] for row in rows}
    assert stored == {hashlib.sha256(raw.encode()).hexdigest() for raw in raws}
    for row in rows:
        for value in row.values():
            assert str(value) not in raws, row
            for raw in raws:
                assert raw not in str(value), row


# --- forged, expired and malformed access tokens --------------------------------------------


@pytest.fixture(scope="module")
async def consumer(app: Any, sms: Any) -> dict[str, str]:
    """A consumer (user id and real access token) whose tokens the tests below forge."""
    async with client_at(app) as c:
        payload = await otp_login(c, sms, new_phone())
        me = await viewer(c, payload["accessToken"])
    return {"id": me["id"], "token": payload["accessToken"]}


def claims(user_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    result: dict[str, Any] = {
        "iss": "yikatong",
        "sub": user_id,
        "typ": "access",
        "role": "CONSUMER",
        "iat": now,
        "exp": now + 600,
        "jti": secrets.token_urlsafe(12),
    }
    result.update(changes)
    return {k: v for k, v in result.items() if v is not None}


def tamper(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    return ".".join([header, b64({**unb64(payload), **changes}), signature])


OTHER_KEY = "another-secret-" + "y" * 40
Forge = Callable[[Any, dict[str, str]], str]
ATTACKS: dict[str, Forge] = {
    "expired": lambda s, u: (
        "Bearer "
        + jwt.encode(
            claims(u["id"], iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
            s.secret_key,
            algorithm="HS256",
        )
    ),
    "tampered-role": lambda s, u: "Bearer " + tamper(u["token"], role="OPERATOR"),
    "tampered-sub": lambda s, u: "Bearer " + tamper(u["token"], sub="usr_someone_else"),
    "alg-none": lambda s, u: (
        "Bearer "
        + b64({"alg": "none", "typ": "JWT"})
        + "."
        + b64(claims(u["id"], role="OPERATOR"))
        + "."
    ),
    "alg-none-keeping-signature": lambda s, u: (
        "Bearer " + ".".join([b64({"alg": "none", "typ": "JWT"}), *u["token"].split(".")[1:]])
    ),
    "other-key": lambda s, u: (
        "Bearer " + jwt.encode(claims(u["id"], role="OPERATOR"), OTHER_KEY, algorithm="HS256")
    ),
    "typ-refresh": lambda s, u: (
        "Bearer " + jwt.encode(claims(u["id"], typ="refresh"), s.secret_key, algorithm="HS256")
    ),
    "no-typ": lambda s, u: (
        "Bearer " + jwt.encode(claims(u["id"], typ=None), s.secret_key, algorithm="HS256")
    ),
    "hs512-right-key": lambda s, u: (
        "Bearer " + jwt.encode(claims(u["id"]), s.secret_key, algorithm="HS512")
    ),
    "other-issuer": lambda s, u: (
        "Bearer " + jwt.encode(claims(u["id"], iss="someone-else"), s.secret_key, algorithm="HS256")
    ),
    "no-exp": lambda s, u: (
        "Bearer " + jwt.encode(claims(u["id"], exp=None), s.secret_key, algorithm="HS256")
    ),
    "unknown-role": lambda s, u: (
        "Bearer " + jwt.encode(claims(u["id"], role="ROOT"), s.secret_key, algorithm="HS256")
    ),
    "garbage": lambda s, u: "Bearer this-is-not-a-jwt",
    "garbage-three-segments": lambda s, u: "Bearer aaa.bbb.ccc",
    "basic": lambda s, u: "Basic " + base64.b64encode(b"admin:correct-horse-battery").decode(),
    "bearer-without-token": lambda s, u: "Bearer ",
    "token-without-scheme": lambda s, u: u["token"],
}


async def test_forged_token_with_the_right_key_is_accepted(client, settings, consumer):
    """The control for the attacks below: the same construction, done right, is accepted."""
    token = jwt.encode(claims(consumer["id"]), settings.secret_key, algorithm="HS256")
    assert (await viewer(client, token))["id"] == consumer["id"]
    assert (await viewer(client, consumer["token"]))["role"] == "CONSUMER"


@pytest.mark.filterwarnings(
    "ignore:The HMAC key is"
)  # the HS512 forgery; the key is short on purpose
@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_bad_access_token_is_unauthenticated(client, settings, consumer, attack):
    header = ATTACKS[attack](settings, consumer)
    response = await client.post(
        "/graphql", json={"query": "{ viewer { id } }"}, headers={"Authorization": header}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert top_code(body) == "UNAUTHENTICATED", body
    assert (body.get("data") or {}).get("viewer") is None, body


async def test_access_token_expires_with_the_domain_clock(client, consumer):
    from domain import clock

    clock.advance(timedelta(minutes=16))
    try:
        body = await gql(client, "{ viewer { id } }", token=consumer["token"])
    finally:
        clock.reset()
    assert top_code(body) == "UNAUTHENTICATED", body


# --- one-time codes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    ["12", "12345678901", "1391234567", "139123456789", "+1 2025550123", "1391234567a", ""],
)
async def test_request_otp_rejects_invalid_phone(own_ip, sms, phone):
    before = len(sms.sent)
    payload = await request_otp(own_ip, phone)
    assert payload["errors"][0]["code"] == "INVALID_INPUT"
    assert payload["errors"][0]["field"] == "phone"
    assert len(payload["errors"]) == 1
    assert payload["maskedPhone"] is None
    assert len(sms.sent) == before


async def test_login_with_otp_rejects_invalid_phone(own_ip):
    payload = await login_otp(own_ip, "12", "123456")
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("INVALID_INPUT", "phone")]


async def test_request_otp_masks_the_phone(own_ip, sms):
    phone = new_phone()
    body = await gql(own_ip, REQUEST_OTP, {"i": {"phone": phone}})
    payload = body["data"]["requestOtp"]
    assert payload["errors"] == []
    assert payload["maskedPhone"] == masked(phone)
    assert re.fullmatch(r"1\d{2}\*{4}\d{4}", payload["maskedPhone"])
    assert payload["expiresInSeconds"] == 300
    assert phone not in json.dumps(body)
    assert re.fullmatch(r"\d{6}", sms.last_code(phone))


@pytest.mark.parametrize("prefix", ["+86", "+86 ", "0086"])
async def test_request_otp_accepts_country_prefix(own_ip, sms, prefix):
    phone = new_phone()
    payload = await request_otp(own_ip, prefix + phone)
    assert payload["errors"] == [], payload
    assert payload["maskedPhone"] == masked(phone)
    # The code goes to the normalised number, and logs in with either spelling.
    code = sms.last_code(phone)
    tokens = await login_otp(own_ip, f"+86{phone}", code)
    assert tokens["errors"] == [], tokens
    assert (await viewer(own_ip, tokens["accessToken"]))["maskedPhone"] == masked(phone)


async def test_first_otp_login_creates_a_consumer_and_the_second_finds_it(own_ip, sms, monkeypatch):
    phone = new_phone()
    first = await otp_login(own_ip, sms, phone)
    assert first["role"] == "CONSUMER"
    assert first["accessToken"] and first["refreshToken"]
    me = await viewer(own_ip, first["accessToken"])
    assert me["role"] == "CONSUMER"
    assert me["maskedPhone"] == masked(phone)
    assert me["username"] is None

    limiter_clock_ahead(monkeypatch, 61)  # a second code for the phone is allowed a minute later
    second = await otp_login(own_ip, sms, phone)
    again = await viewer(own_ip, second["accessToken"])
    assert again["id"] == me["id"]
    assert again["role"] == "CONSUMER"

    from domain.identity.models import User

    assert await User.filter(phone=phone).count() == 1


async def test_wrong_code_is_code_invalid(own_ip, sms):
    phone = new_phone()
    await request_otp(own_ip, phone)
    code = sms.last_code(phone)
    payload = await login_otp(own_ip, phone, other_code(code))
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("CODE_INVALID", "code")]
    assert payload["accessToken"] is None
    # A wrong guess alone does not burn the code.
    payload = await login_otp(own_ip, phone, code)
    assert payload["errors"] == [], payload


async def test_code_for_a_phone_without_a_challenge_is_invalid(own_ip):
    payload = await login_otp(own_ip, new_phone(), "123456")
    assert codes(payload) == ["CODE_INVALID"]


async def test_code_is_bound_to_its_phone(own_ip, sms):
    a, b = new_phone(), new_phone()
    await request_otp(own_ip, a)
    await request_otp(own_ip, b)
    payload = await login_otp(own_ip, b, sms.last_code(a))
    if sms.last_code(a) == sms.last_code(b):  # one in a million
        pytest.skip("both phones got the same code")
    assert codes(payload) == ["CODE_INVALID"]


async def test_five_wrong_codes_lock_the_challenge(own_ip, sms):
    phone = new_phone()
    await request_otp(own_ip, phone)
    code = sms.last_code(phone)
    for i in range(5):
        wrong = f"{(int(code) + 1 + i) % 10**6:06d}"
        payload = await login_otp(own_ip, phone, wrong)
        assert codes(payload) == ["CODE_INVALID"], (i, payload)
    payload = await login_otp(own_ip, phone, code)
    assert codes(payload) == ["CODE_ATTEMPTS_EXCEEDED"], payload
    assert payload["errors"][0]["field"] == "code"
    assert payload["accessToken"] is None


async def test_parallel_guesses_cannot_exceed_the_attempt_limit(own_ip, sms):
    phone = new_phone()
    await request_otp(own_ip, phone)
    code = sms.last_code(phone)
    guesses = [f"{(int(code) + 1 + i) % 10**6:06d}" for i in range(20)]
    results = await asyncio.gather(*(login_otp(own_ip, phone, g) for g in guesses))
    outcomes = [codes(r)[0] for r in results]
    assert set(outcomes) <= {"CODE_INVALID", "CODE_ATTEMPTS_EXCEEDED"}, outcomes
    assert outcomes.count("CODE_INVALID") <= 5, outcomes
    payload = await login_otp(own_ip, phone, code)
    assert codes(payload) == ["CODE_ATTEMPTS_EXCEEDED"], payload


async def test_second_code_within_a_minute_is_rate_limited(own_ip, sms):
    phone = new_phone()
    await fresh_window(60, 5)
    first = await request_otp(own_ip, phone)
    assert first["errors"] == []
    sent = len(sms.sent)
    second = await request_otp(own_ip, "+86" + phone)
    assert codes(second) == ["RATE_LIMITED"], second
    assert second["errors"][0]["field"] == "phone"
    assert second["maskedPhone"] is None
    assert len(sms.sent) == sent
    # The first code still works.
    payload = await login_otp(own_ip, phone, sms.last_code(phone))
    assert payload["errors"] == [], payload


async def test_expired_code_is_refused(own_ip, sms):
    from domain import clock

    phone = new_phone()
    await request_otp(own_ip, phone)
    code = sms.last_code(phone)
    clock.advance(timedelta(minutes=6))
    try:
        payload = await login_otp(own_ip, phone, code)
    finally:
        clock.reset()
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("CODE_EXPIRED", "code")]
    assert payload["accessToken"] is None


async def test_code_cannot_be_used_twice(own_ip, sms):
    phone = new_phone()
    await request_otp(own_ip, phone)
    code = sms.last_code(phone)
    first = await login_otp(own_ip, phone, code)
    assert first["errors"] == [], first
    second = await login_otp(own_ip, phone, code)
    assert codes(second) == ["CODE_INVALID"], second
    assert second["accessToken"] is None


async def test_a_code_is_single_use_even_in_parallel(own_ip, sms):
    phone = new_phone()
    await request_otp(own_ip, phone)
    code = sms.last_code(phone)
    results = await asyncio.gather(*(login_otp(own_ip, phone, code) for _ in range(5)))
    winners = [r for r in results if r["errors"] == []]
    assert len(winners) == 1, results
    for loser in (r for r in results if r["errors"]):
        assert loser["accessToken"] is None and loser["refreshToken"] is None, loser
        # A loser that read the challenge before the winner spent it is told
        # CODE_ATTEMPTS_EXCEEDED (its attempt could no longer be counted), else CODE_INVALID.
        assert codes(loser) in (["CODE_INVALID"], ["CODE_ATTEMPTS_EXCEEDED"]), loser


# --- language ------------------------------------------------------------------------------


async def test_accept_language_picks_the_message_language(client):
    name = uid("ghost")
    args = (client, name, "not-the-password")
    default = (await login_in(*args))["errors"][0]
    chinese = (await login_in(*args, lang="zh-CN,zh;q=0.9"))["errors"][0]
    english = (await login_in(*args, lang="en-US,en;q=0.9"))["errors"][0]
    assert default["code"] == chinese["code"] == english["code"] == "INVALID_CREDENTIALS"
    assert english["message"] == "Wrong username or password"
    assert default["message"] == chinese["message"] == "用户名或密码错误"
    assert english["message"] != default["message"]


async def test_accept_language_applies_to_otp_errors(own_ip):
    zh = (await request_otp(own_ip, "12"))["errors"][0]
    en = (await request_otp(own_ip, "12", headers={"Accept-Language": "en"}))["errors"][0]
    assert zh["code"] == en["code"] == "INVALID_INPUT"
    assert zh["field"] == en["field"] == "phone"
    assert en["message"] == "Not a valid mainland mobile number"
    assert zh["message"] == "手机号格式不正确"


async def login_in(
    c: httpx.AsyncClient, username: str, password: str, lang: str | None = None
) -> dict[str, Any]:
    headers = {"Accept-Language": lang} if lang else None
    body = await gql(
        c,
        "mutation($i: LoginInput!) { login(input: $i) { errors { field code message } } }",
        {"i": {"username": username, "password": password}},
        headers=headers,
    )
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["login"]
    return payload
