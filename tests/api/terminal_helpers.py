"""GraphQL documents and small steps shared by the terminal, reader and bridge tests."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.helpers import CARD, MerchantSetup, gql, key, make_card

CHARGE_CREATE = """mutation($i: TerminalChargeCreateInput!) { terminalChargeCreate(input: $i) {
  terminalCharge { id status amount expiresAt storeId terminalId } errors { code field message } } }"""
CHARGE = """query($id: ID!) { terminalCharge(id: $id) { id status amount paymentId
  payment { id amount card { id balance } } lastError { code field message } } }"""
CHARGE_CANCEL = """mutation($i: TerminalChargeIdInput!) { terminalChargeCancel(input: $i) {
  terminalCharge { id status } errors { code } } }"""
CONFIRM_PIN = """mutation($i: TerminalChargeConfirmPinInput!) { terminalChargeConfirmPin(input: $i) {
  terminalCharge { id status payment { id amount } lastError { code } } errors { code } } }"""
TAP = """mutation($i: ReaderTapInput!) { readerTap(input: $i) {
  payment { id amount card { id balance } } terminalCharge { id status } errors { code field message } } }"""
DESFIRE_AUTH = """mutation($i: ReaderDesfireAuthenticateInput!) { readerDesfireAuthenticate(input: $i) {
  authId readerResponse errors { code } } }"""
POLICY_SET = """mutation($i: CardProductTapPolicySetInput!) { cardProductTapPolicySet(input: $i) {
  tapPolicy { productId technology tapsPerMinute dailyAmountWithoutPin } errors { code field } } }"""
HEARTBEAT = """mutation($i: TerminalHeartbeatInput!) { terminalHeartbeat(input: $i) {
  terminal { id lastSeenAt heartbeatAt appVersion readerStatus } desfire { aid keyNo } serverTime
  errors { code } } }"""
TERMINALS = """query($id: ID!, $store: ID) { terminals(merchantId: $id, storeId: $store) {
  id name lastSeenAt heartbeatAt appVersion readerStatus revoked keyRotatedAt } }"""
ROTATE = """mutation($i: TerminalIdInput!) { terminalKeyRotate(input: $i) {
  terminal { id keyRotatedAt } terminalKey errors { code } } }"""
REVOKE = """mutation($i: TerminalIdInput!) { terminalRevoke(input: $i) {
  terminal { id revoked revokedAt } errors { code } } }"""


def new_uid() -> str:
    return "04" + secrets.token_hex(6).upper()


async def uid_card(
    client: httpx.AsyncClient, m: MerchantSetup, load: int, **extra: Any
) -> tuple[dict[str, Any], str]:
    uid = new_uid()
    card = await make_card(client, m, load=load, card_uid=uid, **extra)
    return card, uid


async def create_charge(
    client: httpx.AsyncClient, terminal_key: str, amount: int, idem: str | None = None
) -> dict[str, Any]:
    body = await gql(
        client,
        CHARGE_CREATE,
        {"i": {"amount": amount, "idempotencyKey": idem or key()}},
        terminal_key=terminal_key,
    )
    payload = body["data"]["terminalChargeCreate"]
    assert payload["errors"] == [], payload
    charge: dict[str, Any] = payload["terminalCharge"]
    return charge


async def tap(
    client: httpx.AsyncClient,
    terminal_key: str,
    uid: str,
    idem: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = await gql(
        client,
        TAP,
        {"i": {"uid": uid, "idempotencyKey": idem or key(), **extra}},
        terminal_key=terminal_key,
    )
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["readerTap"]
    return payload


async def charge_state(client: httpx.AsyncClient, terminal_key: str, charge_id: str) -> dict:
    body = await gql(client, CHARGE, {"id": charge_id}, terminal_key=terminal_key)
    assert "errors" not in body, body
    state: dict[str, Any] = body["data"]["terminalCharge"]
    return state


async def balance(client: httpx.AsyncClient, m: MerchantSetup, card_id: str) -> int:
    body = await gql(client, CARD, {"id": card_id}, token=m.staff)
    return int(body["data"]["card"]["balance"])


async def payments_of(client: httpx.AsyncClient, m: MerchantSetup, card_id: str) -> list[dict]:
    body = await gql(client, CARD, {"id": card_id}, token=m.staff)
    edges = body["data"]["card"]["transactions"]["edges"]
    return [e["node"] for e in edges if e["node"]["type"] == "PAYMENT"]


async def set_policy(
    client: httpx.AsyncClient, m: MerchantSetup, product_id: str, **policy: Any
) -> dict[str, Any]:
    body = await gql(client, POLICY_SET, {"i": {"productId": product_id, **policy}}, token=m.admin)
    payload: dict[str, Any] = body["data"]["cardProductTapPolicySet"]
    assert payload["errors"] == [], payload
    return payload
