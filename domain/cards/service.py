"""Cards (预付卡): products, issue, counter top-up, the status lifecycle, PIN and physical UID."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from domain import clock
from domain.actor import STAFF_ROLES, Actor, Role
from domain.audit import service as audit
from domain.cards import errors
from domain.cards.models import Card, CardActivity, CardProduct
from domain.cards.numbers import new_card_number, normalize_uid, uid_hash
from domain.counter import service as counter
from domain.db import connection, transaction
from domain.errors import forbidden, invalid_input
from domain.escrow import service as escrow
from domain.identity.models import User
from domain.identity.secrets import hash_password, normalize_phone, verify_password
from domain.ids import has_prefix, new_id
from domain.ledger import service as ledger
from domain.merchants.models import Merchant
from domain.merchants.service import get_merchant
from domain.outbox import service as outbox
from domain.rules import service as rules
from domain.sql import fetch

KINDS = ("NAMED", "BEARER", "GIFT", "SESSION")
COUNTER_CHANNELS = ("CASH", "BANK_CARD")  # how money is taken at the counter desk
USABLE = "ACTIVE"
MAX_AMOUNT = 10**12  # 100 million yuan: anything larger is a typo or an attack
PIN_LOCK = timedelta(hours=24)
PIN_MAX_FAILURES = 5

# status -> allowed previous statuses
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "ACTIVE": ("INACTIVE", "FROZEN"),
    "FROZEN": ("ACTIVE",),
    "LOST": ("ACTIVE", "FROZEN"),
    "REPLACED": ("LOST", "ACTIVE", "FROZEN"),
    "CANCELLED": ("INACTIVE", "ACTIVE", "FROZEN", "LOST"),
    "EXPIRED": ("INACTIVE", "ACTIVE", "FROZEN"),
}


def check_amount(amount: int, field: str = "amount") -> int:
    if amount <= 0 or amount > MAX_AMOUNT:
        raise invalid_input(
            field, "金额须为正整数（分）", "Amount must be a positive number of fen"
        )
    return amount


def is_staff_for(actor: Actor, merchant_id: str) -> bool:
    return (actor.role in STAFF_ROLES or actor.role == Role.TERMINAL) and (
        actor.merchant_id == merchant_id
    )


def can_manage_card(actor: Actor, card: Card) -> bool:
    """The holder, the issuing merchant's staff and terminals, or an operator."""
    return (
        actor.role == Role.OPERATOR
        or is_staff_for(actor, card.merchant_id)
        or (actor.role == Role.CONSUMER and card.holder_id == actor.id)
    )


# --- products ---------------------------------------------------------------------------------


def _bonus_rules(rules_in: list[dict[str, int]]) -> list[dict[str, int]]:
    out = []
    for i, rule in enumerate(rules_in):
        min_amount, bonus = int(rule["min_amount"]), int(rule["bonus"])
        if min_amount <= 0 or bonus <= 0 or bonus > min_amount:
            raise invalid_input(
                f"topUpBonusRules.{i}",
                "赠送规则须满足 0 < 赠送 <= 充值门槛",
                "A bonus rule needs 0 < bonus <= minimum top-up",
            )
        out.append({"min_amount": min_amount, "bonus": bonus})
    return sorted(out, key=lambda r: r["min_amount"])


MAX_SESSIONS_PER_PACK = 1000


def _check_session_pack(
    count: int | None, price: int | None, bonus_rules: list[dict[str, int]]
) -> None:
    """次卡: a pack of sessions at a price; every session is worth at least one fen."""
    if count is None or not 0 < count <= MAX_SESSIONS_PER_PACK:
        raise invalid_input(
            "sessionCount",
            f"次卡每份次数须为 1-{MAX_SESSIONS_PER_PACK}",
            f"A session card needs sessionCount between 1 and {MAX_SESSIONS_PER_PACK}",
        )
    if price is None:
        raise invalid_input("sessionPrice", "次卡须设置价格", "A session card needs sessionPrice")
    check_amount(price, "sessionPrice")
    if price < count:
        raise invalid_input(
            "sessionPrice",
            "每次的价格不能低于 1 分",
            "Each session must be worth at least one fen",
        )
    if bonus_rules:
        raise invalid_input(
            "topUpBonusRules", "次卡没有赠送金", "Session cards carry no bonus value"
        )


