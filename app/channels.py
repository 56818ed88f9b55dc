"""Payment-provider settings -> verified adapter configs; a half-configured channel is an error.

Each provider has two layers of settings. The notification settings verify what the provider
POSTs to /callbacks/...; the ordering settings (our private key, and for WeChat Pay the merchant
certificate serial; YIKATONG_PUBLIC_URL for the notify_url) let us start a top-up the app can
pay. A channel is offered for new top-ups only when both are complete. Notification settings
alone are accepted, with a warning: notifications of top-ups started earlier still credit, but
no new top-up starts on that channel. Anything else half-given refuses to start.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import structlog

from app.settings import Settings, SettingsError
from domain.channels import keys, signing
from domain.channels.alipay_orders import AlipayMerchantConfig, AlipayOrdering
from domain.channels.wechatpay_orders import WechatPayMerchantConfig, WechatPayOrdering

log = structlog.get_logger(__name__)

PREPAY_ID_LIFETIME = 2 * 3600  # seconds WeChat Pay keeps a prepay_id


def notify_url(s: Settings, path: str) -> str:
    """`{YIKATONG_PUBLIC_URL}{path}`: an https URL without query (WeChat Pay refuses others)."""
    if not s.public_url:
        raise SettingsError("YIKATONG_PUBLIC_URL is needed: providers notify us there")
    parts = urlsplit(s.public_url)
    if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise SettingsError(
            "YIKATONG_PUBLIC_URL must be an https:// URL without query or fragment,"
            f" got {s.public_url!r}"
        )
    return s.public_url.rstrip("/") + path


def _api_base(s: Settings) -> str:
    parts = urlsplit(s.wechatpay_api_base)
    allowed = ("https",) if s.production else ("https", "http")
    if parts.scheme not in allowed or not parts.netloc or parts.query or parts.fragment:
        raise SettingsError(
            f"YIKATONG_WECHATPAY_API_BASE must be an {' or '.join(allowed)} URL,"
            f" got {s.wechatpay_api_base!r}"
        )
    return s.wechatpay_api_base


def wechatpay_config(s: Settings) -> WechatPayMerchantConfig | None:
    notifications = [
        s.wechatpay_mchid,
        s.wechatpay_appid,
        s.wechatpay_apiv3_key,
        s.wechatpay_platform_public_key_file,
        s.wechatpay_platform_public_key_id,
    ]
    ordering_given = [s.wechatpay_merchant_private_key_file, s.wechatpay_merchant_serial]
    if not any(notifications) and not any(ordering_given):
        return None
    if not all(notifications):
        raise SettingsError(
            "WeChat Pay needs all of YIKATONG_WECHATPAY_MCHID, _APPID, _APIV3_KEY,"
            " _PLATFORM_PUBLIC_KEY_FILE and _PLATFORM_PUBLIC_KEY_ID"
        )
    if any(ordering_given) and not all(ordering_given):
        raise SettingsError(
            "WeChat Pay orders need both YIKATONG_WECHATPAY_MERCHANT_PRIVATE_KEY_FILE"
            " and _MERCHANT_SERIAL"
        )
    if all(ordering_given) and s.top_up_ttl > PREPAY_ID_LIFETIME:
        # The app pays with the prepay_id, which WeChat keeps for two hours.
        raise SettingsError(
            f"YIKATONG_TOP_UP_TTL may be at most {PREPAY_ID_LIFETIME} seconds with WeChat Pay"
        )
    try:
        ordering = None
        if all(ordering_given):
            ordering = WechatPayOrdering(
                merchant_private_key=signing.load_private_key_file(
                    s.wechatpay_merchant_private_key_file
                ),
                merchant_serial=s.wechatpay_merchant_serial,
                notify_url=notify_url(s, "/callbacks/wechatpay"),
                api_base=_api_base(s),
            )
        else:
            log.warning(
                "WeChat Pay orders are not configured: WECHAT_PAY top-ups are not offered"
                " (notifications still verify); set YIKATONG_WECHATPAY_MERCHANT_PRIVATE_KEY_FILE"
                " and _MERCHANT_SERIAL"
            )
        return WechatPayMerchantConfig(
            mchid=s.wechatpay_mchid,
            appid=s.wechatpay_appid,
            apiv3_key=s.wechatpay_apiv3_key,
            platform_keys={
                s.wechatpay_platform_public_key_id: keys.load_public_key_file(
                    s.wechatpay_platform_public_key_file
                )
            },
            ordering=ordering,
        )
    except (OSError, ValueError) as exc:
        raise SettingsError(f"WeChat Pay settings are not usable: {exc}") from exc


def alipay_config(s: Settings) -> AlipayMerchantConfig | None:
    if not (s.alipay_app_id or s.alipay_public_key_file or s.alipay_app_private_key_file):
        return None
    if not (s.alipay_app_id and s.alipay_public_key_file):
        raise SettingsError("Alipay needs YIKATONG_ALIPAY_APP_ID and _PUBLIC_KEY_FILE")
    try:
        ordering = None
        if s.alipay_app_private_key_file:
            ordering = AlipayOrdering(
                app_private_key=signing.load_private_key_file(s.alipay_app_private_key_file),
                notify_url=notify_url(s, "/callbacks/alipay"),
            )
        else:
            log.warning(
                "Alipay orders are not configured: ALIPAY top-ups are not offered"
                " (notifications still verify); set YIKATONG_ALIPAY_APP_PRIVATE_KEY_FILE"
            )
        return AlipayMerchantConfig(
            s.alipay_app_id, keys.load_public_key_file(s.alipay_public_key_file), ordering=ordering
        )
    except (OSError, ValueError) as exc:
        raise SettingsError(f"Alipay settings are not usable: {exc}") from exc
