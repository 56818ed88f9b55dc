"""The counter desk (柜面): shifts, counter transactions, daily closes."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

# On SQLite, tortoise 1.1.9's AddConstraint rebuilds the table and loses its other indexes,
# so 0002 and 0004 left these out there (PostgreSQL has them all). Put them back.
SQLITE_INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS uq_entry_account_version"
    " ON ledger_entries (account_id, version)",
    "CREATE INDEX IF NOT EXISTS idx_ledger_entries_transfer ON ledger_entries (transfer_id)",
    "CREATE INDEX IF NOT EXISTS idx_ledger_accounts_owner ON ledger_accounts (owner_id)",
    "CREATE INDEX IF NOT EXISTS idx_ledger_transfers_reference ON ledger_transfers (reference)",
    "CREATE INDEX IF NOT EXISTS idx_payments_card ON payments (card_id)",
    "CREATE INDEX IF NOT EXISTS idx_payments_merchant ON payments (merchant_id)",
    "CREATE INDEX IF NOT EXISTS idx_holds_card ON holds (card_id)",
    "CREATE INDEX IF NOT EXISTS idx_holds_merchant ON holds (merchant_id)",
    "CREATE INDEX IF NOT EXISTS idx_holds_expires ON holds (expires_at)",
)


async def restore_sqlite_indexes(apps, schema_editor) -> None:
    if schema_editor.client.capabilities.dialect == "sqlite":
        for statement in SQLITE_INDEXES:
            await schema_editor.client.execute_script(statement)


async def keep_indexes(apps, schema_editor) -> None:
    """Going back keeps them: they only speed up and guard what the older tables hold."""


class Migration(migrations.Migration):
    dependencies = [('yikatong', '0007_payment_codes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CounterEntry',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('merchant_id', fields.CharField(max_length=40)),
                ('store_id', fields.CharField(max_length=40)),
                ('staff_id', fields.CharField(max_length=40)),
                ('shift_id', fields.CharField(db_index=True, max_length=40)),
                ('business_day', fields.CharField(max_length=10)),
                ('kind', fields.CharField(max_length=16)),
                ('channel', fields.CharField(max_length=16)),
                ('amount', fields.BigIntField()),
                ('cash', fields.BigIntField()),
                ('reference', fields.CharField(max_length=40)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'counter_entries', 'app': 'yikatong', 'indexes': [Index(fields=['store_id', 'business_day'])], 'pk_attr': 'id', 'table_description': 'A counter transaction, written in the same database transaction as its money movement.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DailyClose',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('merchant_id', fields.CharField(max_length=40)),
                ('store_id', fields.CharField(max_length=40)),
                ('business_day', fields.CharField(max_length=10)),
                ('totals', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('expected_cash', fields.BigIntField()),
                ('closed_by', fields.CharField(max_length=40)),
                ('closed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'daily_closes', 'app': 'yikatong', 'unique_together': (('store_id', 'business_day'),), 'pk_attr': 'id', 'table_description': "日结: a store's business day, totalled and locked. Later corrections go to the next day."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Shift',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('merchant_id', fields.CharField(db_index=True, max_length=40)),
                ('store_id', fields.CharField(db_index=True, max_length=40)),
                ('staff_id', fields.CharField(db_index=True, max_length=40)),
                ('business_day', fields.CharField(max_length=10)),
                ('status', fields.CharField(max_length=8)),
                ('open_key', fields.CharField(null=True, unique=True, max_length=81)),
                ('opening_float', fields.BigIntField(default=0)),
                ('expected_cash', fields.BigIntField(null=True)),
                ('counted_cash', fields.BigIntField(null=True)),
                ('opened_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'counter_shifts', 'app': 'yikatong', 'pk_attr': 'id', 'table_description': "One staff member's shift at one store: the cash drawer they answer for."},
            bases=['Model'],
        ),
        ops.RunPython(restore_sqlite_indexes, keep_indexes),
    ]
