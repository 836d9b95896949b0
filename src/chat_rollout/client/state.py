"""The rollout state as a client holds it (one immutable value, from a query row or a NOTIFY payload), and the
ordering rule that says what a notification asks of a client (:func:`next_step`: apply, ignore or reload).

:class:`RolloutState` is a frozen dataclass: the client swaps one reference to a new value, so a reader on any thread
sees either the old state or the new one whole, never half of each. ``in_canary`` and ``bucket`` here are the
same functions as SQL's ``chat_get_v11_assignment`` (:mod:`chat_rollout.client.assignment`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from chat_rollout.client.assignment import DEFAULT_SALT, bucket, in_canary

log = logging.getLogger("chat_rollout.client")

#: The channel every accepted state change is announced on (SPEC 4.6), and the salt's channel (SPEC 8).
ROLLOUT_CHANNEL = "chat_v11_rollout"
ASSIGNMENT_CHANNEL = "chat_v11_assignment"

#: State and salt in one round trip (the reload and the poll). The salt's function arrived with revision 0011.
LOAD_SQL = (
    "select s.stage, s.traffic_percent, s.kill_switch, s.promotion_frozen, s.changed_at, s.version,"
    " s.changed_by, s.actor, (select p.salt from public.chat_get_v11_assignment_policy() as p) as salt"
    " from public.chat_get_v11_rollout_state() as s"
)
#: The same before revision 0011 (no salt policy yet: the default salt is the one in effect).
LOAD_SQL_NO_POLICY = (
    "select s.stage, s.traffic_percent, s.kill_switch, s.promotion_frozen, s.changed_at, s.version,"
    " s.changed_by, s.actor, null::text as salt from public.chat_get_v11_rollout_state() as s"
)


@dataclass(frozen=True)
class RolloutState:
    """The rollout state at one version, with the assignment salt in effect."""

    stage: str
    traffic_percent: Decimal
    kill_switch: bool
    promotion_frozen: bool
    version: int
    changed_at: datetime
    salt: str = DEFAULT_SALT
    changed_by: str | None = None
    actor: str | None = None

    def bucket(self, user_key: str) -> int:
        """The user's bucket (0..9999) under this state's salt."""
        return bucket(self.salt, user_key)

    def in_canary(self, user_key: str) -> bool:
        """SQL's rule: kill switch off and bucket < traffic_percent × 100."""
        if self.kill_switch:  # before hashing: a kill answers False for every key, even one that cannot be hashed
            return False
        return in_canary(self.bucket(user_key), self.traffic_percent, self.kill_switch)

    @classmethod
    def from_row(cls, row: tuple) -> RolloutState:
        """A row of :data:`LOAD_SQL`."""
        stage, percent, kill, frozen, changed_at, version, changed_by, actor, salt = row
        return cls(
            stage=stage,
            traffic_percent=Decimal(percent),
            kill_switch=bool(kill),
            promotion_frozen=bool(frozen),
            version=int(version),
            changed_at=changed_at,
            salt=DEFAULT_SALT if salt is None else salt,
            changed_by=changed_by,
            actor=actor,
        )

    def with_payload(self, payload: dict[str, Any]) -> RolloutState:
        """The next state from a ``chat_v11_rollout`` payload (parsed by :func:`parse_payload`), keeping the salt."""
        return RolloutState(
            stage=payload["stage"],
            traffic_percent=Decimal(str(payload["traffic_percent"])),
            kill_switch=bool(payload["kill_switch"]),
            promotion_frozen=bool(payload["promotion_frozen"]),
            version=int(payload["version"]),
            changed_at=datetime.fromisoformat(payload["changed_at"]),
            salt=self.salt,
            changed_by=payload.get("changed_by"),
            actor=payload.get("actor"),
        )


def parse_payload(text: str) -> dict[str, Any]:
    """A ``chat_v11_rollout`` payload: JSON with at least version, stage, traffic_percent, kill_switch,
    promotion_frozen and changed_at; ValueError when it is not one (the client then reloads instead)."""
    try:
        payload = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise ValueError(f"payload is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ValueError("payload is not a JSON object")
    missing = [
        k
        for k in ("version", "stage", "traffic_percent", "kill_switch", "promotion_frozen", "changed_at")
        if k not in payload
    ]
    if missing or not isinstance(payload["version"], int):
        raise ValueError(f"payload lacks {', '.join(missing) or 'an integer version'}")
    if payload["traffic_percent"] is None or not isinstance(payload["kill_switch"], bool):
        raise ValueError("payload has no traffic_percent or no boolean kill_switch")
    return payload


def next_step(held: RolloutState | None, notify: psycopg.Notify) -> tuple[str, Any]:
    """What one notification asks of a client holding ``held``: the ordering rule.

    ``("apply", new_state)`` for the next version (``held.version + 1``); ``("ignore", None)`` for a version already
    held (a duplicate or a late one) or another channel; ``("reload", reason)`` for a gap (a newer version: something
    was missed), an unreadable payload (reason ``gap`` too) or a salt change (reason ``salt``).
    """
    if notify.channel == ASSIGNMENT_CHANNEL:
        return "reload", "salt"
    if notify.channel != ROLLOUT_CHANNEL:
        return "ignore", None
    try:
        payload = parse_payload(notify.payload)
        version = payload["version"]
        if held is not None and version <= held.version:
            return "ignore", None
        if held is None or version > held.version + 1:
            return "reload", "gap"
        return "apply", held.with_payload(payload)
    except (ValueError, TypeError, ArithmeticError) as exc:
        log.warning("chat-rollout client: unreadable %s payload (%s): reloading", ROLLOUT_CHANNEL, exc)
        return "reload", "gap"
