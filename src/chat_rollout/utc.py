"""One way to write a moment in UTC, shared by the CLI, the demo, the report, the tools and the tests."""

from __future__ import annotations

import datetime as dt

#: The styles a moment is written in; every one is UTC.
FORMATS = {
    "text": "%Y-%m-%d %H:%M:%S UTC",  # for people: status, seed, the demo's prose
    "sql": "%Y-%m-%d %H:%M:%S+00",  # a literal PostgreSQL reads back as the same timestamptz
    "iso": "%Y-%m-%dT%H:%M:%SZ",  # ISO 8601, as the ingestion API's bucket_start
    "plain": "%Y-%m-%d %H:%M:%S",  # a table cell whose header already says UTC
    "clock": "%H:%M:%S",  # a time of day in a table that is within one day
}


def utc(moment: dt.datetime | float | None, style: str = "text", *, empty: str = "–") -> str:
    """``moment`` (an aware datetime, or seconds since the epoch) written in UTC in ``style`` (see FORMATS)."""
    if moment is None:
        return empty
    if isinstance(moment, int | float):
        moment = dt.datetime.fromtimestamp(moment, dt.UTC)
    if moment.tzinfo is None:
        raise ValueError(f"a naive datetime has no place in UTC: {moment!r}")
    return moment.astimezone(dt.UTC).strftime(FORMATS[style])
