"""WeChat Pay's identification in the stored configuration: the platform public key's id (PUB_KEY_ID_…), the
certificate mode (public_key | certificates | both) and the papay plan id, so a connector built from the database
can run either of WeChat's identification modes and sign contracts under the merchant's own template.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 23:15:00

Data: an existing wxpay row is what the code built before — the configured public key, named by its serial — so it
gets certificate_mode 'public_key' and no key id (the key is chosen by any PUB_KEY_ID_, as before) and plan_id NULL
(the sandbox's default template, as before). Down: the columns go; nothing else depended on them.
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('channel_configs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('platform_key_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('certificate_mode', sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column('plan_id', sa.Integer(), nullable=True))
    op.execute("UPDATE channel_configs SET certificate_mode = 'public_key' WHERE connector = 'wxpay'")


def downgrade() -> None:
    with op.batch_alter_table('channel_configs', schema=None) as batch_op:
        batch_op.drop_column('plan_id')
        batch_op.drop_column('certificate_mode')
        batch_op.drop_column('platform_key_id')
