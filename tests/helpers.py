"""Small helpers for API tests: GraphQL calls, logins, and a merchant set-up."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx

LOGIN = """mutation($i: LoginInput!) { login(input: $i) {
  accessToken refreshToken role errors { field code message } } }"""


def uid(prefix: str = "u") -> str:
    return f"{prefix}{secrets.token_hex(4)}"


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    terminal_key: str | None = None,
    headers: dict[str, str] | None = None,
    status: int = 200,
) -> dict[str, Any]:
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    if terminal_key:
        h["Authorization"] = f"Terminal {terminal_key}"
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=h
    )
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def top_code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0].get("extensions", {}).get("code") if errors else None


async def login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, Any]:
    body = await gql(client, LOGIN, {"i": {"username": username, "password": password}})
    payload: dict[str, Any] = body["data"]["login"]
    return payload


async def token_for(client: httpx.AsyncClient, username: str, password: str) -> str:
    payload = await login(client, username, password)
    assert payload["errors"] == [], payload
    return str(payload["accessToken"])


PASSWORD = "correct-horse-battery"


async def make_operator(client: httpx.AsyncClient) -> str:
    from domain.identity.service import create_operator

    name = uid("op")
    await create_operator(name, PASSWORD)
    return await token_for(client, name, PASSWORD)


@dataclass
class MerchantSetup:
    operator: str
    merchant_id: str
    admin: str
    admin_username: str
    store_id: str
    other_store_id: str
    staff: str
    terminal_key: str
    terminal_id: str


async def make_merchant(
    client: httpx.AsyncClient,
    operator: str | None = None,
    region: str = "110105",
    industry: str = "CATERING",
) -> MerchantSetup:
    operator = operator or await make_operator(client)
    admin_username = uid("adm")
    body = await gql(
        client,
        """mutation($i: MerchantCreateInput!) { merchantCreate(input: $i) {
             merchant { id name } errors { code field } } }""",
        {
            "i": {
                "name": "测试商户",
                "regionCode": region,
                "industry": industry,
                "adminUsername": admin_username,
                "adminPassword": PASSWORD,
            }
        },
        token=operator,
    )
    payload = body["data"]["merchantCreate"]
    assert payload["errors"] == [], payload
    merchant_id = payload["merchant"]["id"]
    admin = await token_for(client, admin_username, PASSWORD)
    stores = []
    for name in ("总店", "分店"):
        body = await gql(
            client,
            """mutation($i: StoreCreateInput!) { storeCreate(input: $i) { store { id } errors { code } } }""",
            {"i": {"merchantId": merchant_id, "name": name}},
            token=admin,
        )
        assert body["data"]["storeCreate"]["errors"] == [], body
        stores.append(body["data"]["storeCreate"]["store"]["id"])
    staff_username = uid("stf")
    body = await gql(
        client,
        """mutation($i: StaffCreateInput!) { staffCreate(input: $i) { staff { id } errors { code } } }""",
        {
            "i": {
                "merchantId": merchant_id,
                "username": staff_username,
                "password": PASSWORD,
                "role": "MERCHANT_STAFF",
                "storeIds": [stores[0]],
            }
        },
        token=admin,
    )
    assert body["data"]["staffCreate"]["errors"] == [], body
    staff = await token_for(client, staff_username, PASSWORD)
    body = await gql(
        client,
        """mutation($i: TerminalRegisterInput!) { terminalRegister(input: $i) {
             terminal { id } terminalKey errors { code } } }""",
        {"i": {"storeId": stores[0], "name": "POS 1"}},
        token=admin,
    )
    reg = body["data"]["terminalRegister"]
    assert reg["errors"] == [], body
    return MerchantSetup(
        operator=operator,
        merchant_id=merchant_id,
        admin=admin,
        admin_username=admin_username,
        store_id=stores[0],
        other_store_id=stores[1],
        staff=staff,
        terminal_key=reg["terminalKey"],
        terminal_id=reg["terminal"]["id"],
    )


async def consumer_token(client: httpx.AsyncClient, sms: Any, phone: str | None = None) -> str:
    phone = phone or "139" + f"{secrets.randbelow(10**8):08d}"
    body = await gql(
        client,
        "mutation($i: RequestOtpInput!) { requestOtp(input: $i) { maskedPhone errors { code } } }",
        {"i": {"phone": phone}},
    )
    assert body["data"]["requestOtp"]["errors"] == [], body
    code = sms.last_code(phone)
    body = await gql(
        client,
        """mutation($i: LoginWithOtpInput!) { loginWithOtp(input: $i) {
             accessToken refreshToken errors { code } } }""",
        {"i": {"phone": phone, "code": code}},
    )
    assert body["data"]["loginWithOtp"]["errors"] == [], body
    return str(body["data"]["loginWithOtp"]["accessToken"])


PRODUCT_CREATE = """mutation($i: CardProductCreateInput!) { cardProductCreate(input: $i) {
  cardProduct { id kind topUpBonusRules { minAmount bonus } } errors { code field message } } }"""
CARD_ISSUE = """mutation($i: CardIssueInput!) { cardIssue(input: $i) {
  card { id number kind status balance principalBalance bonusBalance } errors { code field message } } }"""
TOP_UP = """mutation($i: TopUpInput!) { topUp(input: $i) {
  topUp { id status amount bonus channel card { id balance } } errors { code field message } } }"""
PAY = """mutation($i: PayInput!) { pay(input: $i) {
  payment { id amount principalAmount bonusAmount refundedAmount status card { id balance } }
  errors { code field message } } }"""
REFUND = """mutation($i: RefundInput!) { refund(input: $i) {
  refund { id amount principalAmount bonusAmount kind payment { id refundedAmount status } }
  errors { code field message } } }"""
CARD = """query($id: ID!) { card(id: $id) { id status balance principalBalance bonusBalance
  transactions(first: 50) { edges { node { type amount balanceAfter } } } } }"""


def key() -> str:
    return "k-" + secrets.token_hex(8)


async def make_product(
    client: httpx.AsyncClient, m: MerchantSetup, kind: str = "NAMED", **extra: Any
) -> str:
    body = await gql(
        client,
        PRODUCT_CREATE,
        {"i": {"merchantId": m.merchant_id, "name": f"{kind} card", "kind": kind, **extra}},
        token=m.admin,
    )
    payload = body["data"]["cardProductCreate"]
    assert payload["errors"] == [], payload
    return str(payload["cardProduct"]["id"])


async def make_card(
    client: httpx.AsyncClient,
    m: MerchantSetup,
    *,
    product_id: str | None = None,
    load: int | None = None,
    holder_phone: str | None = None,
    kind: str = "NAMED",
    card_uid: str | None = None,
) -> dict[str, Any]:
    product_id = product_id or await make_product(client, m, kind)
    if kind == "NAMED" and holder_phone is None:
        holder_phone = "137" + f"{secrets.randbelow(10**8):08d}"
    body = await gql(
        client,
        CARD_ISSUE,
        {
            "i": {
                "productId": product_id,
                "holderPhone": holder_phone,
                "initialLoad": load,
                "cardUid": card_uid,
                "idempotencyKey": key(),
            }
        },
        token=m.staff,
    )
    payload = body["data"]["cardIssue"]
    assert payload["errors"] == [], payload
    card: dict[str, Any] = payload["card"]
    return card


async def pay(
    client: httpx.AsyncClient,
    m: MerchantSetup,
    card_id: str,
    amount: int,
    idem: str | None = None,
    token: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = await gql(
        client,
        PAY,
        {
            "i": {
                "storeId": m.store_id,
                "amount": amount,
                "cardId": card_id,
                "idempotencyKey": idem or key(),
                **extra,
            }
        },
        token=token or m.staff,
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["pay"]
    return result
