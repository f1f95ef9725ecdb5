"""the outbox notifies deliverers only when some system has a callback, saying what it is

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 00:10:00
"""

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every changing call inserts outbox events; with no callback set anywhere nobody can
    # receive them, and waking the deliverers would cost them a fan-out per commit. They are
    # marked fanned out by the deliverers' poll instead (one UPDATE a second). The payload
    # 'event' wakes only the fan-out; the fan-out's own 'deliveries' wakes the senders.
    op.execute("""
        CREATE OR REPLACE FUNCTION his_pacs_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM callback_endpoints) THEN
                PERFORM pg_notify('his_pacs_outbox', 'event');
            END IF;
            RETURN NULL;
        END $$
    """)


def downgrade() -> None:
    op.execute("""
        CREATE OR REPLACE FUNCTION his_pacs_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('his_pacs_outbox', '');
            RETURN NULL;
        END $$
    """)
