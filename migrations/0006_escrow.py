"""Escrow custody (资金存管): escrow accounts and daily checks."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.migrations.constraints import UniqueConstraint

async def open_escrow_accounts(apps, schema_editor) -> None:
    """Merchants created before escrow custody get their escrow and operating accounts."""
    from datetime import UTC, datetime

    client = schema_editor.client
    postgres = client.capabilities.dialect == "postgres"
    mark = (lambda n: f"${n}") if postgres else (lambda n: "?")
    _, rows = await client.execute_query("SELECT id FROM merchants")
    now = datetime.now(UTC)
    for row in rows:
        for kind in ("MERCHANT_ESCROW", "MERCHANT_OPERATING"):
            for shard in range(8):
                await client.execute_query(
                    "INSERT INTO ledger_accounts (id, owner_id, kind, asset, balance, version,"
                    f" allow_negative, created_at) VALUES ({mark(1)}, {mark(2)}, {mark(3)}, 'FEN',"
                    f" 0, 0, {mark(4)}, {mark(5)}) ON CONFLICT (id) DO NOTHING",
                    [f"{row['id']}:{kind}:{shard}", row["id"], kind, True, now],
                )


async def close_nothing(apps, schema_editor) -> None:
    """Going back leaves the (empty) accounts: old code never reads them."""


class Migration(migrations.Migration):
    dependencies = [('yikatong', '0005_online_top_ups')]

    initial = False

    operations = [
        ops.CreateModel(
            name='EscrowAccount',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('merchant_id', fields.CharField(unique=True, max_length=40)),
                ('custodian', fields.CharField(db_index=True, max_length=100)),
                ('bank_account_last4', fields.CharField(max_length=4)),
                ('policy', fields.CharField(max_length=16)),
                ('ratio_percent', fields.IntField(null=True)),
                ('opened_by', fields.CharField(max_length=40)),
                ('opened_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'escrow_accounts', 'app': 'yikatong', 'pk_attr': 'id', 'table_description': '存管账户: the custodian (an organisation whose CUSTODIAN users see it) and the policy.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='EscrowCheck',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('merchant_id', fields.CharField(db_index=True, max_length=40)),
                ('day', fields.CharField(max_length=10)),
                ('outstanding', fields.BigIntField()),
                ('required', fields.BigIntField()),
                ('held', fields.BigIntField()),
                ('short', fields.BooleanField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'escrow_checks', 'app': 'yikatong', 'constraints': [UniqueConstraint(fields=('merchant_id', 'day'), name='uq_escrow_check_merchant_day')], 'pk_attr': 'id', 'table_description': "One merchant's daily check: the prepaid balance owed, what must be held, what is held."},
            bases=['Model'],
        ),
        # CreateModel in tortoise-orm 1.1.9 ignores Meta.constraints: add them explicitly.
        ops.AddConstraint(model_name='EscrowCheck', constraint=UniqueConstraint(fields=('merchant_id', 'day'), name='uq_escrow_check_merchant_day')),
        ops.RunPython(open_escrow_accounts, close_nothing),
    ]
