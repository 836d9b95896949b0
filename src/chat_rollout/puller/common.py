"""The puller's shared vocabulary: its logger, constants, errors, the records of a cycle and the time helpers."""

from __future__ import annotations

import datetime as dt
import logging
import math
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import psycopg

from ..listen import parse_listen  # noqa: F401 -- re-exported by chat_rollout.puller

log = logging.getLogger("chat_rollout.puller")

BUCKET = dt.timedelta(seconds=10)
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
EXCERPT_CHARS = 2000
FIELDS = ("numerator", "denominator", "value")
COUNT_FIELDS = ("numerator", "denominator")
#: The reasons of chat_rollout_pull_errors_total.
REASONS = ("transport", "timeout", "http", "bad_answer", "multiple_series", "bad_value", "database", "alertmanager")
#: The severities whose active alerts are a Go/No-Go blocker (playbook section 9).
ALERT_SEVERITIES = ("P0", "P1")
ALERT_ERROR_CHARS = 2000


class PullError(Exception):
    """A query that gave no usable answer: ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TooManyErrors(Exception):
    """:meth:`Puller.run` gave up: ``max_consecutive_errors`` cycles in a row saw an error."""


@dataclass(frozen=True)
class Source:
    metric: str
    cohort: str
    kind: str
    exprs: dict[str, str]  # field -> PromQL


@dataclass
class Answer:
    """One field of one source for one bucket: what was asked and what came back."""

    field: str
    query: str
    query_time: dt.datetime
    outcome: str  # value, empty, nan, multiple_series
    value: float | None
    answer_sha256: str
    answer_excerpt: str


@dataclass
class CycleReport:
    """What one :meth:`Puller.pull_once` did."""

    last_complete: dt.datetime
    buckets_written: list[dt.datetime] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    pulls: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    alerts: list[dict] | None = None  # the active P0/P1 alerts written (None: no Alertmanager, or it failed)


def align(moment: dt.datetime) -> dt.datetime:
    """The start of the 10-second bucket (UTC) holding ``moment``."""
    return EPOCH + (moment - EPOCH) // BUCKET * BUCKET


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def round_count(value: float) -> int:
    """A count from a PromQL value: the nearest whole number, halves up (increase() extrapolates: 5.5 -> 6)."""
    return math.floor(value + 0.5)


def parse_duration(text: str) -> dt.timedelta:
    """``90s``, ``10m``, ``1h``, ``1h30m`` or plain seconds as a timedelta; ValueError otherwise."""
    text = text.strip()
    if text.replace(".", "", 1).isdigit():
        return dt.timedelta(seconds=float(text))
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    total, number = 0.0, ""
    for char in text:
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            total += float(number) * units[char]
            number = ""
        else:
            raise ValueError(f"{text!r} is not a duration such as 90s, 10m or 1h")
    if number or total <= 0:
        raise ValueError(f"{text!r} is not a duration such as 90s, 10m or 1h")
    return dt.timedelta(seconds=total)


def http_get(url: str, timeout: float, shown: str, kind: str | None = None) -> bytes:
    """The body of GET ``url``; a PullError of ``kind`` (or, when None, http / timeout / transport) naming ``shown``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()[:300].decode("utf-8", "replace")
        raise PullError(kind or "http", f"{shown}: HTTP {exc.code} {body}") from None
    except TimeoutError:
        raise PullError(kind or "timeout", f"{shown}: no answer within {timeout} s") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        fallback = "timeout" if isinstance(reason, TimeoutError) else "transport"
        raise PullError(kind or fallback, f"{shown}: {reason}") from None


def refusal(conn: psycopg.Connection, exc: psycopg.Error) -> str:
    """A database refusal in one line (SQLSTATE, message, DETAIL); a lost connection is raised again instead."""
    if conn.closed or isinstance(exc, psycopg.OperationalError):
        raise exc
    diag = exc.diag
    return f"{diag.sqlstate} {diag.message_primary} ({diag.message_detail or ''})"
