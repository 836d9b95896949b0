"""The group roles, the test logins, the tables and running SQL as a role."""

from __future__ import annotations

import psycopg

READER, OPERATOR, INGEST, ADMIN = (
    "chat_rollout_reader",
    "chat_rollout_operator",
    "chat_rollout_ingest",
    "chat_rollout_admin",
)
NOBODY = "chat_test_nobody"

#: The logins the migrated template creates (conftest.py) and the group role each is granted (None: no grant).
TEST_ROLES = {
    "chat_test_reader": READER,
    "chat_test_operator": OPERATOR,
    "chat_test_ingest": INGEST,
    "chat_test_admin": ADMIN,
    NOBODY: None,
}

ROLES = [READER, OPERATOR, INGEST, ADMIN, NOBODY]
TABLES = [
    "stage", "policy", "metric", "rollout_state", "rollout_history", "config_change", "metric_sample", "incident",
    "incident_entry",
]


def as_role(conn, role: str, sql: str) -> str | None:
    """Run sql as role; the SQLSTATE of a refusal, or None when it ran."""
    try:
        with conn.transaction():
            conn.execute(f"set local role {role}")
            conn.execute(sql)
    except psycopg.Error as exc:
        return exc.diag.sqlstate
    return None
