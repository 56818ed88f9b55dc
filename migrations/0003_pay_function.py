"""The card payment as one PostgreSQL function: one round trip for the whole money movement.

It does what domain/payments/service.py does on SQLite, in the same transaction shape:
idempotency key, locked card balances, conditional split principal/bonus, transfer, entries,
payment, statement line and outbox event. Later changes: CREATE OR REPLACE in a new migration.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

PAY_FUNCTION = r"""
CREATE OR REPLACE FUNCTION yk_pay(
    p_scope text, p_key text, p_request_hash text,
    p_payment_id text, p_transfer_id text, p_activity_id text,
    p_card_id text, p_merchant_id text, p_store_id text, p_amount bigint,
    p_bonus_first boolean, p_shard int, p_actor_id text, p_now timestamptz)
RETURNS TABLE(outcome text, result_id text, from_principal bigint, from_bonus bigint,
              balance_after bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_p_acc text := p_card_id || ':CARD_PRINCIPAL';
    v_b_acc text := p_card_id || ':CARD_BONUS';
    v_r_acc text := p_merchant_id || ':MERCHANT_RECEIVABLE:' || p_shard;
    v_p bigint; v_b bigint; v_fp bigint; v_fb bigint; v_ver bigint; v_bal bigint;
    v_op text; v_hash text; v_result text;
BEGIN
    INSERT INTO idempotency_keys (scope, key, operation, request_hash, result_id, created_at, extra)
    VALUES (p_scope, p_key, 'pay', p_request_hash, p_payment_id, p_now, '{}')
    ON CONFLICT (scope, key) DO NOTHING;
    IF NOT FOUND THEN
        SELECT k.operation, k.request_hash, k.result_id INTO v_op, v_hash, v_result
        FROM idempotency_keys k WHERE k.scope = p_scope AND k.key = p_key;
        IF v_op = 'pay' AND v_hash = p_request_hash THEN
            RETURN QUERY SELECT 'REPLAY'::text, v_result, 0::bigint, 0::bigint, 0::bigint;
        ELSE
            RETURN QUERY SELECT 'KEY_REUSED'::text, NULL::text, 0::bigint, 0::bigint, 0::bigint;
        END IF;
        RETURN;
    END IF;
    -- Lock in account-id order (BONUS < PRINCIPAL < merchant accounts), as the ledger does.
    SELECT a.balance INTO v_b FROM ledger_accounts a WHERE a.id = v_b_acc FOR UPDATE;
    SELECT a.balance INTO v_p FROM ledger_accounts a WHERE a.id = v_p_acc FOR UPDATE;
    IF v_p IS NULL OR v_b IS NULL THEN
        RAISE EXCEPTION 'card % has no accounts', p_card_id;
    END IF;
    IF v_p + v_b < p_amount THEN
        -- Nothing happened: the key is free again for a retry after a top-up.
        DELETE FROM idempotency_keys k WHERE k.scope = p_scope AND k.key = p_key;
        RETURN QUERY SELECT 'INSUFFICIENT_FUNDS'::text, NULL::text, 0::bigint, 0::bigint,
                            v_p + v_b;
        RETURN;
    END IF;
    IF p_bonus_first THEN
        v_fb := LEAST(v_b, p_amount); v_fp := p_amount - v_fb;
    ELSE
        v_fp := LEAST(v_p, p_amount); v_fb := p_amount - v_fp;
    END IF;
    INSERT INTO ledger_transfers (id, kind, asset, amount, reference, reverses_id, created_at)
    VALUES (p_transfer_id, 'PAYMENT', 'FEN', p_amount, p_payment_id, NULL, p_now);
    IF v_fb > 0 THEN
        UPDATE ledger_accounts SET balance = balance - v_fb, version = version + 1
        WHERE id = v_b_acc RETURNING balance, version INTO v_b, v_ver;
        INSERT INTO ledger_entries (transfer_id, account_id, amount, balance_after, version,
                                    created_at)
        VALUES (p_transfer_id, v_b_acc, -v_fb, v_b, v_ver, p_now);
    END IF;
    IF v_fp > 0 THEN
        UPDATE ledger_accounts SET balance = balance - v_fp, version = version + 1
        WHERE id = v_p_acc RETURNING balance, version INTO v_p, v_ver;
        INSERT INTO ledger_entries (transfer_id, account_id, amount, balance_after, version,
                                    created_at)
        VALUES (p_transfer_id, v_p_acc, -v_fp, v_p, v_ver, p_now);
    END IF;
    UPDATE ledger_accounts SET balance = balance + p_amount, version = version + 1
    WHERE id = v_r_acc RETURNING balance, version INTO v_bal, v_ver;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'merchant % has no receivable account %', p_merchant_id, v_r_acc;
    END IF;
    INSERT INTO ledger_entries (transfer_id, account_id, amount, balance_after, version,
                                created_at)
    VALUES (p_transfer_id, v_r_acc, p_amount, v_bal, v_ver, p_now);
    INSERT INTO payments (id, card_id, merchant_id, store_id, amount, principal_amount,
                          bonus_amount, refunded_amount, refunded_principal, refunded_bonus,
                          status, transfer_id, actor_id, created_at)
    VALUES (p_payment_id, p_card_id, p_merchant_id, p_store_id, p_amount, v_fp, v_fb, 0, 0, 0,
            'SUCCEEDED', p_transfer_id, p_actor_id, p_now);
    INSERT INTO card_activities (id, card_id, transfer_id, kind, amount, balance_after, store_id,
                                 reference, created_at)
    VALUES (p_activity_id, p_card_id, p_transfer_id, 'PAYMENT', -p_amount, v_p + v_b,
            p_store_id, p_payment_id, p_now);
    INSERT INTO outbox_events (channel, payload, created_at)
    VALUES ('card:' || p_card_id,
            jsonb_build_object('kind', 'BALANCE_CHANGED', 'cardId', p_card_id,
                               'balance', v_p + v_b, 'delta', -p_amount, 'reason', 'PAYMENT',
                               'transactionId', p_transfer_id,
                               'at', to_char(p_now AT TIME ZONE 'UTC',
                                             'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')),
            p_now);
    RETURN QUERY SELECT 'OK'::text, p_payment_id, v_fp, v_fb, v_p + v_b;
END
$fn$;
"""


async def create_pay_function(apps, schema_editor) -> None:
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script(PAY_FUNCTION)


async def drop_pay_function(apps, schema_editor) -> None:
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script(
            "DROP FUNCTION IF EXISTS yk_pay(text, text, text, text, text, text, text, text, text,"
            " bigint, boolean, int, text, timestamptz)"
        )


class Migration(migrations.Migration):
    dependencies = [("yikatong", "0002_money_core")]

    initial = False

    operations = [ops.RunPython(create_pay_function, drop_pay_function)]
