"""Who may call what. Every root field declares its rule (see schema/permissions.py); the
object-level checks (tenant isolation, ownership) are the functions below."""

from __future__ import annotations

from collections.abc import Iterable

from domain.actor import OFFICIAL_ROLES, STAFF_ROLES, Actor, Role, in_region
from domain.errors import forbidden
from resolvers.context import Context

ALL_ROLES = frozenset(Role)


def check_roles(ctx: Context, roles: frozenset[Role] | None) -> Actor | None:
    """None as roles means public. Raises UNAUTHENTICATED / FORBIDDEN."""
    if roles is None:
        return ctx.viewer
    viewer = ctx.require_viewer()
    if viewer.role not in roles:
        raise forbidden(f"Role {viewer.role} may not do this")
    return viewer


def roles(*names: Role | Iterable[Role]) -> frozenset[Role]:
    out: set[Role] = set()
    for n in names:
        if isinstance(n, Role):
            out.add(n)
        else:
            out.update(n)
    return frozenset(out)


STAFF = STAFF_ROLES
OFFICIALS = OFFICIAL_ROLES


def can_see_merchant(viewer: Actor, merchant_id: str, merchant_region: str) -> bool:
    """Operators see all; staff and terminals their own; regulators their region (prefix match:
    a province-level 320000 sees 320105)."""
    if viewer.role == Role.OPERATOR:
        return True
    if viewer.role in STAFF_ROLES or viewer.role == Role.TERMINAL:
        return viewer.merchant_id == merchant_id
    if viewer.role in OFFICIAL_ROLES:
        return in_region(viewer.region_code, merchant_region)
    return False


def require_merchant_access(viewer: Actor, merchant_id: str, merchant_region: str) -> None:
    if not can_see_merchant(viewer, merchant_id, merchant_region):
        raise forbidden("This merchant is not yours")