async def create_product(
    actor: Actor,
    *,
    merchant_id: str,
    name: str,
    kind: str,
    validity_days: int | None,
    bonus_rules: list[dict[str, int]],
    face_values: list[int],
    bonus_first: bool,
    pin_threshold: int | None,
    session_count: int | None = None,
    session_price: int | None = None,
) -> CardProduct:
    merchant = await get_merchant(merchant_id)
    if not (actor.is_admin_of(merchant.id) or actor.role == Role.OPERATOR):
        raise forbidden()
    name = name.strip()
    if not name or len(name) > 100:
        raise invalid_input("name", "名称须为 1-100 个字符", "Name must be 1-100 characters")
    if kind not in KINDS:
        raise invalid_input("kind", "卡种类无效", "Unknown card kind")
    book = rules.for_region(merchant.region_code)
    if validity_days is not None and validity_days <= 0:
        raise invalid_input("validityDays", "有效期须为正数", "validityDays must be positive")
    if kind in ("BEARER", "GIFT"):
        # 不记名卡有效期不得少于 3 年 (art. 21): no shorter validity, and none means no expiry.
        if validity_days is not None and validity_days < book.bearer_card_min_validity_days:
            raise invalid_input(
                "validityDays",
                f"不记名卡有效期不得少于 {book.bearer_card_min_validity_days} 天",
                f"Bearer cards must be valid at least {book.bearer_card_min_validity_days} days",
            )
    for fv in face_values:
        check_amount(fv, "faceValues")
    rules.check_product(
        book, merchant.industry, validity_days, session_count if kind == "SESSION" else None
    )
    if kind == "SESSION":
        _check_session_pack(session_count, session_price, bonus_rules)
    elif session_count is not None or session_price is not None:
        raise invalid_input("sessionCount", "仅次卡可设置次数", "Only session cards have sessions")
    if pin_threshold is not None and pin_threshold < 0:
        raise invalid_input("pinThreshold", "密码门槛不能为负", "pinThreshold cannot be negative")
    async with transaction() as conn:
        await ledger.open_accounts(conn, ledger.merchant_accounts(merchant.id))
        product = await CardProduct.create(
            using_db=conn,
            id=new_id("cpd"),
            merchant_id=merchant.id,
            name=name,
            kind=kind,
            validity_days=validity_days,
            face_values=face_values,
            bonus_rules=_bonus_rules(bonus_rules),
            bonus_first=bonus_first,
            pin_threshold=pin_threshold,
            session_count=session_count,
            session_price=session_price,
            created_at=clock.now(),
        )
        await audit.record(conn, actor, "cardProductCreate", product.id, {"kind": kind})
    return product


async def get_product(product_id: str) -> CardProduct:
    product = (
        await CardProduct.get_or_none(id=product_id) if has_prefix(product_id, "cpd") else None
    )
    if product is None:
        raise errors.product_not_found()
    return product


_PRODUCTS: dict[str, CardProduct] = {}


async def cached_product(product_id: str) -> CardProduct:
    """Products do not change after creation, so the payment path remembers them."""
    product = _PRODUCTS.get(product_id)
    if product is None:
        product = await get_product(product_id)
        if len(_PRODUCTS) > 50_000:
            _PRODUCTS.clear()
        _PRODUCTS[product_id] = product
    return product


# --- reading cards ----------------------------------------------------------------------------


async def get_card(card_id: str, field: str = "cardId") -> Card:
    # One prepared statement: every payment reads its card, and the ORM's query building
    # cost a fifth of the server's time per payment.
    rows = (
        await fetch(connection(), "SELECT * FROM cards WHERE id = $1", card_id)
        if has_prefix(card_id, "card")
        else []
    )
    if not rows:
        raise errors.card_not_found(field)
    return Card._init_from_db(**rows[0])


