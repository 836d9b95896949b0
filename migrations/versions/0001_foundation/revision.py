"""Foundation: schema chat_v11, roles, stages, policies, metric catalog, rollout state and history, API.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

The SQL is frozen in migrations/frozen/0001_foundation.{upgrade,downgrade}.sql.
The downgrade refuses (SQLSTATE RO013) while operator data exists unless confirmed:
    alembic -x drop_data=yes downgrade base
"""

from chat_rollout.migration_support import confirm_drop_data, frozen_sql, run_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(frozen_sql(__file__, "upgrade"))


def downgrade() -> None:
    confirm_drop_data()
    run_sql(frozen_sql(__file__, "downgrade"))
