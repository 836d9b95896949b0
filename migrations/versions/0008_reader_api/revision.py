"""The reader API the incident report needs: the metric rules, the stored samples of a time range and an incident's
postmortem, for readers (the report no longer needs the owner).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

Its SQL is upgrade.sql and downgrade.sql beside this file (tools/revision.py build); no data is dropped.
"""

from chat_rollout.migration_support import frozen_sql, run_sql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(frozen_sql(__file__, "upgrade"))


def downgrade() -> None:
    run_sql(frozen_sql(__file__, "downgrade"))
