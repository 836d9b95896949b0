"""Performance: the rollout state read through an inlinable invoker function over a read-only view, a metric
store partitioned by day (created ahead, a default partition, retention by dropping whole partitions), faster
ingestion and kill calls.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

The SQL is frozen in migrations/frozen/0005_performance.{upgrade,downgrade}.sql (no data is dropped).
"""

from chat_rollout.migration_support import frozen_sql, run_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(frozen_sql(__file__, "upgrade"))


def downgrade() -> None:
    run_sql(frozen_sql(__file__, "downgrade"))
