"""Trust: a verifier that names every trace it can see (gaps, broken links, NULLs, state against history), anchors
outside the database (the head hash in every notification and in status; verify against a known anchor), incremental
verification from checkpoints, listeners that treat a notification as a hint, input refused for the right reason.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

The SQL is frozen in migrations/frozen/0007_trust.{upgrade,downgrade}.sql (no data is dropped).
"""

from chat_rollout.migration_support import frozen_sql, run_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(frozen_sql(__file__, "upgrade"))


def downgrade() -> None:
    run_sql(frozen_sql(__file__, "downgrade"))
