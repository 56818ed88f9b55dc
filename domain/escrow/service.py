"""Escrow custody (资金存管): where prepaid money goes when it comes in, and what must stay there.

Every fen of prepaid principal a merchant takes in (card sale, top-up; never bonus value, which
is not money) is split at once, in the same transfer that credits the card, between the
merchant's escrow account at its custodian bank and its operating account, by the merchant's
effective policy:

- RATIO: a percentage of the prepaid balance stays in escrow (the rulebook by region and issuer
  class: national 20/30/40 %, Beijing 40 %; an escrow account may set a higher one);
- FULL_CUSTODY: everything stays in escrow and is released to the merchant as it is consumed
  (as Hangzhou's 安心付 does): the release job moves what escrow holds beyond the outstanding
  prepaid balance; a refund puts the principal back at once.

Ledger sign: merchant money pools are the counter-side of the cards' principal, so their
balances are negative; "held" is the negated balance of the escrow shards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog
from tortoise.backends.base.client import BaseDBAsyncClient

from domain import clock
from domain.actor import Actor, Role, in_region
from domain.audit import service as audit
from domain.db import connection, transaction
from domain.errors import DomainError, forbidden, invalid_input
from domain.escrow.models import EscrowAccount, EscrowCheck
from domain.identity.models import User
from domain.ids import new_id
from domain.ledger import service as ledger
from domain.merchants.models import Merchant
from domain.merchants.service import get_merchant
from domain.rules import service as rules
from domain.sql import execute, fetch

log = structlog.get_logger(__name__)

RATIO = "RATIO"
FULL_CUSTODY = "FULL_CUSTODY"
POLICIES = (RATIO, FULL_CUSTODY)


@dataclass(frozen=True)
class Policy:
    kind: str
    ratio_percent: int  # 100 for full custody

    def escrow_share(self, amount: int) -> int:
        """The part of `amount` that goes to escrow, rounded up (escrow never falls short)."""
        return -(-amount * self.ratio_percent // 100)


# --- policy -------------------------------------------------------------------------------------

_POLICY_CACHE: dict[str, tuple[float, Policy]] = {}
POLICY_TTL_SECONDS = 10.0


def statutory_policy(merchant: Merchant) -> Policy:
    book = rules.for_region(merchant.region_code)
    return Policy(RATIO, book.escrow_ratio(merchant.issuer_class))


async def policy_for(merchant: Merchant) -> Policy:
    """The merchant's effective policy: its escrow account's, else the rulebook's."""
    cached = _POLICY_CACHE.get(merchant.id)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    account = await EscrowAccount.get_or_none(merchant_id=merchant.id)
    policy = statutory_policy(merchant)
    if account is not None:
        policy = (
            Policy(FULL_CUSTODY, 100)
            if account.policy == FULL_CUSTODY
            else Policy(RATIO, max(policy.ratio_percent, account.ratio_percent or 0))
        )
    _POLICY_CACHE[merchant.id] = (time.monotonic() + POLICY_TTL_SECONDS, policy)
    return policy


async def money_in_postings(merchant: Merchant, amount: int) -> list[tuple[str, int]]:
    """The merchant side of prepaid money coming in: escrow share and operating rest."""
    policy = await policy_for(merchant)
    to_escrow = policy.escrow_share(amount)
    postings = [(ledger.hot_account(merchant.id, ledger.MERCHANT_ESCROW), -to_escrow)]
    if amount > to_escrow:
        postings.append(
            (ledger.hot_account(merchant.id, ledger.MERCHANT_OPERATING), -(amount - to_escrow))
        )
    return postings


async def money_out_postings(
    conn: BaseDBAsyncClient, merchant: Merchant, amount: int, *, from_escrow_only: bool
) -> list[tuple[str, int]]:
    """The merchant side of prepaid principal paid back (退卡): escrow pays the share it holds
    for that money (all of it under full custody, or when the custodian pays for a merchant
    that has stopped trading), operating funds the rest."""
    policy = await policy_for(merchant)
    held = await _held(conn, merchant.id, lock=True)
    wanted = (
        amount if from_escrow_only or policy.kind == FULL_CUSTODY else policy.escrow_share(amount)
    )
    from_escrow = max(0, min(held, wanted))
    postings = []
    if from_escrow:
        postings.append((ledger.hot_account(merchant.id, ledger.MERCHANT_ESCROW), from_escrow))
    if amount > from_escrow:
        postings.append(
            (ledger.hot_account(merchant.id, ledger.MERCHANT_OPERATING), amount - from_escrow)
        )
    return postings


