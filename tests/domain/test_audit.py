"""The audit log records every state change and detects tampering."""

from __future__ import annotations

import asyncio

from domain.actor import Actor, Role
from domain.audit import service as audit
from domain.audit.models import AuditRecord
from domain.db import transaction
from tests.helpers import make_merchant


async def test_mutations_are_audited_with_who_and_where(client):
    m = await make_merchant(client)
    record = await AuditRecord.filter(action="merchantCreate", target=m.merchant_id).first()
    assert record is not None
    assert record.actor_role == "OPERATOR"
    assert record.ip == "203.0.113.10"
    assert record.request_id
    store = await AuditRecord.filter(action="storeCreate", target=m.store_id).first()
    assert store is not None and store.actor_role == "MERCHANT_ADMIN"
    assert store.details == {"merchant": m.merchant_id}
    assert (await audit.verify()).ok


async def test_concurrent_appends_keep_one_chain(app):
    actor = Actor(id="usr_test", role=Role.OPERATOR, ip="127.0.0.1", request_id="r")

    async def append(i: int) -> None:
        async with transaction() as conn:
            await audit.record(conn, actor, "concurrencyProbe", f"t{i}", {"i": i})

    await asyncio.gather(*(append(i) for i in range(30)))
    report = await audit.verify()
    assert report.ok, report.problems


async def test_rolled_back_change_leaves_no_record(app):
    actor = Actor(id="usr_test", role=Role.OPERATOR)
    try:
        async with transaction() as conn:
            await audit.record(conn, actor, "rolledBackProbe", "x")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert not await AuditRecord.filter(action="rolledBackProbe").exists()


async def test_tampering_is_detected(client):
    await make_merchant(client)
    last = await AuditRecord.all().order_by("-id").first()
    assert last is not None
    original = dict(last.details)
    try:
        await AuditRecord.filter(id=last.id).update(details={**original, "forged": True})
        report = await audit.verify()
        assert not report.ok
        assert any(str(last.id) in p for p in report.problems)
    finally:
        await AuditRecord.filter(id=last.id).update(details=original)
    assert (await audit.verify()).ok
