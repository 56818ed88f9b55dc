"""Settings from the environment (every variable is listed in README.md)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

ENVIRONMENTS = ("development", "test", "production")


class SettingsError(RuntimeError):
    """The configuration cannot work; the process must not start."""


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    env: str
    database_url: str
    redis_url: str | None
    secret_key: str
    data_dir: Path
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    otp_ttl: int = 300
    otp_max_attempts: int = 5
    otp_per_phone_per_hour: int = 5
    otp_per_ip_per_hour: int = 30
    otp_verifications_per_ip_per_hour: int = 60
    cors_origins: tuple[str, ...] = ()
    max_query_depth: int = 12
    max_query_tokens: int = 2000
    max_aliases: int = 30
    max_page_size: int = 100
    max_body_bytes: int = 256 * 1024
    redis_prefix: str = "yikatong:"
    log_level: str = "INFO"
    log_json: bool = True
    # Payment providers (see README.md): a channel without its settings is not offered.
    wechatpay_mchid: str = ""
    wechatpay_appid: str = ""
    wechatpay_apiv3_key: str = ""
    wechatpay_platform_public_key_file: str = ""
    wechatpay_platform_public_key_id: str = ""
    # ... and to place orders (without them the channel is not offered; see app/channels.py)
    wechatpay_merchant_private_key_file: str = ""
    wechatpay_merchant_serial: str = ""
    wechatpay_api_base: str = "https://api.mch.weixin.qq.com"
    alipay_app_id: str = ""
    alipay_public_key_file: str = ""
    alipay_app_private_key_file: str = ""
    # Where providers reach us: notify_url = {public_url}/callbacks/wechatpay (or /alipay).
    public_url: str = ""
    top_up_ttl: int = 1800

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def backend_label(self) -> str:
        db = "SQLite" if self.uses_sqlite else "PostgreSQL"
        broker = "Redis" if self.redis_url else "in-process broker"
        return f"{db} + {broker}"


def _dev_secret(data_dir: Path) -> str:
    """A development key kept in a local file so tokens survive restarts."""
    path = data_dir / "secret-key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    log.warning("generated a development secret key; set YIKATONG_SECRET_KEY", path=str(path))
    return key


def load_settings() -> Settings:
    env = os.environ.get("YIKATONG_ENV", "development")
    if env not in ENVIRONMENTS:
        raise SettingsError(f"YIKATONG_ENV must be one of {ENVIRONMENTS}, got {env!r}")
    data_dir = Path(os.environ.get("YIKATONG_DATA_DIR", ".yikatong")).resolve()
    database_url = (
        os.environ.get("YIKATONG_DATABASE_URL") or f"sqlite://{data_dir}/yikatong.sqlite3"
    )
    if database_url.startswith("postgresql://"):
        database_url = "postgres://" + database_url.removeprefix("postgresql://")
    if database_url.startswith("sqlite://"):
        Path(database_url.removeprefix("sqlite://")).parent.mkdir(parents=True, exist_ok=True)
    redis_url = os.environ.get("YIKATONG_REDIS_URL") or None
    secret_key = os.environ.get("YIKATONG_SECRET_KEY", "")
    if not secret_key:
        if env == "production":
            raise SettingsError("YIKATONG_SECRET_KEY is required in production")
        secret_key = _dev_secret(data_dir)
    elif len(secret_key) < 32:
        raise SettingsError("YIKATONG_SECRET_KEY must be at least 32 characters")
    cors = tuple(
        o.strip() for o in os.environ.get("YIKATONG_CORS_ORIGINS", "").split(",") if o.strip()
    )
    return Settings(
        env=env,
        database_url=database_url,
        redis_url=redis_url,
        secret_key=secret_key,
        data_dir=data_dir,
        access_token_ttl=_int("YIKATONG_ACCESS_TOKEN_TTL", 900),
        refresh_token_ttl=_int("YIKATONG_REFRESH_TOKEN_TTL", 30 * 24 * 3600),
        otp_ttl=_int("YIKATONG_OTP_TTL", 300),
        otp_per_phone_per_hour=_int("YIKATONG_OTP_PER_PHONE_PER_HOUR", 5),
        otp_per_ip_per_hour=_int("YIKATONG_OTP_PER_IP_PER_HOUR", 30),
        otp_verifications_per_ip_per_hour=_int("YIKATONG_OTP_VERIFY_PER_IP_PER_HOUR", 60),
        cors_origins=cors,
        redis_prefix=os.environ.get("YIKATONG_REDIS_PREFIX", "yikatong:"),
        max_query_depth=_int("YIKATONG_MAX_QUERY_DEPTH", 12),
        max_query_tokens=_int("YIKATONG_MAX_QUERY_TOKENS", 2000),
        max_aliases=_int("YIKATONG_MAX_ALIASES", 30),
        max_body_bytes=_int("YIKATONG_MAX_BODY_BYTES", 256 * 1024),
        wechatpay_mchid=os.environ.get("YIKATONG_WECHATPAY_MCHID", ""),
        wechatpay_appid=os.environ.get("YIKATONG_WECHATPAY_APPID", ""),
        wechatpay_apiv3_key=os.environ.get("YIKATONG_WECHATPAY_APIV3_KEY", ""),
        wechatpay_platform_public_key_file=os.environ.get(
            "YIKATONG_WECHATPAY_PLATFORM_PUBLIC_KEY_FILE", ""
        ),
        wechatpay_platform_public_key_id=os.environ.get(
            "YIKATONG_WECHATPAY_PLATFORM_PUBLIC_KEY_ID", ""
        ),
        wechatpay_merchant_private_key_file=os.environ.get(
            "YIKATONG_WECHATPAY_MERCHANT_PRIVATE_KEY_FILE", ""
        ),
        wechatpay_merchant_serial=os.environ.get("YIKATONG_WECHATPAY_MERCHANT_SERIAL", ""),
        wechatpay_api_base=os.environ.get("YIKATONG_WECHATPAY_API_BASE")
        or "https://api.mch.weixin.qq.com",
        alipay_app_id=os.environ.get("YIKATONG_ALIPAY_APP_ID", ""),
        alipay_public_key_file=os.environ.get("YIKATONG_ALIPAY_PUBLIC_KEY_FILE", ""),
        alipay_app_private_key_file=os.environ.get("YIKATONG_ALIPAY_APP_PRIVATE_KEY_FILE", ""),
        public_url=os.environ.get("YIKATONG_PUBLIC_URL", ""),
        top_up_ttl=_int("YIKATONG_TOP_UP_TTL", 1800),
        log_level=os.environ.get("YIKATONG_LOG_LEVEL", "INFO").upper(),
        log_json=os.environ.get("YIKATONG_LOG_FORMAT", "json" if env == "production" else "console")
        == "json",
    )