# --- position -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    merchant_id: str
    policy: Policy
    outstanding: int  # prepaid principal still owed to card holders (incl. pending holds)
    required: int
    held: int
    warning: str | None = None  # the jurisdiction's warning line escrow fell below, if any

    @property
    def short(self) -> bool:
        return self.held < self.required

    @property
    def excess(self) -> int:
        return self.held - self.required


def _shards(merchant_id: str, kind: str) -> list[str]:
    return [ledger.account_id(merchant_id, kind, s) for s in range(ledger.HOT_SHARDS)]


async def _outstanding(conn: BaseDBAsyncClient, merchant_id: str) -> int:
    rows = await fetch(
        conn,
        "SELECT COALESCE(SUM(a.balance), 0) AS owed FROM ledger_accounts a"
        " JOIN cards c ON a.owner_id = c.id"
        " WHERE c.merchant_id = $1 AND a.kind = 'CARD_PRINCIPAL'",
        merchant_id,
    )
    held = await fetch(
        conn,
        "SELECT COALESCE(SUM(principal_amount), 0) AS held FROM holds"
        " WHERE merchant_id = $1 AND status = 'PENDING'",
        merchant_id,
    )
    return int(rows[0]["owed"]) + int(held[0]["held"])


async def _held(conn: BaseDBAsyncClient, merchant_id: str, lock: bool = False) -> int:
    ids = _shards(merchant_id, ledger.MERCHANT_ESCROW)
    marks = ", ".join(f"${i + 1}" for i in range(len(ids)))
    suffix = " ORDER BY id FOR UPDATE" if lock and conn.capabilities.dialect == "postgres" else ""
    rows = await fetch(
        conn,
        f"SELECT balance FROM ledger_accounts WHERE id IN ({marks}){suffix}",  # noqa: S608
        *ids,
    )
    return -sum(int(r["balance"]) for r in rows)


def required_for(policy: Policy, outstanding: int) -> int:
    return policy.escrow_share(max(outstanding, 0))


async def position(
    merchant: Merchant, conn: BaseDBAsyncClient | None = None, lock: bool = False
) -> Position:
    conn = conn or connection()
    policy = await policy_for(merchant)
    held = await _held(conn, merchant.id, lock=lock)
    outstanding = await _outstanding(conn, merchant.id)
    required = required_for(policy, outstanding)
    warning = rules.for_region(merchant.region_code).escrow_warning(held, required)
    return Position(merchant.id, policy, outstanding, required, held, warning)


# --- who may see and move escrow ---------------------------------------------------------------


async def custodian_of(actor: Actor) -> str:
    user = await User.get_or_none(id=actor.id)
    if user is None or not user.organisation:
        raise forbidden("Not a custodian")
    return str(user.organisation)


async def account_for(actor: Actor, merchant_id: str) -> tuple[Merchant, EscrowAccount | None]:
    """The merchant and its escrow account, if the actor may see them (NOT_FOUND otherwise)."""
    merchant = await get_merchant(merchant_id)
    account = await EscrowAccount.get_or_none(merchant_id=merchant.id)
    if actor.role == Role.OPERATOR or actor.is_admin_of(merchant.id):
        return merchant, account
    if actor.role == Role.REGULATOR and in_region(actor.region_code, merchant.region_code):
        return merchant, account
    if actor.role == Role.CUSTODIAN and account is not None:
        if account.custodian == await custodian_of(actor):
            return merchant, account
    raise DomainError("NOT_FOUND", "存管账户不存在", "Escrow account not found", "merchantId")


async def accounts_of_custodian(actor: Actor) -> list[EscrowAccount]:
    return await EscrowAccount.filter(custodian=await custodian_of(actor)).order_by("id").limit(500)


# --- opening, deposits, withdrawals, releases ---------------------------------------------------


def _check_amount(amount: int) -> None:
    if not 0 < amount <= 10**12:
        raise invalid_input(
            "amount", "金额须为正整数（分）", "Amount must be a positive number of fen"
        )


