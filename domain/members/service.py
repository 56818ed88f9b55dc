"""Memberships: joining, the member's profile, manual points adjustment and tier assignment,
and who may see which membership."""

from __future__ import annotations

from datetime import date
from typing import Any

from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from domain import clock
from domain.actor import STAFF_ROLES, Actor, Role
from domain.audit import service as audit
from domain.cards.models import Card
from domain.db import transaction
from domain.errors import forbidden, invalid_input
from domain.identity.models import User
from domain.identity.secrets import encrypt_personal, mask_id_number, normalize_phone
from domain.ids import has_prefix, new_id
from domain.ledger import service as ledger
from domain.members import enrol, errors, points, tiers
from domain.members.models import (
    MemberProfile,
    Membership,
    PointsActivity,
    PointsProgramme,
    Tier,
    TierChange,
)

# --- reading ----------------------------------------------------------------------------------


def may_see(actor: Actor, membership: Membership) -> bool:
    """The member, the programme's merchant staff, or an operator."""
    if actor.role == Role.CONSUMER:
        return membership.user_id == actor.id
    if actor.role in STAFF_ROLES:
        return actor.merchant_id == membership.merchant_id
    return actor.role == Role.OPERATOR


async def get_membership_for(actor: Actor, membership_id: str) -> Membership:
    found = (
        await Membership.get_or_none(id=membership_id) if has_prefix(membership_id, "mbr") else None
    )
    if found is None or not may_see(actor, found):
        raise errors.membership_not_found()
    return found


async def my_memberships(actor: Actor) -> list[Membership]:
    """The consumer's memberships; holders of named cards of a programme's merchant are
    enrolled here if the accrual job has not done it yet."""
    if actor.role != Role.CONSUMER:
        raise forbidden()
    have = set(await Membership.filter(user_id=actor.id).values_list("merchant_id", flat=True))
    card_merchants = set(
        await Card.filter(holder_id=actor.id).distinct().values_list("merchant_id", flat=True)
    )
    missing = [str(m) for m in card_merchants - {str(h) for h in have}]
    if missing:
        for programme in await PointsProgramme.filter(merchant_id__in=missing):
            async with transaction() as conn:
                await enrol.ensure_membership(conn, programme, actor.id, "CARD")
    return await Membership.filter(user_id=actor.id).order_by("id").limit(200)


async def members_query(
    actor: Actor,
    merchant_id: str,
    *,
    search: str | None = None,
    tier_id: str | None = None,
    min_spend: int | None = None,
    max_spend: int | None = None,
    last_visit_after: Any = None,
    last_visit_before: Any = None,
) -> QuerySet[Membership]:
    """A merchant's members, filtered; `search` is a phone number (whole, or its last 4 digits)
    or part of a nickname."""
    if not (actor.is_staff_of(merchant_id) or actor.role == Role.OPERATOR):
        raise forbidden("Not your merchant")
    query = Membership.filter(merchant_id=merchant_id)
    if tier_id:
        query = query.filter(tier_id=tier_id)
    if min_spend is not None:
        query = query.filter(total_spend__gte=min_spend)
    if max_spend is not None:
        query = query.filter(total_spend__lte=max_spend)
    if last_visit_after is not None:
        query = query.filter(last_visit_at__gte=last_visit_after)
    if last_visit_before is not None:
        query = query.filter(last_visit_at__lt=last_visit_before)
    text = (search or "").strip()
    if text:
        if len(text) > 40:
            raise invalid_input("search", "搜索词过长", "Search text is too long")
        phone = normalize_phone(text)
        if phone is not None:
            users = Subquery(User.filter(phone=phone).values("id"))
        elif text.isdigit() and len(text) == 4:
            users = Subquery(User.filter(phone__endswith=text, role=Role.CONSUMER).values("id"))
        else:
            users = Subquery(MemberProfile.filter(nickname__icontains=text).values("user_id"))
        query = query.filter(user_id__in=users)
    return query


