"""Runs where production runs: no database-wide default privileges any more (revision 0004's revoke of EXECUTE from
PUBLIC on the migration role's future functions reached extensions created later, pgcrypto and pg_cron among them);
every project function still revokes EXECUTE from PUBLIC in its own file.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

Its SQL is upgrade.sql and downgrade.sql beside this file (tools/revision.py build); no data is dropped.
"""

from chat_rollout.migration_support import frozen_sql, run_sql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(frozen_sql(__file__, "upgrade"))


def downgrade() -> None:
    run_sql(frozen_sql(__file__, "downgrade"))
