"""Payment codes (付款码): online and offline codes, offline devices, daily code totals and
failed lookups (anti-guessing)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('yikatong', '0006_escrow')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PaymentCode',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('code_hash', fields.CharField(unique=True, max_length=64)),
                ('kind', fields.CharField(max_length=8)),
                ('card_id', fields.CharField(db_index=True, max_length=40)),
                ('holder_id', fields.CharField(null=True, max_length=40)),
                ('device_id', fields.CharField(null=True, max_length=40)),
                ('step', fields.BigIntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('used_by_id', fields.CharField(null=True, max_length=40)),
            ],
            options={'table': 'payment_codes', 'app': 'yikatong', 'unique_together': (('device_id', 'step'),), 'pk_attr': 'id', 'table_description': 'A consumer-presented code: single use, short-lived, kept only as a keyed hash.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PaymentCodeDailyTotal',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=60)),
                ('card_id', fields.CharField(max_length=40)),
                ('day', fields.CharField(max_length=8)),
                ('amount', fields.BigIntField(default=0)),
            ],
            options={'table': 'payment_code_daily_totals', 'app': 'yikatong', 'pk_attr': 'id', 'table_description': "How much one card paid by code on one China Standard Time day (the rulebook's limit)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PaymentCodeDevice',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('serial', fields.IntField(unique=True)),
                ('card_id', fields.CharField(db_index=True, max_length=40)),
                ('holder_id', fields.CharField(max_length=40)),
                ('name', fields.CharField(max_length=60)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_step', fields.BigIntField(null=True)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'payment_code_devices', 'app': 'yikatong', 'pk_attr': 'id', 'table_description': 'A phone provisioned to derive offline codes for one card (TOTP, 30 s steps).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PaymentCodeFailure',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('scope', fields.CharField(max_length=60)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'payment_code_failures', 'app': 'yikatong', 'indexes': [Index(fields=['scope', 'at'])], 'pk_attr': 'id', 'table_description': 'One failed code lookup, counted per terminal or staff member and per card (guessing).'},
            bases=['Model'],
        ),
    ]
