"""Terminal lifecycle (heartbeat, key rotation), terminal charges, reader taps, DESFire auths, UID limits."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('yikatong', '0010_top_up_pay_requests')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CardTapStats',
            fields=[
                ('card_id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('taps', fields.BigIntField(default=0)),
                ('authentic_taps', fields.BigIntField(default=0)),
                ('last_tap_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'card_tap_stats', 'app': 'yikatong', 'pk_attr': 'card_id', 'table_description': 'How often a physical card was presented by UID (all time), and when last.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DesfireAuth',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('terminal_id', fields.CharField(max_length=40)),
                ('uid_hash', fields.CharField(max_length=64)),
                ('rnd_a', fields.CharField(max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('used_by', fields.CharField(null=True, max_length=100)),
            ],
            options={'table': 'desfire_auths', 'app': 'yikatong', 'pk_attr': 'id', 'table_description': "The server's half of one AES mutual authentication with a DESFire card, relayed by a"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ProductTapPolicy',
            fields=[
                ('product_id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('merchant_id', fields.CharField(db_index=True, max_length=40)),
                ('technology', fields.CharField(max_length=16)),
                ('taps_per_minute', fields.IntField()),
                ('daily_amount_without_pin', fields.BigIntField()),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'product_tap_policies', 'app': 'yikatong', 'pk_attr': 'product_id', 'table_description': "What a card product's physical cards are, and the limits on taps by UID."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ReaderTap',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('terminal_id', fields.CharField(max_length=40)),
                ('idempotency_key', fields.CharField(max_length=100)),
                ('uid_hash', fields.CharField(max_length=64)),
                ('charge_id', fields.CharField(null=True, max_length=40)),
                ('payment_id', fields.CharField(null=True, max_length=40)),
                ('authentic', fields.BooleanField(default=False)),
                ('status', fields.CharField(max_length=16)),
                ('error_code', fields.CharField(null=True, max_length=40)),
                ('tapped_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'reader_taps', 'app': 'yikatong', 'unique_together': (('terminal_id', 'idempotency_key'),), 'pk_attr': 'id', 'table_description': 'One card tap reported by a reader bridge, unique per terminal and tap key: a report sent'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TerminalCharge',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('terminal_id', fields.CharField(max_length=40)),
                ('merchant_id', fields.CharField(db_index=True, max_length=40)),
                ('store_id', fields.CharField(max_length=40)),
                ('amount', fields.BigIntField()),
                ('idempotency_key', fields.CharField(max_length=100)),
                ('status', fields.CharField(max_length=12)),
                ('payment_id', fields.CharField(null=True, max_length=40)),
                ('card_id', fields.CharField(null=True, max_length=40)),
                ('last_error', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('completed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'terminal_charges', 'app': 'yikatong', 'unique_together': (('terminal_id', 'idempotency_key'),), 'indexes': [Index(fields=['terminal_id', 'status', 'created_at'])], 'pk_attr': 'id', 'table_description': 'An amount entered by staff on the tablet, waiting for a card to be tapped on the reader.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='UidDailyTotal',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=60)),
                ('card_id', fields.CharField(max_length=40)),
                ('day', fields.CharField(max_length=8)),
                ('amount', fields.BigIntField(default=0)),
            ],
            options={'table': 'uid_daily_totals', 'app': 'yikatong', 'pk_attr': 'id', 'table_description': 'How much one card paid by UID without a PIN on one China Standard Time day.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Terminal',
            name='app_version',
            field=fields.CharField(null=True, max_length=40),
        ),
        ops.AddField(
            model_name='Terminal',
            name='heartbeat_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Terminal',
            name='key_rotated_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Terminal',
            name='reader_status',
            field=fields.CharField(null=True, max_length=200),
        ),
    ]
