"""Merchant-presented codes: a store's static code and dynamic order codes, in EMVCo format.

Layout (IDs in order):
  00 `01`                       payload format
  01 `11` static / `12` dynamic point of initiation
  26 Yikatong's template        00 GUID `CN.YIKATONG`, 01 store id, 02 expiry (Unix seconds,
                                dynamic only), 03 signature
  52 merchant category code     from the merchant's industry (ISO 18245)
  53 `156`                      renminbi
  54 amount in yuan             dynamic only, e.g. `23.72`
  58 `CN`, 59 merchant name (ASCII, else `YIKATONG`), 60 province in pinyin
  62 additional data            05 the order reference (dynamic only)
  64 language template          00 `ZH`, 01 merchant and store name, 02 province (Chinese)
  63 CRC

Store ids are 30 characters, longer than the 25 allowed in template 62, so the store travels in
template 26. The signature is the first 16 hex digits of HMAC-SHA256 under the app secret over the
point of initiation, store, amount, reference and expiry: a code whose amount or store was edited
fails it even with a recomputed CRC. Names and cities are display hints: the app shows the store
that `merchantCodeResolve` returns, not what the code says.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain import clock
from domain.actor import Actor, Role
from domain.cards import service as cards
from domain.codes import emvco, errors
from domain.errors import DomainError, forbidden, invalid_input
from domain.identity.secrets import keyed_hash
from domain.merchants.models import Merchant, Store
from domain.merchants.service import get_merchant, get_store

GUID = "CN.YIKATONG"
TEMPLATE = "26"
STATIC, DYNAMIC = "11", "12"
CURRENCY = "156"
FIELD = "payload"
DEFAULT_TTL = 900
MAX_TTL = 86_400
MAX_AMOUNT = 999_999_999_999  # "9999999999.99": the 13 characters EMVCo allows for an amount
_REFERENCE = re.compile(r"[A-Za-z0-9._-]{1,25}")

MCC = {
    "RETAIL": "5399",
    "CATERING": "5812",
    "BEAUTY": "7230",
    "FITNESS": "7997",
    "EDUCATION": "8299",
    "LAUNDRY": "7210",
    "HOSPITALITY": "7011",
    "CULTURE": "7999",
}
PROVINCES = {
    "11": ("BEIJING", "北京"),
    "12": ("TIANJIN", "天津"),
    "13": ("HEBEI", "河北"),
    "14": ("SHANXI", "山西"),
    "15": ("INNER MONGOLIA", "内蒙古"),
    "21": ("LIAONING", "辽宁"),
    "22": ("JILIN", "吉林"),
    "23": ("HEILONGJIANG", "黑龙江"),
    "31": ("SHANGHAI", "上海"),
    "32": ("JIANGSU", "江苏"),
    "33": ("ZHEJIANG", "浙江"),
    "34": ("ANHUI", "安徽"),
    "35": ("FUJIAN", "福建"),
    "36": ("JIANGXI", "江西"),
    "37": ("SHANDONG", "山东"),
    "41": ("HENAN", "河南"),
    "42": ("HUBEI", "湖北"),
    "43": ("HUNAN", "湖南"),
    "44": ("GUANGDONG", "广东"),
    "45": ("GUANGXI", "广西"),
    "46": ("HAINAN", "海南"),
    "50": ("CHONGQING", "重庆"),
    "51": ("SICHUAN", "四川"),
    "52": ("GUIZHOU", "贵州"),
    "53": ("YUNNAN", "云南"),
    "54": ("XIZANG", "西藏"),
    "61": ("SHAANXI", "陕西"),
    "62": ("GANSU", "甘肃"),
    "63": ("QINGHAI", "青海"),
    "64": ("NINGXIA", "宁夏"),
    "65": ("XINJIANG", "新疆"),
    "71": ("TAIWAN", "台湾"),
    "81": ("HONG KONG", "香港"),
    "82": ("MACAO", "澳门"),
}


_ZH = {
    "CRC mismatch": "校验失败，二维码已损坏",
    "signature mismatch": "签名不符，二维码可能被篡改",
    "not a Yikatong code": "不是一卡通收款码",
    "not in renminbi": "币种不是人民币",
}


@dataclass(frozen=True)
class MerchantCode:
    payload: str
    store: Store
    dynamic: bool
    amount: int | None = None
    reference: str | None = None
    expires_at: datetime | None = None


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def fen(amount: str) -> int:
    match = re.fullmatch(r"(\d{1,10})(?:\.(\d{1,2}))?", amount)
    if match is None:
        raise emvco.EmvError("amount is not a decimal number of yuan")
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))


def _signature(poi: str, store_id: str, amount: str, reference: str, expiry: str) -> str:
    message = "|".join((poi, store_id, amount, CURRENCY, reference, expiry))
    return keyed_hash(message, "merchant-code")[:16].upper()


def _ascii_name(name: str, fallback: str) -> str:
    return name[:25] if name.isascii() and name.isprintable() else fallback


def build(
    merchant: Merchant,
    store: Store,
    *,
    amount: int | None = None,
    reference: str | None = None,
    expires_at: datetime | None = None,
) -> str:
    """The payload of a store's static code, or of a dynamic code when an amount is given."""
    dynamic = amount is not None
    poi = DYNAMIC if dynamic else STATIC
    amount_text = yuan(amount) if amount is not None else ""
    expiry = str(int(expires_at.timestamp())) if dynamic and expires_at else ""
    account = emvco.tlv("00", GUID) + emvco.tlv("01", store.id)
    if expiry:
        account += emvco.tlv("02", expiry)
    account += emvco.tlv("03", _signature(poi, store.id, amount_text, reference or "", expiry))
    city, city_zh = PROVINCES.get(store.region_code[:2], ("CHINA", "中国"))
    objects = [
        ("00", "01"),
        ("01", poi),
        (TEMPLATE, account),
        ("52", MCC.get(merchant.industry, "5999")),
        ("53", CURRENCY),
    ]
    if dynamic:
        objects.append(("54", amount_text))
    objects += [("58", "CN"), ("59", _ascii_name(merchant.name, "YIKATONG")), ("60", city)]
    if reference:
        objects.append(("62", emvco.tlv("05", reference)))
    display = f"{merchant.name} {store.name}"
    language = (
        emvco.tlv("00", "ZH")
        + emvco.tlv("01", display if len(display) <= 25 else merchant.name[:25])
        + emvco.tlv("02", city_zh)
    )
    objects.append(("64", language))
    return emvco.encode(objects)


