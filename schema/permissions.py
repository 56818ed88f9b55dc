"""`Allow`: the permission every root field declares (the authorization matrix test checks it)."""

from __future__ import annotations

from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info

from domain.actor import Role
from resolvers.permissions import ALL_ROLES, check_roles


class Allow(BasePermission):
    """Roles that may call a field; `None` means public (no login)."""

    def __init__(self, roles: frozenset[Role] | None) -> None:
        self.roles = roles

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        check_roles(info.context, self.roles)  # raises UNAUTHENTICATED / FORBIDDEN
        return True


def allow(*roles: Role) -> list[FieldExtension]:
    return [PermissionExtension(permissions=[Allow(frozenset(roles))], use_directives=False)]


def public() -> list[FieldExtension]:
    return [PermissionExtension(permissions=[Allow(None)], use_directives=False)]


def authenticated() -> list[FieldExtension]:
    return [PermissionExtension(permissions=[Allow(ALL_ROLES)], use_directives=False)]


def declared_roles(extensions: list[Any]) -> frozenset[Role] | bool | None:
    """The roles a field declares, None if public, False if it declares nothing."""
    for ext in extensions:
        if isinstance(ext, PermissionExtension):
            for perm in ext.permissions:
                if isinstance(perm, Allow):
                    return perm.roles
    return False
