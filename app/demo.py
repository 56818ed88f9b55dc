"""Deterministic, idempotent demo data: the same logins every time, created once."""

from __future__ import annotations

from domain import clock
from domain.actor import Origin, Role
from domain.audit import service as audit
from domain.db import transaction
from domain.identity import service as identity
from domain.identity.models import User
from domain.identity.secrets import token_hash
from domain.ids import new_id
from domain.merchants.models import Merchant, Store, Terminal

DEMO_PASSWORD = "yikatong-demo"
DEMO_TERMINAL_KEY = "tk_demo-terminal-key-for-development-only"


async def _password_user(username: str, role: Role, **extra: object) -> User:
    existing = await User.get_or_none(username=username)
    if existing:
        return existing
    async with transaction() as conn:
        user = await identity.create_user_with_password(
            conn,
            username=username,
            password=DEMO_PASSWORD,
            role=role,
            **extra,  # type: ignore[arg-type]
        )
        await audit.record(conn, Origin(), "demo", user.id, {"username": username})
    return user


async def create_demo_data() -> list[str]:
    await _password_user("operator", Role.OPERATOR)
    admin = await User.get_or_none(username="coffee-admin")
    if admin is None:
        async with transaction() as conn:
            merchant = await Merchant.create(
                using_db=conn,
                id=new_id("mch"),
                name="一杯咖啡 Demo Coffee",
                region_code="110105",
                industry="CATERING",
                issuer_class="GROUP",
                created_at=clock.now(),
            )
            store = await Store.create(
                using_db=conn,
                id=new_id("sto"),
                merchant_id=merchant.id,
                name="朝阳门店 Chaoyang",
                region_code="110105",
                created_at=clock.now(),
            )
            await Terminal.create(
                using_db=conn,
                id=new_id("trm"),
                merchant_id=merchant.id,
                store_id=store.id,
                name="Counter tablet",
                key_hash=token_hash(DEMO_TERMINAL_KEY),
                created_at=clock.now(),
            )
            await audit.record(conn, Origin(), "demo", merchant.id, {"name": merchant.name})
        await _password_user("coffee-admin", Role.MERCHANT_ADMIN, merchant_id=merchant.id)
        await _password_user(
            "coffee-staff", Role.MERCHANT_STAFF, merchant_id=merchant.id, store_ids=[store.id]
        )
    await _password_user(
        "regulator-bj",
        Role.REGULATOR,
        organisation="北京市商务局 Beijing Commerce Bureau",
        region_code="110000",
    )
    await _password_user(
        "custodian-bank",
        Role.CUSTODIAN,
        organisation="示例银行 Demo Custodian Bank",
        region_code="110000",
    )
    return [
        f"operator        / {DEMO_PASSWORD}   (OPERATOR)",
        f"coffee-admin    / {DEMO_PASSWORD}   (MERCHANT_ADMIN of Demo Coffee)",
        f"coffee-staff    / {DEMO_PASSWORD}   (MERCHANT_STAFF, Chaoyang store)",
        f"regulator-bj    / {DEMO_PASSWORD}   (REGULATOR, region 110000)",
        f"custodian-bank  / {DEMO_PASSWORD}   (CUSTODIAN)",
        "consumer: requestOtp(phone: 13800138000); the code is printed in the server log",
        f"terminal: Authorization: Terminal {DEMO_TERMINAL_KEY}",
    ]
