"""Card cancellations with refund of the remaining principal (退卡)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('yikatong', '0008_counter_desk')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CardCancellation',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('card_id', fields.CharField(db_index=True, max_length=40)),
                ('merchant_id', fields.CharField(db_index=True, max_length=40)),
                ('open_key', fields.CharField(null=True, unique=True, max_length=40)),
                ('status', fields.CharField(max_length=12)),
                ('reason', fields.CharField(max_length=200)),
                ('cooling_off', fields.BooleanField(default=False)),
                ('pay_by', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('payout_method', fields.CharField(max_length=16)),
                ('bank_account_last4', fields.CharField(null=True, max_length=4)),
                ('bank_account_encrypted', fields.TextField(null=True, unique=False)),
                ('account_name', fields.CharField(null=True, max_length=50)),
                ('principal_refunded', fields.BigIntField(default=0)),
                ('bonus_forfeited', fields.BigIntField(default=0)),
                ('sessions_forfeited', fields.IntField(default=0)),
                ('transfer_id', fields.CharField(null=True, max_length=40)),
                ('requested_by', fields.CharField(max_length=40)),
                ('decided_by', fields.CharField(null=True, max_length=40)),
                ('decision_note', fields.CharField(null=True, max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'card_cancellations', 'app': 'yikatong', 'pk_attr': 'id', 'table_description': '退卡: a request to cancel a card and pay its remaining principal back, decided once.'},
            bases=['Model'],
        ),
    ]
