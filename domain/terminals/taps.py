"""Card taps reported by the reader bridge, and the DESFire authentication it relays.

A tap carries the bridge's idempotency key. The first report of a tap claims the terminal's
oldest waiting charge entered before the tap (a row in `reader_taps`, unique per terminal and
key) and pays it with `pay(cardUid)` under the charge's key `tch:<charge id>`. A report sent
again, even concurrently, follows the row to the same charge, and the charge's key makes the
payment a replay: a tap never pays twice, and never pays a second charge.

DESFire EV2/EV3 proof, without the master key ever leaving the server's key store:
  1. the bridge selects the application and sends AuthenticateEV2First; the card answers
     E(K, RndB);
  2. `begin_desfire_auth`: the server (key store) decrypts RndB, picks RndA and returns
     E(K, RndA || RndB') for the bridge to pass on; RndA is kept in `desfire_auths`;
  3. the card checks RndB' (it authenticates the server) and answers E(K, TI || RndA' || ...);
  4. the tap carries {authId, cardResponse}; the server decrypts it and checks RndA': only a
     card holding K, the key diversified for this UID, can have produced it. The proof is spent
     by that tap (a second tap cannot reuse it) and is bound to the terminal and the UID.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from tortoise.exceptions import IntegrityError

from domain import clock, config
from domain.actor import Actor
from domain.cards import service as cards
from domain.cards.numbers import normalize_uid, uid_hash
from domain.errors import DomainError
from domain.ids import has_prefix, new_id
from domain.ledger import errors as ledger_errors
from domain.merchants.models import Terminal
from domain.merchants.service import live_terminal
from domain.payments import service as payments
from domain.payments.models import Payment
from domain.terminals import charges, desfire, errors, keystore, uid_guard
from domain.terminals.models import DesfireAuth, ReaderTap, TerminalCharge

TAPS_PER_TERMINAL_PER_MINUTE = 120
DESFIRE_AUTHS_PER_TERMINAL_PER_MINUTE = 120
PROOF_TTL_SECONDS = 600  # a proof may wait in the bridge's queue while the API is unreachable


@dataclass(frozen=True)
class DesfireProof:
    auth_id: str
    card_response: str  # hex, the card's last AuthenticateEV2First message


@dataclass(frozen=True)
class TapResult:
    payment: Payment
    charge: TerminalCharge


@dataclass(frozen=True)
class DesfireChallenge:
    auth_id: str
    reader_response: bytes


def _uid(uid: str) -> str:
    normalized = normalize_uid(uid)
    if normalized is None:
        raise errors.invalid_uid()
    return normalized


def _unhex(value: str, field: str, length: int) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != length:
        raise errors.invalid_hex(field, length)
    return raw


async def _limit(terminal: Terminal, what: str, per_minute: int) -> None:
    if not await config.get().rate_limiter.hit(f"{what}:{terminal.id}", per_minute, 60):
        raise errors.rate_limited()


# --- DESFire ---------------------------------------------------------------------------------


def _store() -> keystore.DesfireKeyStore:
    store = keystore.get()
    if store is None:
        raise errors.desfire_not_configured()
    return store


async def begin_desfire_auth(actor: Actor, *, uid: str, card_challenge: str) -> DesfireChallenge:
    """Steps 2 of the relay: answer the card's E(K, RndB) with E(K, RndA || RndB')."""
    terminal = await live_terminal(actor)
    store = _store()
    normalized = _uid(uid)
    enc_rnd_b = _unhex(card_challenge, "cardChallenge", desfire.BLOCK)
    await _limit(terminal, "desfire-auth", DESFIRE_AUTHS_PER_TERMINAL_PER_MINUTE)
    uid_bytes = bytes.fromhex(normalized)
    rnd_b = await store.decrypt(uid_bytes, enc_rnd_b)
    rnd_a = secrets.token_bytes(desfire.BLOCK)
    response = await store.encrypt(uid_bytes, desfire.reader_response(rnd_a, rnd_b))
    now = clock.now()
    auth = await DesfireAuth.create(
        id=new_id("dfa"),
        terminal_id=terminal.id,
        uid_hash=uid_hash(normalized),
        rnd_a=rnd_a.hex(),
        created_at=now,
        expires_at=now + timedelta(seconds=PROOF_TTL_SECONDS),
    )
    return DesfireChallenge(auth_id=auth.id, reader_response=response)


async def _verify_proof(
    terminal: Terminal, normalized_uid: str, proof: DesfireProof, tap_key: str
) -> None:
    """Step 4: the card returned RndA rotated under its key. Spent by this tap only."""
    store = _store()
    card_final = _unhex(proof.card_response, "desfireProof.cardResponse", 2 * desfire.BLOCK)
    auth = (
        await DesfireAuth.get_or_none(id=proof.auth_id, terminal_id=terminal.id)
        if has_prefix(proof.auth_id, "dfa")
        else None
    )
    if auth is None or auth.uid_hash != uid_hash(normalized_uid):
        raise errors.desfire_proof_invalid()
    if auth.used_at is not None:
        if auth.used_by == tap_key:  # this tap, reported again
            return
        raise errors.desfire_proof_invalid()
    now = clock.now()
    if auth.expires_at <= now:
        raise errors.desfire_proof_invalid()
    plain = await store.decrypt(bytes.fromhex(normalized_uid), card_final)
    if not desfire.card_proved_key(bytes.fromhex(auth.rnd_a), plain):
        raise errors.desfire_proof_invalid()
    spent = await DesfireAuth.filter(id=auth.id, used_at__isnull=True).update(
        used_at=now, used_by=tap_key
    )
    if not spent and (await DesfireAuth.get(id=auth.id)).used_by != tap_key:
        raise errors.desfire_proof_invalid()


# --- taps ------------------------------------------------------------------------------------


async def reader_tap(
    actor: Actor,
    *,
    uid: str,
    idempotency_key: str,
    tap_age_ms: int = 0,
    proof: DesfireProof | None = None,
) -> TapResult:
    """A card was tapped on the terminal's reader `tap_age_ms` ago (by the bridge's clock):
    pay the terminal's oldest waiting charge with it."""
    terminal = await live_terminal(actor)
    normalized = _uid(uid)
    if not 8 <= len(idempotency_key) <= 100:
        raise ledger_errors.invalid_idempotency_key()
    digest = uid_hash(normalized)
    tap = await ReaderTap.get_or_none(terminal_id=terminal.id, idempotency_key=idempotency_key)
    if tap is not None:
        if tap.uid_hash != digest:
            raise ledger_errors.idempotency_key_reused()
        if tap.payment_id is not None:
            return await _result(tap)
    else:
        await _limit(terminal, "reader-tap", TAPS_PER_TERMINAL_PER_MINUTE)
    authentic = tap.authentic if tap is not None else False
    if proof is not None and not authentic:
        await _verify_proof(terminal, normalized, proof, idempotency_key)
        authentic = True
    if tap is None or tap.charge_id is None:
        tap = await _claim(terminal, tap, idempotency_key, digest, tap_age_ms, authentic)
    if tap.uid_hash != digest:  # a concurrent report with the same key and another card
        raise ledger_errors.idempotency_key_reused()
    if tap.payment_id is not None:
        return await _result(tap)
    assert tap.charge_id is not None
    charge = await charges.refreshed(await TerminalCharge.get(id=tap.charge_id))
    if charge.payment_id is not None:
        payment = await Payment.get(id=charge.payment_id)
        if payment.card_id == (await _card_id(normalized)):
            return await _succeeded(tap, charge, payment)  # it was this tap's payment
    if charge.status != charges.PENDING:
        await _failed(tap, "NO_PENDING_CHARGE")
        raise errors.no_pending_charge()
    try:
        with uid_guard.authentic_tap(digest if tap.authentic or authentic else None):
            payment = await payments.pay(
                actor,
                store_id=charge.store_id,
                amount=charge.amount,
                idempotency_key=charges.payment_key(charge),
                card_uid=normalized,
            )
    except DomainError as exc:
        if exc.code == "IDEMPOTENCY_KEY_REUSED":  # another card paid this charge meanwhile
            await charges.refreshed(charge)
            await _failed(tap, "NO_PENDING_CHARGE")
            raise errors.no_pending_charge() from exc
        card_id = await _card_id(normalized) if exc.code in charges.PIN_ERRORS else None
        await charges.record_refusal(charge, exc, card_id)
        await _failed(tap, exc.code)
        raise
    charge = await charges.complete(charge, payment)
    return await _succeeded(tap, charge, payment)


