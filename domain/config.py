"""Runtime configuration the domain needs, set once by the composition root (app/)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from domain.channels.alipay_orders import AlipayMerchantConfig
from domain.channels.wechatpay_orders import WechatPayMerchantConfig


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        """Count one hit; False when the key is over its limit in the window."""
        ...


class SmsSender(Protocol):
    async def send(self, phone: str, template: str, params: dict[str, str]) -> None: ...


class EventPublisher(Protocol):
    def kick(self) -> None:
        """Outbox rows were committed; publish them soon."""
        ...


@dataclass
class DomainConfig:
    secret_key: str
    production: bool
    access_token_ttl: int
    refresh_token_ttl: int
    otp_ttl: int
    otp_max_attempts: int
    otp_per_phone_per_hour: int
    otp_per_ip_per_hour: int
    rate_limiter: RateLimiter
    sms: SmsSender
    events: EventPublisher | None = None
    otp_verifications_per_ip_per_hour: int = 60
    # Payment providers: notification settings, plus `ordering` when top-ups can be started.
    wechatpay: WechatPayMerchantConfig | None = None
    alipay: AlipayMerchantConfig | None = None
    top_up_ttl: int = 1800  # seconds an online top-up waits for its payment


_config: DomainConfig | None = None


def configure(config: DomainConfig) -> None:
    global _config
    _config = config


def get() -> DomainConfig:
    if _config is None:
        raise RuntimeError("domain.config.configure() was not called")
    return _config