async def _store_for_staff(actor: Actor, store_id: str) -> Store:
    store = await get_store(store_id)
    if actor.role == Role.OPERATOR or actor.can_act_at_store(store.merchant_id, store.id):
        return store
    if actor.role in (Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF, Role.TERMINAL):
        raise forbidden("Not your store")
    raise forbidden()


async def static_code(actor: Actor, store_id: str) -> MerchantCode:
    """The store's printed code: the same payload every time (no amount, no expiry)."""
    store = await _store_for_staff(actor, store_id)
    merchant = await get_merchant(store.merchant_id)
    return MerchantCode(payload=build(merchant, store), store=store, dynamic=False)


async def dynamic_code(
    actor: Actor,
    store_id: str,
    amount: int,
    reference: str | None,
    expires_in_seconds: int | None = None,
) -> MerchantCode:
    """An order's code: amount, reference and expiry signed into it, nothing stored."""
    cards.check_amount(amount)
    if amount > MAX_AMOUNT:
        raise invalid_input("amount", "金额过大", "Amount too large for a QR code")
    if reference is None:
        reference = "YK" + secrets.token_hex(8).upper()
    elif _REFERENCE.fullmatch(reference) is None:
        raise invalid_input(
            "reference",
            "订单号须为 1-25 位字母、数字或 . _ -",
            "Reference: 1-25 letters, digits, '.', '_' or '-'",
        )
    ttl = DEFAULT_TTL if expires_in_seconds is None else expires_in_seconds
    if not 60 <= ttl <= MAX_TTL:
        raise invalid_input(
            "expiresInSeconds", "有效期须为 60-86400 秒", "Valid for 60 to 86400 seconds"
        )
    store = await _store_for_staff(actor, store_id)
    merchant = await get_merchant(store.merchant_id)
    # Whole seconds: the expiry travels in the code as Unix seconds.
    expires_at = (clock.now() + timedelta(seconds=ttl)).replace(microsecond=0)
    payload = build(merchant, store, amount=amount, reference=reference, expires_at=expires_at)
    return MerchantCode(
        payload=payload,
        store=store,
        dynamic=True,
        amount=amount,
        reference=reference,
        expires_at=expires_at,
    )


async def resolve(payload: str) -> MerchantCode:
    """What a scanned code asks for: the store, and for an order code its amount and reference.

    CODE_INVALID when the payload is not well-formed, its CRC does not match, it is not a
    Yikatong code, or its signature does not match; CODE_EXPIRED for an order code past its time.
    """
    payload = payload.strip()
    try:
        objects = emvco.decode(payload)
        poi = objects.get("01", STATIC)
        if poi not in (STATIC, DYNAMIC):
            raise emvco.EmvError("unknown point of initiation")
        account = _our_template(objects)
        if account is None:
            raise emvco.EmvError("not a Yikatong code")
        if objects.get("53") != CURRENCY:
            raise emvco.EmvError("not in renminbi")
        store_id, signature = account.get("01", ""), account.get("03", "")
        expiry = account.get("02", "")
        amount_text = objects.get("54", "")
        reference = emvco.template(objects["62"]).get("05", "") if "62" in objects else ""
        expected = _signature(poi, store_id, amount_text, reference, expiry)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            raise emvco.EmvError("signature mismatch")
        dynamic = poi == DYNAMIC
        if dynamic and (not amount_text or not expiry.isdigit()):
            raise emvco.EmvError("an order code carries an amount and an expiry")
        amount = fen(amount_text) if amount_text else None
    except emvco.EmvError as exc:
        raise errors.code_invalid(FIELD, str(exc), _ZH.get(str(exc), "格式错误")) from None
    expires_at = datetime.fromtimestamp(int(expiry), UTC) if expiry else None
    if expires_at is not None and expires_at <= clock.now():
        raise errors.code_expired(FIELD)
    try:
        store = await get_store(store_id)
    except DomainError:
        raise errors.code_invalid(FIELD, "unknown store", "门店不存在") from None
    return MerchantCode(
        payload=payload,
        store=store,
        dynamic=dynamic,
        amount=amount,
        reference=reference or None,
        expires_at=expires_at,
    )


def _our_template(objects: dict[str, str]) -> dict[str, str] | None:
    for tag in range(26, 52):
        value = objects.get(str(tag))
        if value is None:
            continue
        sub = emvco.template(value)
        if sub.get("00") == GUID:
            return sub
    return None
