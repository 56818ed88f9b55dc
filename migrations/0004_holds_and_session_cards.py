"""Two-phase holds (预授权) and session cards (次卡): sessions on products, statements, payments.

The NOT NULL columns carry a database default, so tables with rows migrate and raw SQL
(yk_pay) that does not name them still inserts.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.migrations.constraints import CheckConstraint

class Migration(migrations.Migration):
    dependencies = [('yikatong', '0003_pay_function')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Hold',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('card_id', fields.CharField(db_index=True, max_length=40)),
                ('merchant_id', fields.CharField(db_index=True, max_length=40)),
                ('store_id', fields.CharField(max_length=40)),
                ('amount', fields.BigIntField()),
                ('principal_amount', fields.BigIntField()),
                ('bonus_amount', fields.BigIntField()),
                ('captured_amount', fields.BigIntField(default=0)),
                ('status', fields.CharField(max_length=12)),
                ('reference', fields.CharField(null=True, max_length=40)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('transfer_id', fields.CharField(max_length=40)),
                ('settle_transfer_id', fields.CharField(null=True, max_length=40)),
                ('payment_id', fields.CharField(null=True, max_length=40)),
                ('actor_id', fields.CharField(max_length=40)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('settled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'holds', 'app': 'yikatong', 'constraints': [CheckConstraint(check='amount > 0 AND principal_amount + bonus_amount = amount AND captured_amount >= 0 AND captured_amount <= amount', name='ck_hold_amounts')], 'pk_attr': 'id', 'table_description': 'A two-phase card payment (预授权): money set aside now, captured or released later.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='CardActivity',
            name='sessions',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='CardActivity',
            name='sessions_after',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='CardProduct',
            name='session_count',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='CardProduct',
            name='session_price',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='Payment',
            name='session_transfer_id',
            field=fields.CharField(null=True, max_length=40),
        ),
        ops.AddField(
            model_name='Payment',
            name='sessions',
            field=fields.IntField(default=0, db_default=0),
        ),
        # CreateModel in tortoise-orm 1.1.9 ignores Meta.constraints: add them explicitly.
        ops.AddConstraint(model_name='Hold', constraint=CheckConstraint(check='amount > 0 AND principal_amount + bonus_amount = amount AND captured_amount >= 0 AND captured_amount <= amount', name='ck_hold_amounts')),
    ]
