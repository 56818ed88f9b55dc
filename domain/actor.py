"""Who is acting: the authenticated principal behind a request, as the domain sees it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    CONSUMER = "CONSUMER"
    MERCHANT_STAFF = "MERCHANT_STAFF"
    MERCHANT_ADMIN = "MERCHANT_ADMIN"
    TERMINAL = "TERMINAL"
    CUSTODIAN = "CUSTODIAN"
    REGULATOR = "REGULATOR"
    OPERATOR = "OPERATOR"


STAFF_ROLES = frozenset({Role.MERCHANT_STAFF, Role.MERCHANT_ADMIN})
OFFICIAL_ROLES = frozenset({Role.CUSTODIAN, Role.REGULATOR})


@dataclass(frozen=True)
class Actor:
    """A user or terminal acting, plus where the request came from (for the audit log)."""

    id: str
    role: Role
    merchant_id: str | None = None
    store_ids: tuple[str, ...] = ()
    region_code: str | None = None
    organisation_id: str | None = None
    ip: str | None = None
    request_id: str | None = None

    def is_staff_of(self, merchant_id: str) -> bool:
        return self.role in STAFF_ROLES and self.merchant_id == merchant_id

    def is_admin_of(self, merchant_id: str) -> bool:
        return self.role == Role.MERCHANT_ADMIN and self.merchant_id == merchant_id

    def can_act_at_store(self, merchant_id: str, store_id: str) -> bool:
        """Admins act at every store of their merchant; staff and terminals at their own."""
        if self.merchant_id != merchant_id:
            return False
        if self.role == Role.MERCHANT_ADMIN:
            return True
        if self.role in (Role.MERCHANT_STAFF, Role.TERMINAL):
            return not self.store_ids or store_id in self.store_ids
        return False


def region_prefix(official_region: str | None) -> str | None:
    """The part of a division code an official oversees: 320000 -> 32, 320100 -> 3201."""
    if not official_region:
        return None
    significant = official_region.rstrip("0")
    # Keep whole levels: province (2 digits), city (4), district (6).
    level = 2 if len(significant) <= 2 else 4 if len(significant) <= 4 else 6
    return official_region[:level]


def in_region(official_region: str | None, region: str) -> bool:
    prefix = region_prefix(official_region)
    return prefix is not None and region.startswith(prefix)


@dataclass(frozen=True)
class Origin:
    """Where an anonymous request came from (login, OTP)."""

    ip: str | None = None
    request_id: str | None = None
    user_agent: str | None = None