async def _card_id(normalized_uid: str) -> str | None:
    card = await cards.card_by_uid(normalized_uid)
    return card.id if card is not None else None


async def _claim(
    terminal: Terminal,
    tap: ReaderTap | None,
    key: str,
    digest: str,
    tap_age_ms: int,
    authentic: bool,
) -> ReaderTap:
    """Tie this tap to the charge it pays. A concurrent report of the same tap that got there
    first decides; this one follows it."""
    now = clock.now()
    tapped_at = now - timedelta(milliseconds=max(0, min(tap_age_ms, 10**9)))
    charge = await charges.oldest_pending(terminal.id, tapped_at)
    if charge is None:
        raise errors.no_pending_charge()
    if tap is None:
        try:
            return await ReaderTap.create(
                id=new_id("tap"),
                terminal_id=terminal.id,
                idempotency_key=key,
                uid_hash=digest,
                charge_id=charge.id,
                authentic=authentic,
                status="PROCESSING",
                tapped_at=tapped_at,
                created_at=now,
            )
        except IntegrityError:
            return await ReaderTap.get(terminal_id=terminal.id, idempotency_key=key)
    await ReaderTap.filter(id=tap.id, charge_id__isnull=True).update(
        charge_id=charge.id, authentic=authentic or tap.authentic, status="PROCESSING"
    )
    return await ReaderTap.get(id=tap.id)


async def _failed(tap: ReaderTap, code: str) -> None:
    await ReaderTap.filter(id=tap.id, payment_id__isnull=True).update(
        status="FAILED", error_code=code
    )


async def _succeeded(tap: ReaderTap, charge: TerminalCharge, payment: Payment) -> TapResult:
    await ReaderTap.filter(id=tap.id).update(
        status="SUCCEEDED", payment_id=payment.id, error_code=None
    )
    return TapResult(payment=payment, charge=charge)


async def _result(tap: ReaderTap) -> TapResult:
    assert tap.payment_id is not None and tap.charge_id is not None
    payment = await Payment.get(id=tap.payment_id)
    charge = await TerminalCharge.get(id=tap.charge_id)
    return TapResult(payment=payment, charge=charge)
