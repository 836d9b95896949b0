"""Prometheus in: metric sources (PromQL per metric and cohort, admin, audited) and the puller's provenance (the
resolved query and a digest of the raw answer per bucket).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

Its SQL is upgrade.sql and downgrade.sql beside this file (tools/revision.py build). The downgrade refuses
(SQLSTATE RO013) while metric sources, pull records or their audit rows exist unless confirmed:
    alembic -x drop_data=yes downgrade 0009
"""

from chat_rollout.migration_support import confirm_drop_data, frozen_sql, run_sql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(frozen_sql(__file__, "upgrade"))


def downgrade() -> None:
    confirm_drop_data()
    run_sql(frozen_sql(__file__, "downgrade"))
