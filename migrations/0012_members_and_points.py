"""Members, tiers, points and the redemption catalogue (issue 6).

On PostgreSQL the tables also get CHECK constraints (on SQLite, tortoise 1.1.9's AddConstraint
would rebuild the tables and drop their indexes; `yikatong ledger verify` checks the same there).
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

CHECKS = (
    ("points_lots", "ck_points_lot_amounts",
     "remaining >= 0 AND expired >= 0 AND remaining + expired <= points"),
    ("rewards", "ck_reward_stock", "stock IS NULL OR stock >= 0"),
    ("points_accruals", "ck_points_accrual_clawback",
     "clawed_points >= 0 AND clawed_points <= GREATEST(points, 0)"
     " AND refunded_eligible >= 0 AND refunded_eligible <= GREATEST(eligible, 0)"),
)


async def add_checks(apps, schema_editor) -> None:
    if schema_editor.client.capabilities.dialect == "postgres":
        for table, name, check in CHECKS:
            await schema_editor.client.execute_script(
                f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({check})"
            )


async def drop_checks(apps, schema_editor) -> None:
    if schema_editor.client.capabilities.dialect == "postgres":
        for table, name, _ in CHECKS:
            await schema_editor.client.execute_script(
                f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}"
            )


class Migration(migrations.Migration):
    dependencies = [('yikatong', '0011_terminals_and_reader_taps')]

    initial = False

    operations = [
        ops.CreateModel(
            name='MemberProfile',
            fields=[
                ('user_id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('nickname', fields.CharField(null=True, max_length=40)),
                ('birthday', fields.DateField(null=True)),
                ('real_name_encrypted', fields.TextField(null=True, unique=False)),
                ('real_name_masked', fields.CharField(null=True, max_length=40)),
                ('id_number_encrypted', fields.TextField(null=True, unique=False)),
                ('id_number_masked', fields.CharField(null=True, max_length=24)),
                ('personal_data_consent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'member_profiles', 'app': 'yikatong', 'pk_attr': 'user_id', 'table_description': "A consumer's own data, shared by their memberships."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Membership',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('merchant_id', fields.CharField(max_length=40)),
                ('user_id', fields.CharField(db_index=True, max_length=40)),
                ('source', fields.CharField(max_length=12)),
                ('tier_id', fields.CharField(null=True, max_length=40)),
                ('tier_until', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('total_spend', fields.BigIntField(default=0)),
                ('visits', fields.IntField(default=0)),
                ('last_visit_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('first_purchase_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('marketing_consent', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'memberships', 'app': 'yikatong', 'unique_together': (('merchant_id', 'user_id'),), 'indexes': [Index(fields=['merchant_id', 'id'])], 'pk_attr': 'id', 'table_description': "A consumer's membership of one merchant's programme."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PointsAccrual',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('source_id', fields.CharField(unique=True, max_length=40)),
                ('kind', fields.CharField(max_length=12)),
                ('membership_id', fields.CharField(max_length=40)),
                ('merchant_id', fields.CharField(max_length=40)),
                ('payment_id', fields.CharField(null=True, max_length=40)),
                ('store_id', fields.CharField(null=True, max_length=40)),
                ('amount', fields.BigIntField(default=0)),
                ('eligible', fields.BigIntField(default=0)),
                ('points', fields.BigIntField(default=0)),
                ('refunded_eligible', fields.BigIntField(default=0)),
                ('clawed_points', fields.BigIntField(default=0)),
                ('debt_repaid', fields.BigIntField(default=0)),
                ('debt_created', fields.BigIntField(default=0)),
                ('fired', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('lot_id', fields.CharField(null=True, max_length=40)),
                ('transfer_id', fields.CharField(null=True, max_length=40)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'points_accruals', 'app': 'yikatong', 'indexes': [Index(fields=['membership_id', 'occurred_at'])], 'pk_attr': 'id', 'table_description': "What one payment, refund or sign-up did to a membership's points, exactly once."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PointsActivity',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('membership_id', fields.CharField(max_length=40)),
                ('kind', fields.CharField(max_length=12)),
                ('points', fields.BigIntField()),
                ('available_after', fields.BigIntField()),
                ('pending_after', fields.BigIntField()),
                ('debt_after', fields.BigIntField()),
                ('reference', fields.CharField(null=True, max_length=40)),
                ('transfer_id', fields.CharField(null=True, max_length=40)),
                ('detail', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'points_activities', 'app': 'yikatong', 'indexes': [Index(fields=['membership_id', 'id'])], 'pk_attr': 'id', 'table_description': "One line of a member's points statement, with the rules that fired for earnings."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PointsJobCursor',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=20)),
                ('position', fields.CharField(max_length=40)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'points_job_cursors', 'app': 'yikatong', 'pk_attr': 'name', 'table_description': 'How far the accrual job has looked: ids below `position` are never scanned again.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PointsLot',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('membership_id', fields.CharField(db_index=True, max_length=40)),
                ('source', fields.CharField(max_length=12)),
                ('reference', fields.CharField(max_length=40)),
                ('points', fields.BigIntField()),
                ('remaining', fields.BigIntField()),
                ('expired', fields.BigIntField(default=0)),
                ('status', fields.CharField(max_length=10)),
                ('earned_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('available_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'points_lots', 'app': 'yikatong', 'indexes': [Index(fields=['status', 'available_at']), Index(fields=['status', 'expires_at'])], 'pk_attr': 'id', 'table_description': 'Points earned together, with one maturity and one expiry, used oldest first.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PointsProgramme',
            fields=[
                ('merchant_id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('pending_days', fields.IntField(default=7)),
                ('expiry_mode', fields.CharField(default='END_OF_NEXT_YEAR', max_length=20)),
                ('expiry_days', fields.IntField(null=True)),
                ('earn_on_bonus', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'points_programmes', 'app': 'yikatong', 'pk_attr': 'merchant_id', 'table_description': "A merchant's membership programme: the return window and how earned points expire."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PointsRule',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('merchant_id', fields.CharField(db_index=True, max_length=40)),
                ('name', fields.CharField(max_length=60)),
                ('kind', fields.CharField(max_length=16)),
                ('points_per_yuan', fields.IntField(default=0)),
                ('bonus_points', fields.IntField(default=0)),
                ('min_amount', fields.BigIntField(null=True)),
                ('store_ids', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('tier_ids', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('weekdays', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('minute_from', fields.IntField(null=True)),
                ('minute_to', fields.IntField(null=True)),
                ('starts_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('birthday_month_only', fields.BooleanField(default=False)),
                ('daily_cap', fields.IntField(null=True)),
                ('apply_tier_multiplier', fields.BooleanField(default=True)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'points_rules', 'app': 'yikatong', 'pk_attr': 'id', 'table_description': 'An earning rule as data (see domain/members/rules.py for what each field means).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Redemption',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('reward_id', fields.CharField(max_length=40)),
                ('membership_id', fields.CharField(max_length=40)),
                ('merchant_id', fields.CharField(max_length=40)),
                ('points', fields.BigIntField()),
                ('status', fields.CharField(max_length=12)),
                ('transfer_id', fields.CharField(max_length=40)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'redemptions', 'app': 'yikatong', 'indexes': [Index(fields=['membership_id', 'reward_id'])], 'pk_attr': 'id', 'table_description': '积分兑换: points, stock and this row commit together.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Reward',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('merchant_id', fields.CharField(db_index=True, max_length=40)),
                ('name', fields.CharField(max_length=60)),
                ('description', fields.CharField(null=True, max_length=500)),
                ('points_cost', fields.BigIntField()),
                ('stock', fields.IntField(null=True)),
                ('redeemed_count', fields.IntField(default=0)),
                ('per_member_limit', fields.IntField(null=True)),
                ('valid_from', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('valid_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'rewards', 'app': 'yikatong', 'pk_attr': 'id', 'table_description': 'A catalogue item priced in points (gift now, coupons later).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Tier',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('merchant_id', fields.CharField(db_index=True, max_length=40)),
                ('name', fields.CharField(max_length=40)),
                ('rank', fields.IntField()),
                ('min_spend_12m', fields.BigIntField(null=True)),
                ('min_points_12m', fields.BigIntField(null=True)),
                ('discount_percent', fields.IntField(default=0)),
                ('points_multiplier_percent', fields.IntField(default=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'tiers', 'app': 'yikatong', 'unique_together': (('merchant_id', 'rank'),), 'pk_attr': 'id', 'table_description': 'A level of a programme: reached by rolling 12-month spend or points earned.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TierChange',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('membership_id', fields.CharField(db_index=True, max_length=40)),
                ('from_tier_id', fields.CharField(null=True, max_length=40)),
                ('to_tier_id', fields.CharField(null=True, max_length=40)),
                ('reason', fields.CharField(max_length=16)),
                ('note', fields.CharField(null=True, max_length=200)),
                ('actor_id', fields.CharField(null=True, max_length=40)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'tier_changes', 'app': 'yikatong', 'pk_attr': 'id', 'table_description': "History of a membership's tier: upgrades, period-end reviews, manual assignments."},
            bases=['Model'],
        ),
        ops.RunPython(add_checks, drop_checks),
    ]
