"""Operator safety: a kill that never hangs and names its blocker, calls that never surprise (an action column,
NOTICEs, no resume while a P0 incident is unresolved), one open incident at a time, close re-checks, bounded
settings, maintenance in its own short transactions under a lock only the project's roles can take.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

The SQL is frozen in migrations/frozen/0006_operator_safety.{upgrade,downgrade}.sql (no data is dropped).
"""

from chat_rollout.migration_support import frozen_sql, run_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(frozen_sql(__file__, "upgrade"))


def downgrade() -> None:
    run_sql(frozen_sql(__file__, "downgrade"))
