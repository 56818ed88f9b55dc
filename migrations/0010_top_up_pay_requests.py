"""Online top-ups: WeChat Pay's prepay_id, so the app's pay parameters can be rebuilt."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('yikatong', '0009_card_cancellations')]

    initial = False

    operations = [
        ops.AddField(
            model_name='TopUp',
            name='prepay_id',
            field=fields.CharField(null=True, max_length=64),
        ),
    ]
