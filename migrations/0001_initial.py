from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='AuditRecord',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor_id', fields.CharField(null=True, max_length=40)),
                ('actor_role', fields.CharField(null=True, max_length=20)),
                ('action', fields.CharField(max_length=64)),
                ('target', fields.CharField(null=True, max_length=64)),
                ('ip', fields.CharField(null=True, max_length=64)),
                ('request_id', fields.CharField(null=True, max_length=64)),
                ('details', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('prev_hash', fields.CharField(max_length=64)),
                ('hash', fields.CharField(unique=True, max_length=64)),
            ],
            options={'table': 'audit_records', 'app': 'yikatong', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Merchant',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('name', fields.CharField(max_length=100)),
                ('region_code', fields.CharField(db_index=True, max_length=12)),
                ('industry', fields.CharField(max_length=40)),
                ('issuer_class', fields.CharField(null=True, max_length=40)),
                ('status', fields.CharField(default='ACTIVE', max_length=20)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'merchants', 'app': 'yikatong', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OtpChallenge',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('phone', fields.CharField(db_index=True, max_length=20)),
                ('code_hash', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField(default=0)),
                ('consumed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('ip', fields.CharField(null=True, max_length=64)),
            ],
            options={'table': 'otp_challenges', 'app': 'yikatong', 'pk_attr': 'id', 'table_description': 'A 6-digit code sent to a phone: 5 minutes, 5 attempts, single use.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OutboxEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('channel', fields.CharField(max_length=120)),
                ('payload', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('published_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'outbox_events', 'app': 'yikatong', 'indexes': [Index(fields=['published_at', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RefreshToken',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('user_id', fields.CharField(db_index=True, max_length=40)),
                ('family_id', fields.CharField(db_index=True, max_length=40)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'refresh_tokens', 'app': 'yikatong', 'pk_attr': 'id', 'table_description': 'One refresh token of a rotating family (only the hash is stored).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Store',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('merchant_id', fields.CharField(db_index=True, max_length=40)),
                ('name', fields.CharField(max_length=100)),
                ('region_code', fields.CharField(max_length=12)),
                ('status', fields.CharField(default='OPEN', max_length=20)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'stores', 'app': 'yikatong', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Terminal',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('merchant_id', fields.CharField(db_index=True, max_length=40)),
                ('store_id', fields.CharField(db_index=True, max_length=40)),
                ('name', fields.CharField(max_length=100)),
                ('key_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'terminals', 'app': 'yikatong', 'pk_attr': 'id', 'table_description': 'A POS tablet or card reader of one store, authenticated by a key stored hashed.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('role', fields.CharField(max_length=20)),
                ('username', fields.CharField(null=True, unique=True, max_length=64)),
                ('password_hash', fields.CharField(null=True, max_length=200)),
                ('phone', fields.CharField(null=True, unique=True, max_length=20)),
                ('merchant_id', fields.CharField(null=True, db_index=True, max_length=40)),
                ('store_ids', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('organisation', fields.CharField(null=True, max_length=100)),
                ('region_code', fields.CharField(null=True, max_length=12)),
                ('is_active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'users', 'app': 'yikatong', 'pk_attr': 'id', 'table_description': 'A person who logs in: consumer (by phone), merchant staff, operator, custodian, regulator.'},
            bases=['Model'],
        ),
    ]
