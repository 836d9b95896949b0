"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Its SQL is upgrade.sql and downgrade.sql beside this file (tools/revision.py build): it never reads the live
sql/ tree, so history cannot change under a deployed database. Start a revision with tools/revision.py new, which
makes the folder; `alembic revision` would write a single file.
"""

from chat_rollout.migration_support import frozen_sql, run_sql

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(frozen_sql(__file__, "upgrade"))


def downgrade() -> None:
    run_sql(frozen_sql(__file__, "downgrade"))
