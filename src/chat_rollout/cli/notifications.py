"""What ``chat-rollout watch`` does with a notification on chat_v11_rollout: treat it as a hint, never as news.

Any login can NOTIFY the channel. A payload is printed only when the state and the history, read in one snapshot,
confirm it: the version only grows, the hash chain links to the head seen before, the payload matches the history row.
"""

from __future__ import annotations

import json

import psycopg
from psycopg.rows import dict_row

_PAYLOAD_FIELDS = {
    "version": "version",
    "action": "action",
    "stage": "to_stage",
    "kill_switch": "to_kill_switch",
    "promotion_frozen": "promotion_frozen",
    "changed_by": "changed_by",
    "actor": "actor",
    "hash": "hash",
}


def history_rows(conn: psycopg.Connection, newer_than: int, head_version: int) -> list[dict]:
    """History rows with newer_than < version <= head_version, oldest first (through the reader's function)."""
    if head_version <= newer_than:
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "select * from public.chat_get_v11_rollout_history(%s)", (head_version - newer_than,)
        ).fetchall()
    return sorted((r for r in rows if newer_than < r["version"] <= head_version), key=lambda r: r["version"])


def check_notification(
    conn: psycopg.Connection, payload_text: str, last: dict
) -> tuple[dict | None, str | None, list[dict]]:
    """A notification is a hint: re-read the state and the history and check the payload against them.

    Returns (the verified change as the database says it, why it was not verified, the new rows checked).
    ``last`` holds the version and hash seen last; it advances only along a chain that links to it.
    """
    try:
        payload = json.loads(payload_text)
        version = int(payload["version"])
    except (ValueError, TypeError, KeyError):
        return None, "not a rollout payload", []
    if not isinstance(payload, dict):
        return None, "not a rollout payload", []
    # the state and the history from one snapshot (the reader is REPEATABLE READ): a change committed between the
    # two reads must not look like a broken chain
    with conn.transaction():
        return _check_against_snapshot(conn, payload, version, last)


def _check_against_snapshot(
    conn: psycopg.Connection, payload: dict, version: int, last: dict
) -> tuple[dict | None, str | None, list[dict]]:
    with conn.cursor(row_factory=dict_row) as cur:
        state = cur.execute(
            "select stage, kill_switch, promotion_frozen, version, traffic_percent "
            "from public.chat_get_v11_rollout_state()"
        ).fetchone()
    if version <= last["version"]:
        return None, f"version {version} is not newer than version {last['version']} already seen", []
    if version > state["version"]:
        return None, f"version {version} is ahead of the database (version {state['version']})", []
    rows = history_rows(conn, last["version"], state["version"])
    if not rows or rows[0]["version"] != last["version"] + 1 or rows[0]["prev_hash"] != last["hash"]:
        return None, f"the history does not continue the chain seen at version {last['version']}", []
    for prev, row in zip(rows, rows[1:], strict=False):
        if row["version"] != prev["version"] + 1 or row["prev_hash"] != prev["hash"]:
            return None, f"the history chain breaks at version {row['version']}", []
    row = next(r for r in rows if r["version"] == version)
    for key, column in _PAYLOAD_FIELDS.items():
        if key in payload and payload[key] != row[column]:
            return None, f"{key} {payload[key]!r} is not what history version {version} says", []
    if "hash" not in payload:
        return None, "the payload carries no head hash", []
    change = {
        "version": row["version"],
        "action": row["action"],
        "stage": row["to_stage"],
        "kill_switch": row["to_kill_switch"],
        "promotion_frozen": row["promotion_frozen"],
        "changed_at": row["changed_at"].isoformat(),
        "changed_by": row["changed_by"],
        "actor": row["actor"],
        "hash": row["hash"],
    }
    if row["version"] == state["version"]:
        change["traffic_percent"] = float(state["traffic_percent"])
    return change, None, [r for r in rows if r["version"] <= version]
