"""Payment-provider settings -> verified adapter configs; a half-configured channel is an error."""

from __future__ import annotations

from app.settings import Settings, SettingsError
from domain.channels.alipay import AlipayConfig
from domain.channels.wechatpay import WechatPayConfig


def wechatpay_config(s: Settings) -> WechatPayConfig | None:
    given = [
        s.wechatpay_mchid,
        s.wechatpay_appid,
        s.wechatpay_apiv3_key,
        s.wechatpay_platform_public_key_file,
        s.wechatpay_platform_public_key_id,
    ]
    if not any(given):
        return None
    if not all(given):
        raise SettingsError(
            "WeChat Pay needs all of YIKATONG_WECHATPAY_MCHID, _APPID, _APIV3_KEY,"
            " _PLATFORM_PUBLIC_KEY_FILE and _PLATFORM_PUBLIC_KEY_ID"
        )
    try:
        return WechatPayConfig.from_files(
            mchid=s.wechatpay_mchid,
            appid=s.wechatpay_appid,
            apiv3_key=s.wechatpay_apiv3_key,
            public_keys={s.wechatpay_platform_public_key_id: s.wechatpay_platform_public_key_file},
        )
    except (OSError, ValueError) as exc:
        raise SettingsError(f"WeChat Pay settings are not usable: {exc}") from exc


def alipay_config(s: Settings) -> AlipayConfig | None:
    if not s.alipay_app_id and not s.alipay_public_key_file:
        return None
    if not (s.alipay_app_id and s.alipay_public_key_file):
        raise SettingsError("Alipay needs YIKATONG_ALIPAY_APP_ID and _PUBLIC_KEY_FILE")
    try:
        return AlipayConfig.from_file(s.alipay_app_id, s.alipay_public_key_file)
    except (OSError, ValueError) as exc:
        raise SettingsError(f"Alipay settings are not usable: {exc}") from exc