async def card_for(actor: Actor, card_id: str, field: str = "cardId") -> Card:
    """A card the actor may act on; another tenant's card is reported as not found."""
    card = await get_card(card_id, field)
    if not can_manage_card(actor, card):
        raise errors.card_not_found(field)
    return card


async def card_by_uid(uid: str) -> Card | None:
    normalized = normalize_uid(uid)
    if normalized is None:
        return None
    return await Card.get_or_none(uid_hash=uid_hash(normalized))


@dataclass(frozen=True)
class Balances:
    principal: int
    bonus: int
    sessions: int

    @property
    def total(self) -> int:
        return self.principal + self.bonus


async def balances_of(conn: BaseDBAsyncClient, card_ids: list[str]) -> dict[str, Balances]:
    ids = []
    for cid in card_ids:
        ids += [spec.ids()[0] for spec in ledger.card_accounts(cid)]
    got = await ledger.balances(conn, ids)
    return {
        cid: Balances(
            principal=got.get(ledger.account_id(cid, ledger.CARD_PRINCIPAL), 0),
            bonus=got.get(ledger.account_id(cid, ledger.CARD_BONUS), 0),
            sessions=got.get(ledger.account_id(cid, ledger.CARD_SESSIONS), 0),
        )
        for cid in card_ids
    }


async def lock_card_balances(conn: BaseDBAsyncClient, card_id: str) -> Balances:
    """A card's balances, locked until the caller's transaction ends."""
    ids = [spec.ids()[0] for spec in ledger.card_accounts(card_id)]
    got = await ledger.lock_balances(conn, ids)
    return Balances(
        principal=got.get(ledger.account_id(card_id, ledger.CARD_PRINCIPAL), 0),
        bonus=got.get(ledger.account_id(card_id, ledger.CARD_BONUS), 0),
        sessions=got.get(ledger.account_id(card_id, ledger.CARD_SESSIONS), 0),
    )


def ensure_usable(card: Card) -> None:
    if card.status != USABLE:
        raise errors.card_not_usable(card.status)
    if card.expires_at is not None and card.expires_at <= clock.now():
        raise errors.card_not_usable("EXPIRED")


# --- money in ---------------------------------------------------------------------------------


def bonus_for(product: CardProduct, amount: int) -> int:
    """The best top-up bonus rule the amount reaches (pay 500 get 50)."""
    best = 0
    for rule in product.bonus_rules or []:
        if amount >= int(rule["min_amount"]):
            best = max(best, int(rule["bonus"]))
    return best


async def record_activity(
    conn: BaseDBAsyncClient,
    *,
    card_id: str,
    transfer_id: str,
    kind: str,
    delta: int,
    balance_after: int,
    store_id: str | None,
    reference: str | None,
    reason: str,
    sessions: int = 0,
    sessions_after: int | None = None,
) -> None:
    """The card statement line and the balanceChanged event, in the caller's transaction."""
    now = clock.now()
    await CardActivity.create(
        using_db=conn,
        id=new_id("cta"),
        card_id=card_id,
        transfer_id=transfer_id,
        kind=kind,
        amount=delta,
        balance_after=balance_after,
        sessions=sessions,
        sessions_after=sessions_after,
        store_id=store_id,
        reference=reference,
        created_at=now,
    )
    event: dict[str, object] = {
        "kind": "BALANCE_CHANGED",
        "cardId": card_id,
        "balance": balance_after,
        "delta": delta,
        "reason": reason,
        "transactionId": transfer_id,
        "at": now.isoformat(),
    }
    if sessions_after is not None:
        event["sessions"] = sessions_after
        event["sessionsDelta"] = sessions
    await outbox.emit(conn, f"card:{card_id}", event)


