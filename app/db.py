"""Tortoise ORM: one app of models from every domain area, migrations in `migrations/`."""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api.migrate import migrate as tortoise_migrate

MODEL_MODULES = [
    "domain.identity.models",
    "domain.merchants.models",
    "domain.audit.models",
    "domain.outbox.models",
    "domain.ledger.models",
    "domain.cards.models",
    "domain.payments.models",
    "domain.codes.models",
    "domain.escrow.models",
    "domain.counter.models",
    "domain.members.models",
    "domain.terminals.models",
]


async def _keep_session(connection: Any) -> None:
    """Nothing to reset: the app keeps no session state (advisory locks are transaction-
    scoped, nothing LISTENs or SETs), and asyncpg still rolls back an open transaction on
    release. asyncpg's default reset is one more round trip per statement."""


def tortoise_config(database_url: str) -> dict[str, Any]:
    connection: Any = database_url
    if database_url.startswith("postgres"):
        # asyncpg pool sized for a 2-core box; asyncpg's statement cache stays on.
        connection = expand_db_url(database_url)
        connection["credentials"].setdefault("minsize", 2)
        connection["credentials"].setdefault("maxsize", 20)
        connection["credentials"].setdefault("reset", _keep_session)
    return {
        "connections": {"default": connection},
        "apps": {
            "yikatong": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def migrate(database_url: str) -> None:
    await tortoise_migrate(config=tortoise_config(database_url))
    await Tortoise.close_connections()


async def open_database(database_url: str) -> None:
    # Request tasks run outside the lifespan's context; the global fallback lets them see it.
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)


async def close_database() -> None:
    await Tortoise.close_connections()


def _cli_config() -> dict[str, Any]:
    """For `tortoise makemigrations` (see [tool.tortoise] in pyproject.toml)."""
    import os

    return tortoise_config(os.environ.get("YIKATONG_DATABASE_URL", "sqlite://:memory:"))


TORTOISE_ORM = _cli_config()