async def open_account(
    actor: Actor,
    *,
    merchant_id: str,
    custodian: str,
    bank_account_no: str,
    policy: str,
    ratio_percent: int | None,
) -> EscrowAccount:
    """开立存管账户 (operator): the custodian organisation, the account and the policy."""
    if actor.role != Role.OPERATOR:
        raise forbidden()
    merchant = await get_merchant(merchant_id)
    custodian = custodian.strip()
    if not custodian or len(custodian) > 100:
        raise invalid_input("custodian", "存管机构不能为空", "Name the custodian organisation")
    digits = bank_account_no.replace(" ", "")
    if not (digits.isdigit() and 8 <= len(digits) <= 32):
        raise invalid_input("bankAccountNo", "银行账号格式不正确", "Not a bank account number")
    if policy not in POLICIES:
        raise invalid_input("policy", "存管方式无效", "Unknown escrow policy")
    statutory = statutory_policy(merchant).ratio_percent
    if policy == RATIO and ratio_percent is not None and not statutory <= ratio_percent <= 100:
        raise invalid_input(
            "ratioPercent",
            f"存管比例不得低于规定的 {statutory}%",
            f"The escrow ratio may not be below the statutory {statutory}%",
        )
    async with transaction() as conn:
        if await EscrowAccount.filter(merchant_id=merchant.id).using_db(conn).exists():
            raise DomainError(
                "ALREADY_EXISTS", "该商户已开立存管账户", "The merchant has an escrow account"
            )
        account = await EscrowAccount.create(
            using_db=conn,
            id=new_id("esc"),
            merchant_id=merchant.id,
            custodian=custodian,
            bank_account_last4=digits[-4:],
            policy=policy,
            ratio_percent=ratio_percent if policy == RATIO else None,
            opened_by=actor.id,
            opened_at=clock.now(),
        )
        await audit.record(
            conn,
            actor,
            "escrowAccountOpen",
            merchant.id,
            {"custodian": custodian, "policy": policy},
        )
    _POLICY_CACHE.pop(merchant.id, None)
    return account


def below_required(pos: Position, amount: int) -> DomainError:
    return DomainError(
        "ESCROW_BELOW_REQUIRED",
        f"存管余额 {pos.held / 100:.2f} 元，应存管 {pos.required / 100:.2f} 元，不能转出"
        f" {amount / 100:.2f} 元",
        f"Escrow holds {pos.held / 100:.2f} yuan and must keep {pos.required / 100:.2f}:"
        f" {amount / 100:.2f} cannot leave it",
        "amount",
    )


async def _move(
    conn: BaseDBAsyncClient, merchant_id: str, amount: int, kind: str, reference: str
) -> str:
    """Positive `amount`: escrow -> operating (release); negative: operating -> escrow."""
    posted = await ledger.post(
        conn,
        kind=kind,
        asset=ledger.FEN,
        postings=[
            (ledger.hot_account(merchant_id, ledger.MERCHANT_ESCROW), amount),
            (ledger.hot_account(merchant_id, ledger.MERCHANT_OPERATING), -amount),
        ],
        reference=reference,
    )
    return posted.transfer_id


async def withdraw(
    actor: Actor, *, merchant_id: str, amount: int, idempotency_key: str, reason: str
) -> Position:
    """The custodian releases escrow to the merchant; never below what must be held."""
    _check_amount(amount)
    if actor.role != Role.CUSTODIAN:
        raise forbidden("Escrow is released by the custodian bank")
    merchant, _ = await account_for(actor, merchant_id)
    if not reason.strip() or len(reason) > 200:
        raise invalid_input("reason", "请填写 1-200 字的原因", "Give a reason of 1-200 characters")
    async with transaction() as conn:
        replay = await ledger.claim_idempotency_key(
            conn,
            scope=actor.id,
            key=idempotency_key,
            operation="escrowWithdraw",
            request={"merchantId": merchant.id, "amount": amount, "reason": reason},
            result_id=merchant.id,
        )
        if replay is None:
            # The shards are locked, so two withdrawals cannot both pass the check.
            pos = await position(merchant, conn, lock=True)
            if pos.held - amount < pos.required:
                raise below_required(pos, amount)
            await _move(conn, merchant.id, amount, "ESCROW_WITHDRAW", merchant.id)
            await audit.record(
                conn, actor, "escrowWithdraw", merchant.id, {"amount": amount, "reason": reason}
            )
    return await position(merchant)