def history_query(membership: Membership) -> QuerySet[PointsActivity]:
    return PointsActivity.filter(membership_id=membership.id)


async def tier_history(membership: Membership) -> list[TierChange]:
    return await TierChange.filter(membership_id=membership.id).order_by("-id").limit(100)


# --- joining and the profile ------------------------------------------------------------------


async def join(actor: Actor, merchant_id: str, marketing_consent: bool | None = None) -> Membership:
    """Opt in (idempotent: joining again returns the membership, updating the consent)."""
    if actor.role != Role.CONSUMER:
        raise forbidden("Consumers join programmes")
    programme = (
        await PointsProgramme.get_or_none(merchant_id=merchant_id)
        if has_prefix(merchant_id, "mch")
        else None
    )
    if programme is None:
        raise errors.programme_not_found()
    async with transaction() as conn:
        membership, _ = await enrol.ensure_membership(conn, programme, actor.id, "OPT_IN")
        if marketing_consent is not None:
            await (
                Membership.filter(id=membership.id)
                .using_db(conn)
                .update(marketing_consent=marketing_consent)
            )
    return await Membership.get(id=membership.id)


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def valid_id_number(value: str) -> bool:
    """A mainland resident ID number (GB 11643): 18 characters with a valid check digit."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    total = sum(int(c) * w for c, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == value[17].upper()


def mask_name(name: str) -> str:
    """张三 -> 张*, 欧阳娜娜 -> 欧***."""
    return name[0] + "*" * max(1, len(name) - 1)


async def profile_of(user_id: str) -> MemberProfile | None:
    return await MemberProfile.get_or_none(user_id=user_id)


async def update_profile(
    actor: Actor,
    *,
    nickname: str | None = None,
    birthday: date | None = None,
    real_name: str | None = None,
    id_number: str | None = None,
    personal_data_consent: bool | None = None,
) -> MemberProfile:
    """The consumer's own profile. Real-name data needs consent to its processing, is stored
    encrypted and only ever shown masked."""
    if actor.role != Role.CONSUMER:
        raise forbidden()
    now = clock.now()
    values: dict[str, Any] = {"updated_at": now}
    if nickname is not None:
        nickname = nickname.strip()
        if len(nickname) > 40:
            raise invalid_input("nickname", "昵称最多 40 字", "Nickname is at most 40 characters")
        values["nickname"] = nickname or None
    if birthday is not None:
        if birthday > now.date() or birthday.year < 1900:
            raise invalid_input("birthday", "生日无效", "Not a valid birthday")
        values["birthday"] = birthday
    if personal_data_consent is not None:
        values["personal_data_consent_at"] = now if personal_data_consent else None
    current = await profile_of(actor.id)
    consented = (
        personal_data_consent
        if personal_data_consent is not None
        else bool(current and current.personal_data_consent_at)
    )
    if (real_name or id_number) and not consented:
        raise invalid_input(
            "personalDataConsent",
            "提供实名信息须同意个人信息处理",
            "Real-name data needs consent to its processing",
        )
    if real_name is not None:
        real_name = real_name.strip()
        if not 2 <= len(real_name) <= 30:
            raise invalid_input("realName", "姓名须为 2-30 个字符", "Name must be 2-30 characters")
        values["real_name_encrypted"] = encrypt_personal(real_name)
        values["real_name_masked"] = mask_name(real_name)
    if id_number is not None:
        id_number = id_number.strip().upper()
        if not valid_id_number(id_number):
            raise invalid_input("idNumber", "身份证号无效", "Not a valid ID number")
        values["id_number_encrypted"] = encrypt_personal(id_number)
        values["id_number_masked"] = mask_id_number(id_number)
    if personal_data_consent is False:  # withdrawing consent erases the real-name data
        values.update(
            real_name_encrypted=None,
            real_name_masked=None,
            id_number_encrypted=None,
            id_number_masked=None,
        )
    async with transaction() as conn:
        if current is None:
            await MemberProfile.create(using_db=conn, user_id=actor.id, **values)
        else:
            await MemberProfile.filter(user_id=actor.id).using_db(conn).update(**values)
        await audit.record(conn, actor, "memberProfileUpdate", actor.id, {"fields": sorted(values)})
    return await MemberProfile.get(user_id=actor.id)


# --- the merchant's hand ----------------------------------------------------------------------


async def _administered(actor: Actor, membership_id: str) -> Membership:
    membership = await get_membership_for(actor, membership_id)
    if not actor.is_admin_of(membership.merchant_id):
        raise forbidden("Only the merchant's admins do this")
    return membership


async def adjust_points(
    actor: Actor, *, membership_id: str, points_delta: int, reason: str, idempotency_key: str
) -> Membership:
    """Manual adjustment with a required reason, audited and idempotent. A credit pays any
    debt first; a debit takes available points only (INSUFFICIENT_POINTS otherwise)."""
    membership = await _administered(actor, membership_id)
    reason = reason.strip()
    if not reason or len(reason) > 200:
        raise invalid_input(
            "reason", "须填写原因（最多 200 字）", "A reason (1-200 characters) is required"
        )
    if points_delta == 0 or abs(points_delta) > 10**9:
        raise invalid_input("points", "积分须为非零整数", "points must be a non-zero integer")
    request = {"membershipId": membership_id, "points": points_delta, "reason": reason}
    async with transaction() as conn:
        replay = await ledger.claim_idempotency_key(
            conn,
            scope=actor.id,
            key=idempotency_key,
            operation="pointsAdjust",
            request=request,
            result_id=membership.id,
        )
        if replay is not None:
            return membership
        membership = await points.lock_membership(conn, membership.id)
        programme = (
            await PointsProgramme.filter(merchant_id=membership.merchant_id).using_db(conn).get()
        )
        reference = new_id("adj")
        if points_delta > 0:
            now = clock.now()
            credited = await points.credit(
                conn,
                membership,
                programme,
                points=points_delta,
                from_kind=points.ADJUSTED,
                transfer_kind="POINTS_ADJUST",
                source="ADJUST",
                reference=reference,
                earned_at=now,
                available_at=now,
            )
            transfer_id = credited.transfer_id
        else:
            transfer_id = await points.spend(
                conn,
                membership,
                points=-points_delta,
                to_kind=points.ADJUSTED,
                transfer_kind="POINTS_ADJUST",
                reference=reference,
            )
        await points.record(
            conn,
            membership.id,
            kind="ADJUST",
            points=points_delta,
            reference=reference,
            transfer_id=transfer_id,
            detail={"reason": reason, "by": actor.id},
        )
        await audit.record(
            conn, actor, "pointsAdjust", membership.id, {"points": points_delta, "reason": reason}
        )
    return membership


async def assign_tier(
    actor: Actor, *, membership_id: str, tier_id: str | None, reason: str
) -> Membership:
    """Manual tier with a reason: holds for a period like any tier, then the rules decide."""
    membership = await _administered(actor, membership_id)
    reason = reason.strip()
    if not reason or len(reason) > 200:
        raise invalid_input(
            "reason", "须填写原因（最多 200 字）", "A reason (1-200 characters) is required"
        )
    tier = None
    if tier_id is not None:
        tier = await Tier.get_or_none(id=tier_id) if has_prefix(tier_id, "tir") else None
        if tier is None or tier.merchant_id != membership.merchant_id:
            raise errors.tier_not_found()
    async with transaction() as conn:
        locked = await points.lock_membership(conn, membership.id)
        await tiers.change_tier(
            conn, locked, tier, reason="MANUAL", now=clock.now(), note=reason, actor_id=actor.id
        )
        await audit.record(
            conn, actor, "memberTierAssign", membership.id, {"tier": tier_id, "reason": reason}
        )
    return await Membership.get(id=membership.id)
