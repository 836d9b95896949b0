"""State calls queue on an advisory lock and lock the state row with their top transaction; history chain by its key.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05

Its SQL is upgrade.sql and downgrade.sql beside this file (tools/revision.py build); no data is dropped.
"""

from chat_rollout.migration_support import frozen_sql, run_sql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(frozen_sql(__file__, "upgrade"))


def downgrade() -> None:
    run_sql(frozen_sql(__file__, "downgrade"))