async def deposit(actor: Actor, *, merchant_id: str, amount: int, idempotency_key: str) -> Position:
    """Money from the merchant's operating funds into escrow (to cover a shortfall)."""
    _check_amount(amount)
    if actor.role not in (Role.MERCHANT_ADMIN, Role.CUSTODIAN):
        raise forbidden()
    merchant, _ = await account_for(actor, merchant_id)
    async with transaction() as conn:
        replay = await ledger.claim_idempotency_key(
            conn,
            scope=actor.id,
            key=idempotency_key,
            operation="escrowDeposit",
            request={"merchantId": merchant.id, "amount": amount},
            result_id=merchant.id,
        )
        if replay is None:
            await _move(conn, merchant.id, -amount, "ESCROW_DEPOSIT", merchant.id)
            await audit.record(conn, actor, "escrowDeposit", merchant.id, {"amount": amount})
    return await position(merchant)


async def principal_returned(conn: BaseDBAsyncClient, merchant_id: str, principal: int) -> None:
    """A refund gave principal back to a card: under full custody it is escrowed again at once."""
    if principal <= 0:
        return
    merchant = await get_merchant(merchant_id)
    if (await policy_for(merchant)).kind == FULL_CUSTODY:
        await _move(conn, merchant_id, -principal, "ESCROW_RESTORE", merchant_id)


async def release_consumed() -> int:
    """Full custody: release what escrow holds beyond the prepaid balance still owed (the
    principal consumed by payments). Returns how many merchants got a release."""
    released = 0
    for account in await EscrowAccount.filter(policy=FULL_CUSTODY).values_list(
        "merchant_id", flat=True
    ):
        merchant = await get_merchant(str(account))
        async with transaction() as conn:
            pos = await position(merchant, conn, lock=True)
            if pos.excess > 0:
                await _move(conn, merchant.id, pos.excess, "ESCROW_RELEASE", merchant.id)
                released += 1
    return released


# --- the daily check ----------------------------------------------------------------------------


async def daily_check(day: str | None = None) -> list[Position]:
    """Required vs held for every merchant that took prepaid money; a shortfall is recorded
    (and shown to the custodian and the regulator) as a risk warning. Once per merchant a day."""
    day = day or clock.beijing_day()
    merchant_ids = await fetch(
        connection(),
        "SELECT DISTINCT owner_id FROM ledger_accounts WHERE kind = 'MERCHANT_ESCROW'"
        " AND balance <> 0",
    )
    short: list[Position] = []
    for row in merchant_ids:
        merchant = await Merchant.get_or_none(id=row["owner_id"])
        if merchant is None:
            continue
        pos = await position(merchant)
        await execute(
            connection(),
            "INSERT INTO escrow_checks (merchant_id, day, outstanding, required, held, short,"
            " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (merchant_id, day) DO NOTHING",
            merchant.id,
            day,
            pos.outstanding,
            pos.required,
            pos.held,
            pos.short,
            clock.now(),
        )
        if pos.short:
            short.append(pos)
            log.warning("escrow short", merchant=merchant.id, held=pos.held, required=pos.required)
    return short


async def shortfalls(actor: Actor, day: str | None) -> list[EscrowCheck]:
    """Risk warnings: the day's checks that found escrow short, for those who supervise it
    (regulators of the region, the custodian of the account, operators)."""
    day = day or clock.beijing_day()
    checks = await EscrowCheck.filter(day=day, short=True).order_by("merchant_id").limit(1000)
    if actor.role == Role.OPERATOR:
        return checks
    merchants = {m.id: m for m in await Merchant.filter(id__in=[c.merchant_id for c in checks])}
    if actor.role == Role.REGULATOR:
        return [
            c
            for c in checks
            if c.merchant_id in merchants
            and in_region(actor.region_code, merchants[c.merchant_id].region_code)
        ]
    if actor.role == Role.CUSTODIAN:
        mine = {
            str(m)
            for m in await EscrowAccount.filter(
                custodian=await custodian_of(actor), merchant_id__in=list(merchants)
            ).values_list("merchant_id", flat=True)
        }
        return [c for c in checks if c.merchant_id in mine]
    raise forbidden()


async def latest_check(merchant_id: str) -> EscrowCheck | None:
    return await EscrowCheck.filter(merchant_id=merchant_id).order_by("-day").first()