async def load_value(
    conn: BaseDBAsyncClient,
    *,
    card: Card,
    product: CardProduct,
    merchant: Merchant,
    amount: int,
    reference: str,
    store_id: str | None,
    kind: str,
) -> tuple[str, int, int]:
    """Credit prepaid money (and its bonus) to a card inside the caller's transaction.

    Returns (transfer id, bonus, balance after). Enforces the rulebook: balance cap on the
    principal, real-name registration for large single purchases.
    """
    book = rules.for_region(merchant.region_code)
    if amount >= book.real_name_single_purchase and not (card.kind == "NAMED" and card.holder_id):
        raise rules.real_name_required(book.real_name_single_purchase)
    sessions = sessions_for(product, amount) if card.kind == "SESSION" else None
    rules.check_purchase(book, merchant.industry, amount, sessions)
    money_in = await escrow.money_in_postings(merchant, amount)
    if card.kind == "SESSION":
        transfer_id, balance_after = await _load_sessions(
            conn,
            card=card,
            product=product,
            cap=book.balance_cap(card.kind),
            money_in=money_in,
            amount=amount,
            reference=reference,
            store_id=store_id,
            kind=kind,
        )
        return transfer_id, 0, balance_after
    bonus = bonus_for(product, amount)
    principal_acc = ledger.account_id(card.id, ledger.CARD_PRINCIPAL)
    bonus_acc = ledger.account_id(card.id, ledger.CARD_BONUS)
    postings = [*money_in, (principal_acc, amount)]
    if bonus:
        postings += [
            (ledger.hot_account(card.merchant_id, ledger.MERCHANT_BONUS_FUNDING), -bonus),
            (bonus_acc, bonus),
        ]
    posted = await ledger.post(
        conn, kind=kind, asset=ledger.FEN, postings=postings, reference=reference
    )
    cap = book.balance_cap(card.kind)
    if posted.balances[principal_acc] > cap:
        raise rules.balance_cap_exceeded(cap)
    bonus_balance = posted.balances.get(bonus_acc)
    if bonus_balance is None:
        bonus_balance = (await ledger.balances(conn, [bonus_acc]))[bonus_acc]
    balance_after = posted.balances[principal_acc] + bonus_balance
    await record_activity(
        conn,
        card_id=card.id,
        transfer_id=posted.transfer_id,
        kind=kind,
        delta=amount + bonus,
        balance_after=balance_after,
        store_id=store_id,
        reference=reference,
        reason=kind,
    )
    return posted.transfer_id, bonus, balance_after


def sessions_for(product: CardProduct, amount: int) -> int:
    """How many sessions `amount` buys: whole packs only (SESSION_PACK_MISMATCH otherwise)."""
    assert product.session_count is not None and product.session_price is not None
    price, count = int(product.session_price), int(product.session_count)
    packs, rest = divmod(amount, price)
    if rest or not packs:
        raise errors.session_pack_mismatch(price, count)
    return packs * count


async def _load_sessions(
    conn: BaseDBAsyncClient,
    *,
    card: Card,
    product: CardProduct,
    cap: int,
    money_in: list[tuple[str, int]],
    amount: int,
    reference: str,
    store_id: str | None,
    kind: str,
) -> tuple[str, int]:
    """次卡 purchase: the money as principal and the sessions, two transfers (one per asset).

    The principal of a session card is the prepaid money not yet used up; each redeemed
    session takes its share of it, so refunds, escrow and caps see money, not counts.
    """
    sessions = sessions_for(product, amount)
    principal_acc = ledger.account_id(card.id, ledger.CARD_PRINCIPAL)
    sessions_acc = ledger.account_id(card.id, ledger.CARD_SESSIONS)
    money = await ledger.post(
        conn,
        kind=kind,
        asset=ledger.FEN,
        postings=[*money_in, (principal_acc, amount)],
        reference=reference,
    )
    if money.balances[principal_acc] > cap:
        raise rules.balance_cap_exceeded(cap)
    counted = await ledger.post(
        conn,
        kind=kind,
        asset=ledger.SESSIONS,
        postings=[
            (ledger.hot_account(card.merchant_id, ledger.MERCHANT_SESSIONS_ISSUED), -sessions),
            (sessions_acc, sessions),
        ],
        reference=reference,
    )
    await record_activity(
        conn,
        card_id=card.id,
        transfer_id=money.transfer_id,
        kind=kind,
        delta=amount,
        balance_after=money.balances[principal_acc],
        store_id=store_id,
        reference=reference,
        reason=kind,
        sessions=sessions,
        sessions_after=counted.balances[sessions_acc],
    )
    return money.transfer_id, money.balances[principal_acc]


