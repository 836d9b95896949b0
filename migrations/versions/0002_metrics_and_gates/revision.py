"""Metrics and release gates: metric samples, ingestion with automatic kill, real gate checks, guardrails.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

The SQL is frozen in migrations/frozen/0002_metrics_and_gates.{upgrade,downgrade}.sql.
The downgrade restores the 0001 functions and refuses (SQLSTATE RO013) while metric samples exist unless
confirmed: alembic -x drop_data=yes downgrade 0001
"""

from chat_rollout.migration_support import confirm_drop_data, frozen_sql, run_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(frozen_sql(__file__, "upgrade"))


def downgrade() -> None:
    confirm_drop_data()
    run_sql(frozen_sql(__file__, "downgrade"))
