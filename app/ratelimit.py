"""Fixed-window rate limits: Redis when configured (shared by workers), memory otherwise."""

from __future__ import annotations

import time

import redis.asyncio as aioredis
import structlog

log = structlog.get_logger(__name__)


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int]] = {}

    async def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        window = int(time.time()) // window_seconds
        start, count = self._windows.get(key, (window, 0))
        if start != window:
            count = 0
        count += 1
        self._windows[key] = (window, count)
        if len(self._windows) > 100_000:
            self._windows.clear()
        return count <= limit

    def reset(self) -> None:
        self._windows.clear()


class RedisRateLimiter:
    def __init__(self, redis: aioredis.Redis, fallback: MemoryRateLimiter, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.fallback = fallback

    async def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        window = int(time.time()) // window_seconds
        rkey = f"{self.prefix}rl:{key}:{window}"
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.incr(rkey)
            pipe.expire(rkey, window_seconds + 1)
            count, _ = await pipe.execute()
        except Exception as exc:  # Redis down: degrade to per-process limits, not to none
            log.warning("rate limiter falling back to memory", error=str(exc))
            return await self.fallback.hit(key, limit, window_seconds)
        return int(count) <= limit
