"""Evidence to kill in milliseconds: per-minute sample aggregates for exact cheap gates, the kill's gate snapshot from
the most recent evaluation.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04

Its SQL is upgrade.sql and downgrade.sql beside this file (tools/revision.py build); no data is dropped.
"""

from chat_rollout.migration_support import frozen_sql, run_sql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(frozen_sql(__file__, "upgrade"))


def downgrade() -> None:
    run_sql(frozen_sql(__file__, "downgrade"))
