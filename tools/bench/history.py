"""The metric history: every metric of the catalog, both cohorts, one healthy sample per 10-second bucket.

Loaded with COPY as the table owner (not through the public path: 4.67 M rows of history are the setting of
the gate benchmark, not what it measures), in time order as ingestion would have written them, ending at the
server's now rounded down to 10 s. ``top_up()`` adds the buckets up to the current now right before each
measurement, so the gates always evaluate fresh data (freshness is 2 minutes).

When ``chat_v11.metric_sample`` is partitioned by day and ``chat_v11.ensure_sample_partitions(date, date)``
exists, the loader creates the daily partitions of the days it loads first (as the owner), so old history lands
in its own partitions and not in the default one; without that function it just COPYs.

Healthy means: no P0 event (numerator 0), P1 rates of about 0.2 % in both cohorts, recovery p95 700-900 ms in
both cohorts, so every check passes at canary_1 on real data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg

from chat_rollout.utc import utc

BUCKET = 10  # seconds
BUCKETS_PER_DAY = 86400 // BUCKET
COHORTS = ("canary", "control")
ENSURE_PARTITIONS = "chat_v11.ensure_sample_partitions(date,date)"
COPY_SQL = "copy {table} (metric, cohort, bucket_start, numerator, denominator, value) from stdin"
_NULL = "\\N"


@dataclass
class SeriesSpec:
    metric: str
    kind: str
    severity: str
    cohort: str


@dataclass
class Load:
    """One COPY into the history: what, how many rows, how long."""

    label: str
    rows: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def catalog_series(conn) -> list[SeriesSpec]:
    """Every (metric, cohort) of the metric catalog, in catalog order."""
    rows = conn.execute("select metric, kind, severity from chat_v11.metric order by ordinal").fetchall()
    return [SeriesSpec(m, k, s, c) for m, k, s in rows for c in COHORTS]


def sample_fields(spec: SeriesSpec, i: int, s: int) -> tuple[int | None, int | None, float | None]:
    """(numerator, denominator, value) of a healthy sample; ``i`` the bucket number, ``s`` the series number."""
    if spec.kind == "latency_ms":
        return None, None, float(700 + (i * 31 + s * 17) % 200)
    if spec.kind == "count":
        return 0, None, None
    den = 800 + (i * 7 + s * 13) % 600
    num = 0 if spec.severity == "P0" else (i + s) % 5
    return num, den, None


def _text(value) -> str:
    return _NULL if value is None else str(value)


class _Suffixes:
    """The ``\\tnum\\tden\\tvalue\\n`` tails of COPY text lines, precomputed per series (they repeat)."""

    PERIOD = 3000  # a multiple of the periods of sample_fields (600, 5, 200)

    def __init__(self, series: list[SeriesSpec]) -> None:
        self.prefix = [f"{sp.metric}\t{sp.cohort}\t" for sp in series]
        self.tails = [
            [
                "\t" + "\t".join(_text(v) for v in sample_fields(sp, i, s)) + "\n"
                for i in range(self.PERIOD)
            ]
            for s, sp in enumerate(series)
        ]

    def bucket_lines(self, i: int, ts: str) -> str:
        j = i % self.PERIOD
        return "".join(f"{p}{ts}{t[j]}" for p, t in zip(self.prefix, self.tails, strict=True))


def server_anchor(conn) -> int:
    """The server's now, rounded down to 10 s, as a Unix time."""
    now = conn.execute("select extract(epoch from clock_timestamp())::float8").fetchone()[0]
    return int(now // BUCKET * BUCKET)


def copy_buckets(conn, series: list[SeriesSpec], first: int, last: int, table: str = "chat_v11.metric_sample") -> int:
    """COPY every series' sample for each bucket in [first, last] (Unix times), in time order. Returns rows."""
    if last < first:
        return 0
    suffixes = _Suffixes(series)
    rows = 0
    chunk: list[str] = []
    with conn.cursor() as cur, cur.copy(COPY_SQL.format(table=table)) as copy:
        for epoch in range(first, last + BUCKET, BUCKET):
            chunk.append(suffixes.bucket_lines(epoch // BUCKET, utc(epoch, "sql")))
            if len(chunk) >= 2000:
                copy.write("".join(chunk))
                rows += len(chunk) * len(series)
                chunk.clear()
        if chunk:
            copy.write("".join(chunk))
            rows += len(chunk) * len(series)
    return rows


class History:
    """The history in chat_v11.metric_sample: [oldest, newest] bucket, rows, and the COPYs that loaded it.

    ``conn`` is an autocommit connection as the table owner, ``log`` where progress goes (the run context's log:
    this module knows nothing of the runner, ``common.Context.get_history()`` makes the run's one History)."""

    def __init__(self, conn: psycopg.Connection, log: Callable[[str], None]) -> None:
        self.conn = conn
        self.log = log
        self.series = catalog_series(conn)
        self.anchor: int | None = None  # newest bucket at the first load: days count back from it
        self.oldest: int | None = None
        self.newest: int | None = None
        self.rows = 0
        self.loads: list[Load] = []
        self.partitioned_by_function = conn.execute(
            "select to_regprocedure(%s) is not null", (ENSURE_PARTITIONS,)
        ).fetchone()[0]
        self.ensured: tuple[date, date] | None = None  # the days ensure_sample_partitions was called for

    def ensure_partitions(self, first: int, last: int) -> None:
        """Have chat_v11.ensure_sample_partitions create the daily partitions of [first, last] (Unix times), a
        day of margin each side (whatever time zone the function cuts days in), once per day range."""
        if not self.partitioned_by_function:
            return
        lo = datetime.fromtimestamp(first, UTC).date() - timedelta(days=1)
        hi = datetime.fromtimestamp(last, UTC).date() + timedelta(days=1)
        if self.ensured is not None and self.ensured[0] <= lo and hi <= self.ensured[1]:
            return
        if self.ensured is not None:  # the union, one interval (the function skips the partitions that exist)
            lo, hi = min(lo, self.ensured[0]), max(hi, self.ensured[1])
        day = lo
        while day <= hi:  # the function takes at most 401 days a call
            end = min(hi, day + timedelta(days=400))
            self.conn.execute("select chat_v11.ensure_sample_partitions(%s, %s)", (day, end))
            day = end + timedelta(days=1)
        self.ensured = (lo, hi)

    @property
    def days(self) -> float:
        if self.oldest is None or self.newest is None:
            return 0.0
        return (self.newest - self.oldest + BUCKET) / 86400

    def newest_utc(self) -> datetime | None:
        return None if self.newest is None else datetime.fromtimestamp(self.newest, UTC)

    def _copy(self, label: str, first: int, last: int) -> Load:
        if last >= first:
            self.ensure_partitions(first, last)
        t0 = time.perf_counter()
        rows = copy_buckets(self.conn, self.series, first, last)
        load = Load(label, rows, time.perf_counter() - t0)
        self.rows += rows
        if rows:
            self.loads.append(load)
        return load

    def extend_to(self, days: int) -> Load:
        """Load older buckets until the history covers ``days`` days back from the first load's newest bucket."""
        if self.anchor is None:
            self.anchor = self.newest = server_anchor(self.conn)
            last = self.anchor
        else:
            last = self.oldest - BUCKET
        target = self.anchor - (days * BUCKETS_PER_DAY - 1) * BUCKET
        expected = max(0, (last - target) // BUCKET + 1)
        self.log(f"COPY {expected * len(self.series):,} rows of history ({days} day(s) in all)")
        load = self._copy(f"history to {days} day(s)", target, last)
        self.oldest = target if self.oldest is None else min(target, self.oldest)
        self.log(f"  {load.rows:,} rows in {load.seconds:.1f} s ({load.rate:,.0f} rows/s)")
        return load

    def top_up(self) -> int:
        """COPY the buckets after the newest one up to the server's now (rounded down to 10 s)."""
        now = server_anchor(self.conn)
        if self.newest is None or now <= self.newest:
            return 0
        load = self._copy("top-up", self.newest + BUCKET, now)
        self.newest = now
        return load.rows

    def maintain(self) -> float:
        """VACUUM (ANALYZE) after a load, as autovacuum would have by then, and a CHECKPOINT (when allowed) so
        the measurements that follow do not share the machine with the load's checkpoint. Returns seconds."""
        t0 = time.perf_counter()
        self.conn.execute("vacuum (analyze) chat_v11.metric_sample")
        try:
            self.conn.execute("checkpoint")
        except Exception as exc:  # pg_checkpoint or superuser only; the run goes on without it
            self.log(f"  checkpoint skipped: {exc}")
        return time.perf_counter() - t0