async def _holder_for_phone(conn: BaseDBAsyncClient, phone: str) -> User:
    normalized = normalize_phone(phone)
    if normalized is None:
        raise invalid_input("holderPhone", "手机号格式不正确", "Not a valid mobile number")
    user = await User.filter(phone=normalized).using_db(conn).first()
    if user is None:
        user = User(
            id=new_id("usr"), role=str(Role.CONSUMER), phone=normalized, created_at=clock.now()
        )
        await user.save(using_db=conn)
    elif user.role != Role.CONSUMER:
        raise invalid_input("holderPhone", "该手机号不能持卡", "This phone cannot hold cards")
    return user


async def issue_card(
    actor: Actor,
    *,
    product_id: str,
    holder_phone: str | None,
    initial_load: int | None,
    card_uid: str | None,
    idempotency_key: str,
    store_id: str | None = None,
    channel: str = "CASH",
) -> Card:
    """Sell a card at the counter (售卡), optionally loaded and bound to a physical card.

    The load is paid at the counter in cash or by bank card (a counter transaction).
    """
    if channel not in COUNTER_CHANNELS:
        raise invalid_input(
            "channel", "柜面收款方式无效", "Pay at the counter by CASH or BANK_CARD"
        )
    product = await get_product(product_id)
    if not is_staff_for(actor, product.merchant_id) and actor.role != Role.OPERATOR:
        raise forbidden()
    merchant = await get_merchant(product.merchant_id)
    if initial_load is not None:
        check_amount(initial_load, "initialLoad")
    if product.kind == "NAMED" and not holder_phone:
        raise errors.holder_required()
    normalized_uid = None
    if card_uid is not None:
        normalized_uid = normalize_uid(card_uid)
        if normalized_uid is None:
            raise invalid_input(
                "cardUid", "实体卡 UID 格式无效", "Card UID must be 4, 7 or 10 bytes hex"
            )
    card_id = new_id("card")
    request = {
        "productId": product_id,
        "holderPhone": holder_phone,
        "initialLoad": initial_load,
        "cardUid": normalized_uid,
        "channel": channel,
    }
    now = clock.now()
    async with transaction() as conn:
        replay = await ledger.claim_idempotency_key(
            conn,
            scope=actor.id,
            key=idempotency_key,
            operation="cardIssue",
            request=request,
            result_id=card_id,
        )
        if replay is not None:
            return await get_card(replay)
        holder = await _holder_for_phone(conn, holder_phone) if holder_phone else None
        card = Card(
            id=card_id,
            number=new_card_number(),
            product_id=product.id,
            merchant_id=product.merchant_id,
            kind=product.kind,
            status="ACTIVE",
            holder_id=holder.id if holder else None,
            uid_hash=uid_hash(normalized_uid) if normalized_uid else None,
            expires_at=now + timedelta(days=product.validity_days)
            if product.validity_days
            else None,
            created_at=now,
        )
        try:
            await card.save(using_db=conn)
        except IntegrityError as exc:
            raise errors.uid_taken() from exc
        await ledger.open_accounts(conn, ledger.card_accounts(card.id))
        if initial_load:
            await load_value(
                conn,
                card=card,
                product=product,
                merchant=merchant,
                amount=initial_load,
                reference=card.id,
                store_id=store_id,
                kind="ISSUE",
            )
            await counter.record(
                conn,
                actor,
                merchant_id=card.merchant_id,
                store_id=store_id,
                kind="CARD_SALE",
                channel=channel,
                amount=initial_load,
                cash=initial_load if channel == "CASH" else 0,
                reference=card.id,
            )
        await audit.record(
            conn,
            actor,
            "cardIssue",
            card.id,
            {"product": product.id, "initialLoad": initial_load or 0},
        )
    return card


