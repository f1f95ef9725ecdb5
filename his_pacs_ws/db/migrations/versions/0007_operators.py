"""console operators, their sessions and the audit of sign-ins and admin actions

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 21:10:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('operators',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('last_sign_in_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("role IN ('viewer','admin')", name=op.f('ck_operators_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operators')),
    sa.UniqueConstraint('name', name=op.f('uq_operators_name'))
    )
    op.create_table('operator_sessions',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('operator_pk', sa.BigInteger(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('remote_addr', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['operator_pk'], ['operators.id'], name=op.f('fk_operator_sessions_operator_pk_operators'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_operator_sessions_token_hash'))
    )
    op.create_index(op.f('ix_operator_sessions_operator_pk'), 'operator_sessions', ['operator_pk'], unique=False)
    op.create_index(op.f('ix_operator_sessions_expires_at'), 'operator_sessions', ['expires_at'], unique=False)
    op.create_table('operator_audit',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('operator_name', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('remote_addr', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_audit'))
    )
    op.create_index('ix_operator_audit_operator_at', 'operator_audit', ['operator_name', 'at'], unique=False)
    op.create_index('ix_operator_audit_remote_addr_at', 'operator_audit', ['remote_addr', 'at'], unique=False)
    op.create_index('ix_operator_audit_at', 'operator_audit', ['at'], unique=False)
    # the partner-system page asks each system's last call
    op.create_index('ix_call_records_caller_at', 'call_records', ['caller', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_call_records_caller_at', table_name='call_records')
    op.drop_table('operator_audit')
    op.drop_table('operator_sessions')
    op.drop_table('operators')
