"""The viewer: who the token belongs to; and the viewer's own live events."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from strawberry.types import Info

from domain.identity.secrets import mask_phone
from resolvers import events
from resolvers import merchants as resolve
from schema.merchants import Merchant, Terminal
from schema.permissions import authenticated


@strawberry.type(description="The authenticated principal.")
class Viewer:
    id: strawberry.ID
    role: str
    username: str | None
    masked_phone: str | None = strawberry.field(description="138****5678; never the full number.")
    organisation: str | None
    region_code: str | None
    merchant_id: strawberry.ID | None
    store_ids: list[strawberry.ID]

    @strawberry.field
    async def merchant(self, info: Info) -> Merchant | None:
        if not self.merchant_id:
            return None
        row = await resolve.merchant_of(info.context, self.merchant_id)
        return Merchant.from_model(row) if row else None

    @strawberry.field
    async def terminal(self, info: Info) -> Terminal | None:
        row = await resolve.viewer_terminal(info.context)
        return Terminal.from_model(row) if row else None


@strawberry.type(description="Something that happened to the viewer's account.")
class ViewerEvent:
    kind: str = strawberry.field(description="SESSION_REVOKED, ...")
    reason: str | None
    at: datetime


@strawberry.type
class ViewerQuery:
    @strawberry.field(extensions=authenticated())
    async def viewer(self, info: Info) -> Viewer | None:
        actor = info.context.require_viewer()
        user = await resolve.viewer_user(info.context)
        return Viewer(
            id=strawberry.ID(actor.id),
            role=str(actor.role),
            username=user.username if user else None,
            masked_phone=mask_phone(user.phone) if user else None,
            organisation=user.organisation if user else None,
            region_code=user.region_code if user else actor.region_code,
            merchant_id=strawberry.ID(actor.merchant_id) if actor.merchant_id else None,
            store_ids=[strawberry.ID(s) for s in actor.store_ids],
        )


@strawberry.type
class ViewerSubscription:
    @strawberry.subscription(
        extensions=authenticated(),
        description="Events on the viewer's own account (e.g. a revoked login).",
    )
    async def viewer_events(self, info: Info) -> AsyncGenerator[ViewerEvent, None]:
        async for message in events.viewer_events(info.context):
            yield ViewerEvent(
                kind=str(message.get("kind", "")),
                reason=message.get("reason"),
                at=datetime.fromisoformat(str(message["at"])),
            )