# --- lifecycle --------------------------------------------------------------------------------


async def transition(conn: BaseDBAsyncClient, card: Card, new_status: str, action: str) -> Card:
    """Only legal transitions, decided in the UPDATE itself so concurrent changes cannot race."""
    changed = (
        await Card.filter(id=card.id, status__in=TRANSITIONS[new_status])
        .using_db(conn)
        .update(status=new_status)
    )
    if not changed:
        current = await Card.filter(id=card.id).using_db(conn).get()
        raise errors.illegal_transition(current.status, action)
    card.status = new_status
    return card


async def change_status(actor: Actor, card_id: str, new_status: str, action: str) -> Card:
    card = await card_for(actor, card_id)
    async with transaction() as conn:
        await transition(conn, card, new_status, action)
        await audit.record(conn, actor, f"card.{action}", card.id, {"status": new_status})
        await outbox.emit(
            conn,
            f"card-status:{card.id}",
            {"kind": "CARD_STATUS", "status": new_status, "at": clock.now().isoformat()},
        )
    return card


async def replace_card(
    actor: Actor, card_id: str, card_uid: str | None, idempotency_key: str
) -> Card:
    """补卡: a new card takes over the whole balance in one transfer; the old one is REPLACED."""
    old = await card_for(actor, card_id)
    if not (is_staff_for(actor, old.merchant_id) or actor.role == Role.OPERATOR):
        raise forbidden("Only the merchant's staff replace cards")
    normalized_uid = normalize_uid(card_uid) if card_uid else None
    if card_uid and normalized_uid is None:
        raise invalid_input(
            "cardUid", "实体卡 UID 格式无效", "Card UID must be 4, 7 or 10 bytes hex"
        )
    new_card_id = new_id("card")
    async with transaction() as conn:
        replay = await ledger.claim_idempotency_key(
            conn,
            scope=actor.id,
            key=idempotency_key,
            operation="cardReplace",
            request={"cardId": card_id, "cardUid": normalized_uid},
            result_id=new_card_id,
        )
        if replay is not None:
            return await get_card(replay)
        await transition(conn, old, "REPLACED", "replaced")
        await (
            Card.filter(id=old.id).using_db(conn).update(uid_hash=None, replaced_by_id=new_card_id)
        )
        new = Card(
            id=new_card_id,
            number=new_card_number(),
            product_id=old.product_id,
            merchant_id=old.merchant_id,
            kind=old.kind,
            status="ACTIVE",
            holder_id=old.holder_id,
            pin_hash=old.pin_hash,
            uid_hash=uid_hash(normalized_uid) if normalized_uid else None,
            expires_at=old.expires_at,
            created_at=clock.now(),
        )
        try:
            await new.save(using_db=conn)
        except IntegrityError as exc:
            raise errors.uid_taken() from exc
        await ledger.open_accounts(conn, ledger.card_accounts(new.id))
        bal = (await balances_of(conn, [old.id]))[old.id]
        postings = []
        for kind_, amount in (
            (ledger.CARD_PRINCIPAL, bal.principal),
            (ledger.CARD_BONUS, bal.bonus),
        ):
            if amount:
                postings += [
                    (ledger.account_id(old.id, kind_), -amount),
                    (ledger.account_id(new.id, kind_), amount),
                ]
        if bal.sessions:
            await ledger.post(
                conn,
                kind="REPLACE",
                asset=ledger.SESSIONS,
                postings=[
                    (ledger.account_id(old.id, ledger.CARD_SESSIONS), -bal.sessions),
                    (ledger.account_id(new.id, ledger.CARD_SESSIONS), bal.sessions),
                ],
                reference=new.id,
            )
        if postings:
            posted = await ledger.post(
                conn, kind="REPLACE", asset=ledger.FEN, postings=postings, reference=new.id
            )
            session_card = old.kind == "SESSION"
            for cid, delta, sessions in (
                (old.id, -bal.total, -bal.sessions),
                (new.id, bal.total, bal.sessions),
            ):
                await record_activity(
                    conn,
                    card_id=cid,
                    transfer_id=posted.transfer_id,
                    kind="REPLACE",
                    delta=delta,
                    balance_after=0 if cid == old.id else bal.total,
                    store_id=None,
                    reference=new.id,
                    reason="REPLACE",
                    sessions=sessions if session_card else 0,
                    sessions_after=(0 if cid == old.id else bal.sessions) if session_card else None,
                )
        await counter.record(
            conn,
            actor,
            merchant_id=old.merchant_id,
            store_id=None,
            kind="REPLACE",
            channel="NONE",
            amount=bal.total,
            cash=0,
            reference=new.id,
            at_counter_only=True,
        )
        await audit.record(conn, actor, "cardReplace", old.id, {"newCard": new.id})
    return new


