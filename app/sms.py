"""SMS delivery. The development sender writes the message to the log (never in production)."""

from __future__ import annotations

import structlog

from domain.identity.secrets import mask_phone

log = structlog.get_logger("yikatong.sms")


class LoggingSmsSender:
    def __init__(self, production: bool) -> None:
        self.production = production

    async def send(self, phone: str, template: str, params: dict[str, str]) -> None:
        if self.production:
            log.warning(
                "no SMS provider configured; message dropped",
                template=template,
                phone=mask_phone(phone),
            )
            return
        # Development only: the code is shown so a developer can log in.
        log.info("SMS (development sender)", template=template, phone=mask_phone(phone), **params)
