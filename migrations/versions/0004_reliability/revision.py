"""Reliability: functions created later not executable by PUBLIC, writes refused on a hot standby with
words (25006) and committed durably everywhere, one
lock order (state row, then incident rows) so racing writers declare one incident, ingestion in key order
(no deadlock), a state call whose meaning changed while it waited is refused (RO017), RO010 names what a
queued DDL waits behind.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

The SQL is frozen in migrations/frozen/0004_reliability.{upgrade,downgrade}.sql (no data is dropped).
"""

from chat_rollout.migration_support import frozen_sql, run_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(frozen_sql(__file__, "upgrade"))


def downgrade() -> None:
    run_sql(frozen_sql(__file__, "downgrade"))
