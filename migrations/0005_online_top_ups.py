"""Online top-ups: expiry, the provider's trade number, why one failed."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('yikatong', '0004_holds_and_session_cards')]

    initial = False

    operations = [
        ops.AlterModelOptions(
            name='TopUp',
            options={'table': 'top_ups', 'app': 'yikatong', 'pk_attr': 'id', 'table_description': "充值. Counter cash succeeds at once; online channels stay PENDING until the provider's"},
        ),
        ops.AddField(
            model_name='TopUp',
            name='expires_at',
            field=fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='TopUp',
            name='failure_reason',
            field=fields.CharField(null=True, max_length=200),
        ),
        ops.AddField(
            model_name='TopUp',
            name='provider_trade_no',
            field=fields.CharField(null=True, max_length=64),
        ),
    ]
