"""Incidents: severity, roles, UTC timeline, snapshots, checklist, exit criteria, postmortem; the guardrail
opens or escalates a P0 incident; gates and history name the open incident.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

The SQL is frozen in migrations/frozen/0003_incidents.{upgrade,downgrade}.sql.
The downgrade refuses (SQLSTATE RO013) while incidents exist unless confirmed:
    alembic -x drop_data=yes downgrade 0002
"""

from chat_rollout.migration_support import confirm_drop_data, frozen_sql, run_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(frozen_sql(__file__, "upgrade"))


def downgrade() -> None:
    confirm_drop_data()
    run_sql(frozen_sql(__file__, "downgrade"))
