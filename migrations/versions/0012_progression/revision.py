"""Progression and approvals: stage policies (auto_promote, approvals_required), four-eyes approvals (append-only,
hash-chained), chat_run_v11_progression.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04

Its SQL is upgrade.sql and downgrade.sql beside this file (tools/revision.py build). The downgrade refuses
(SQLSTATE RO013) while approvals, stage policies, their audit rows or a changed approval_ttl exist unless confirmed:
    alembic -x drop_data=yes downgrade 0011
and always while the history holds an auto_promote row (the append-only, hash-chained history never loses a row).
"""

from chat_rollout.migration_support import confirm_drop_data, frozen_sql, run_sql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(frozen_sql(__file__, "upgrade"))


def downgrade() -> None:
    confirm_drop_data()
    run_sql(frozen_sql(__file__, "downgrade"))
