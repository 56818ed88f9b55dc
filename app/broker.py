"""Fan-out of events to subscribers: Redis pub/sub across workers, or in-process."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import orjson
import redis.asyncio as aioredis
import structlog
from redis.exceptions import ResponseError

log = structlog.get_logger(__name__)


class InProcessBroker:
    """For one process (the embedded default): queues per subscriber."""

    name = "in-process"

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        for queue in list(self._subscribers.get(channel, ())):
            if queue.qsize() < 1000:
                queue.put_nowait(message)

    async def publish_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        for channel, message in messages:
            await self.publish(channel, message)

    async def subscribe(self, channel: str) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers[channel].add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers[channel].discard(queue)
            if not self._subscribers[channel]:
                self._subscribers.pop(channel, None)


# PUBLISH for each (channel, message) pair in ARGV: a whole relay batch is one command, so the
# client packs one request and parses one reply instead of one per event.
_PUBLISH_ALL = """
for i = 1, #ARGV, 2 do
  redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
end
return #ARGV / 2
"""


class RedisBroker:
    """Redis pub/sub: one connection per subscription (subscriptions are few per worker)."""

    name = "redis"

    def __init__(self, url: str, prefix: str = "yikatong:") -> None:
        self.url = url
        self.prefix = prefix
        self.redis: aioredis.Redis = aioredis.from_url(url)
        self._publish_all = self.redis.register_script(_PUBLISH_ALL)
        self._scripting = True

    async def start(self) -> None:
        with contextlib.suppress(Exception):
            await self.redis.ping()

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except Exception:  # readiness reports it; it must not raise
            return False

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        await self.redis.publish(self.prefix + channel, orjson.dumps(message))

    async def publish_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """One round trip for a whole relay batch (a script; a pipeline where scripts are
        refused). A failure part way re-publishes the batch: delivery is at least once and
        subscribers drop repeats by event id."""
        if not messages:
            return
        if self._scripting:
            args: list[str | bytes] = []
            for channel, message in messages:
                args.append(self.prefix + channel)
                args.append(orjson.dumps(message))
            try:
                await self._publish_all(args=args)
                return
            except ResponseError as exc:
                # e.g. EVAL denied by an ACL or disabled by the provider
                log.warning("redis refused the publish script; pipelining instead", error=str(exc))
                self._scripting = False
        pipe = self.redis.pipeline(transaction=False)
        for channel, message in messages:
            pipe.publish(self.prefix + channel, orjson.dumps(message))
        await pipe.execute()

    async def subscribe(self, channel: str) -> AsyncIterator[dict[str, Any]]:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.prefix + channel)
        try:
            while True:
                message = await pubsub.get_message(timeout=30.0)
                if message is not None and message.get("type") == "message":
                    yield orjson.loads(message["data"])
        finally:
            with contextlib.suppress(Exception):
                await pubsub.unsubscribe()
                await pubsub.aclose()  # type: ignore[no-untyped-call]


Broker = InProcessBroker | RedisBroker


def make_broker(redis_url: str | None, prefix: str = "yikatong:") -> Broker:
    return RedisBroker(redis_url, prefix) if redis_url else InProcessBroker()
