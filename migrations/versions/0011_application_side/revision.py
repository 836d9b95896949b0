"""The application side: assignment of users to the canary (SPEC 8), the salt a policy.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

Adds public.chat_get_v11_assignment(p_user_key), public.chat_get_v11_assignment_policy() and the policy
assignment_salt (its own table, chat_v11.assignment_policy; chat_set_v11_policy learns the key and announces a new
salt with NOTIFY chat_v11_assignment).

Its SQL is upgrade.sql and downgrade.sql beside this file (tools/revision.py build). The downgrade refuses
(SQLSTATE RO013) while the salt differs from the default unless confirmed:
    alembic -x drop_data=yes downgrade 0010
"""

from chat_rollout.migration_support import confirm_drop_data, frozen_sql, run_sql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(frozen_sql(__file__, "upgrade"))


def downgrade() -> None:
    confirm_drop_data()
    run_sql(frozen_sql(__file__, "downgrade"))