async def set_pin(actor: Actor, card_id: str, pin: str) -> Card:
    card = await card_for(actor, card_id)
    if not (pin.isdigit() and len(pin) == 6):
        raise invalid_input("pin", "密码须为 6 位数字", "PIN must be 6 digits")
    if len(set(pin)) == 1 or pin in "0123456789" or pin in "9876543210":
        raise invalid_input("pin", "密码过于简单", "PIN is too easy to guess")
    pin_hash = await hash_password(pin)
    async with transaction() as conn:
        await (
            Card.filter(id=card.id)
            .using_db(conn)
            .update(pin_hash=pin_hash, pin_failures=0, pin_locked_until=None)
        )
        await audit.record(conn, actor, "cardSetPin", card.id)
    card.pin_hash = pin_hash
    return card


async def check_pin(card: Card, pin: str | None) -> None:
    """Verify a PIN; 5 wrong tries lock the card's PIN for 24 hours (PIN_LOCKED)."""
    now = clock.now()
    if card.pin_locked_until is not None and card.pin_locked_until > now:
        raise errors.pin_locked()
    if card.pin_hash is None or not pin:
        raise errors.pin_required()
    if await verify_password(card.pin_hash, pin):
        if card.pin_failures:
            await Card.filter(id=card.id).update(pin_failures=0, pin_locked_until=None)
        return
    # Counted in one statement so parallel guesses cannot slip past the limit.
    await Card.filter(id=card.id).update(pin_failures=F("pin_failures") + 1)
    fresh = await Card.get(id=card.id)
    if fresh.pin_failures >= PIN_MAX_FAILURES:
        await Card.filter(id=card.id).update(pin_locked_until=now + PIN_LOCK, pin_failures=0)
        raise errors.pin_locked()
    raise errors.invalid_pin()


async def bind_uid(actor: Actor, card_id: str, card_uid: str) -> Card:
    card = await card_for(actor, card_id)
    if not (is_staff_for(actor, card.merchant_id) or actor.role == Role.OPERATOR):
        raise forbidden("Only the merchant's staff bind physical cards")
    normalized = normalize_uid(card_uid)
    if normalized is None:
        raise invalid_input(
            "cardUid", "实体卡 UID 格式无效", "Card UID must be 4, 7 or 10 bytes hex"
        )
    async with transaction() as conn:
        try:
            await Card.filter(id=card.id).using_db(conn).update(uid_hash=uid_hash(normalized))
        except IntegrityError as exc:
            raise errors.uid_taken() from exc
        await audit.record(conn, actor, "cardBindUid", card.id)
    card.uid_hash = uid_hash(normalized)
    return card
