"""Evidence to kill (issue 19): how fast a kill reaches the application, and a day's backfill, against floors.

Every figure is a ratio to a floor measured in the same run, on the same connections:
- Operator kill at ``canary_1`` with real data in the windows (the history, topped up to now, and the current
  bucket's 18 healthy samples re-sent through the public path every 5 s of the run, untimed, as ingestion keeps
  arriving): from the start of ``chat_set_v11_rollout_state('canary_1', true, 'bench kill')`` to a LISTENing client
  (a thread of this process, psycopg ``notifies()``) holding the ``chat_v11_rollout`` notification. Floor: a bare
  durable transaction doing the same writes in one round trip, ``select bench.bare_change()`` (a SQL function:
  UPDATE of a one-row table, INSERT of a history-like row, ``pg_notify``), to the same listener. Each kill is
  followed (untimed) by a reset to canary_1 with the kill switch off (as the owner, ``apply_transition``), so
  every kill stops a live canary; the kill rows say how their gate snapshot was obtained (counted in the report).
- One bucket's batch (18 samples: 9 metrics x 2 cohorts) carrying one P0 event (``ack_without_receipt_10s_rate``,
  canary, numerator 1) through ``chat_put_v11_metric_samples(text[], ...)`` -> the automatic kill committed -> the
  notification held. Each batch is a new bucket, written forward in time into buckets freed before now (as
  ingestion of current buckets appends); reset untimed after each. Floor: ``select bench.bare_batch(...)`` with the
  same arrays: INSERT of the 18 rows into a scratch table ``LIKE chat_v11.metric_sample INCLUDING ALL`` + the bare
  change above, one round trip. Afterwards the P0 buckets are re-sent healthy and the incident resolved.
- Backfill of one day (8,640 buckets x 18 = 155,520 samples) into a day without data (its own partition) through
  the public path, in batches of one hour (6,480 samples), columnar and JSON; floor: COPY of the same rows, in the
  same batches, into a scratch table ``LIKE chat_v11.metric_sample INCLUDING ALL`` (not partitioned). Each batch is
  its own transaction, commit included.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from .common import Context, Latency, Section, SummaryRow, ms, table
from .history import BUCKET, BUCKETS_PER_DAY, COPY_SQL, catalog_series, server_anchor
from .ingest import PUT_COLUMNAR, PUT_JSONB, RecentBuckets, as_columns, as_copy_text, as_json, with_p0_event
from .rollout import Listener, feed_current_bucket

TITLE = "Evidence to kill: the kill's path to the application, and a day's backfill"
KILL = "select * from public.chat_set_v11_rollout_state('canary_1', true, 'bench kill')"
BARE = "select bench.bare_change()"
BARE_BATCH = ("select bench.bare_batch(%b::text[], %b::text[], %b::timestamptz[], %b::bigint[], %b::bigint[], "
              "%b::double precision[])")
NOTIFY_P99_MS = 2.0
NOTIFY_RATIO = 1.5
FEED_EVERY = 5.0  # seconds between two untimed batches of the current bucket
BACKFILL_BATCH = 360 * 18  # one hour of buckets

SETUP = [
    "create schema if not exists bench",
    "create table if not exists bench.change_state (id int primary key, stage text not null, "
    "kill_switch boolean not null, version bigint not null, changed_at timestamptz not null)",
    "insert into bench.change_state values (1, 'canary_1', false, 1, now()) on conflict do nothing",
    "create table if not exists bench.change_history (id bigint generated always as identity primary key, "
    "stage text not null, kill_switch boolean not null, reason text not null, "
    "changed_at timestamptz not null default clock_timestamp())",
    "create table if not exists bench.sample_floor (like chat_v11.metric_sample including all)",
    "create table if not exists bench.backfill_floor (like chat_v11.metric_sample including all)",
    """create or replace function bench.bare_change() returns bigint language sql as $$
        update bench.change_state set version = version + 1, kill_switch = true, changed_at = clock_timestamp()
         where id = 1;
        insert into bench.change_history (stage, kill_switch, reason) values ('canary_1', true, 'bench kill');
        select pg_notify('x', '{"action": "kill"}');
        select version from bench.change_state where id = 1;
    $$""",
    """create or replace function bench.bare_batch(text[], text[], timestamptz[], bigint[], bigint[],
                                                   double precision[]) returns bigint language sql as $$
        insert into bench.sample_floor (metric, cohort, bucket_start, numerator, denominator, value)
        select * from unnest($1, $2, $3, $4, $5, $6);
        select bench.bare_change();
    $$""",
]


def to_canary(conn, reason: str = "benchmark reset") -> None:
    """Stage canary_1, kill switch off, not frozen, no active incident (as the owner: the bench's own setting)."""
    with conn.transaction():
        conn.execute("select chat_v11.lock_state()")
        conn.execute("select chat_v11.apply_transition('rollback', 'canary_1', false, false, %s, null, null, null)",
                     (reason,))
        conn.execute("update chat_v11.incident set status = 'resolved', resolved_at = clock_timestamp() "
                     "where status in ('open', 'mitigated')")


class Feeder:
    """The current bucket's 18 healthy samples through the public path, at most every FEED_EVERY seconds."""

    def __init__(self, conn) -> None:
        self.conn, self.last = conn, 0.0
        self.batches = 0

    def __call__(self) -> None:
        if time.monotonic() - self.last < FEED_EVERY:
            return
        feed_current_bucket(self.conn)
        self.last = time.monotonic()
        self.batches += 1


def reset(listener: Listener, conn) -> None:
    """to_canary, untimed, and its own notification received before the next timed call."""
    listener.got.clear()
    to_canary(conn)
    if not listener.got.wait(10):
        raise RuntimeError("no notification of the reset")


def timed_notification(listener: Listener, cur, query: str, params, channel: str) -> float:
    listener.got.clear()
    t0 = time.perf_counter()
    cur.execute(query, params, prepare=True).fetchall()
    if not listener.got.wait(10):
        raise RuntimeError(f"no notification on {channel}")
    if listener.channel != channel:
        raise RuntimeError(f"notification on {listener.channel}, expected {channel}")
    return (listener.at - t0) * 1000


def operator_kills(ctx: Context, n: int, warmup: int) -> tuple[Latency, Latency, dict, int]:
    history = ctx.get_history()
    if history.rows == 0:
        history.extend_to(1)
    history.top_up()
    listener = Listener(ctx)
    kill_ms, floor_ms = [], []
    try:
        with ctx.connect() as conn, ctx.connect() as feed_conn:
            feed = Feeder(feed_conn)
            reset(listener, conn)
            cur = conn.cursor()
            for i in range(warmup + n):
                feed()
                k = timed_notification(listener, cur, KILL, None, "chat_v11_rollout")
                reset(listener, conn)
                f = timed_notification(listener, cur, BARE, None, "x")
                if i >= warmup:
                    kill_ms.append(k)
                    floor_ms.append(f)
                time.sleep(0.002)
            obtained = dict(conn.execute(
                "select coalesce(gate_snapshot ->> 'obtained', 'not said'), count(*) from chat_v11.rollout_history "
                "where reason = 'bench kill' group by 1").fetchall())
    finally:
        listener.close()
    return Latency(kill_ms), Latency(floor_ms), obtained, feed.batches


def p0_batches(ctx: Context, n: int, warmup: int) -> tuple[Latency, Latency]:
    conn = ctx.conn
    series = catalog_series(conn)
    total = warmup + n
    first = server_anchor(conn) - (total + 1) * BUCKET
    conn.execute("delete from chat_v11.metric_sample where bucket_start >= to_timestamp(%s)", (first,))
    buckets = RecentBuckets(series, first)
    listener = Listener(ctx)
    auto_ms, floor_ms, healed = [], [], []
    try:
        with ctx.connect() as c:
            reset(listener, c)
            cur = c.cursor()
            for i in range(total):
                batch, k = with_p0_event(buckets.batch(len(series)))
                healed.append(batch[k])
                a = timed_notification(listener, cur, PUT_COLUMNAR, as_columns(batch), "chat_v11_rollout")
                if not c.execute("select kill_switch from chat_v11.rollout_state").fetchone()[0]:
                    raise RuntimeError(f"the P0 event at {batch[k][2]} did not kill")
                reset(listener, c)
                f = timed_notification(listener, cur, BARE_BATCH, as_columns(batch), "x")
                if i >= warmup:
                    auto_ms.append(a)
                    floor_ms.append(f)
                time.sleep(0.002)
            healthy = [(m, co, e, 0, d, v) for m, co, e, _n, d, v in healed]
            c.execute(PUT_COLUMNAR, as_columns(healthy))  # the P0 buckets re-sent healthy
            to_canary(c)
    finally:
        listener.close()
    history = ctx.history
    if history is not None and history.newest is not None:
        history.newest = max(history.newest, buckets.last)
    return Latency(auto_ms), Latency(floor_ms)


def backfill(ctx: Context, smoke: bool) -> dict[str, float]:
    """Seconds to backfill one day per path (and the COPY floor) into days without data."""
    conn = ctx.conn
    series = catalog_series(conn)
    history = ctx.get_history()
    oldest = history.oldest if history.oldest is not None else server_anchor(conn)
    day0 = (oldest // 86400 - 3) * 86400  # a whole UTC day, clear of the history
    per_day = BUCKETS_PER_DAY * len(series) if not smoke else 360 * len(series)
    seconds: dict[str, float] = {}
    cur = conn.cursor()
    for offset, path in enumerate(("columnar", "jsonb", "copy")):
        start = day0 - offset * 86400
        day = datetime.fromtimestamp(start, UTC).date()
        conn.execute("select chat_v11.ensure_sample_partitions(%s, %s)", (day, day))
        buckets = RecentBuckets(series, start)
        elapsed = 0.0
        written = 0
        while written < per_day:
            batch = buckets.batch(min(BACKFILL_BATCH, per_day - written))
            if path == "columnar":
                params = as_columns(batch)
                t0 = time.perf_counter()
                got = cur.execute(PUT_COLUMNAR, params, prepare=True).fetchone()[0]
            elif path == "jsonb":
                payload = as_json(batch)
                t0 = time.perf_counter()
                got = cur.execute(PUT_JSONB, (payload,), prepare=True).fetchone()[0]
            else:
                text = as_copy_text(batch)
                t0 = time.perf_counter()
                with cur.copy(COPY_SQL.format(table="bench.backfill_floor")) as copy:
                    copy.write(text)
                got = cur.rowcount
            elapsed += time.perf_counter() - t0
            if got != len(batch):
                raise RuntimeError(f"backfill {path}: {got} of {len(batch)}")
            written += len(batch)
        seconds[path] = elapsed
        ctx.log(f"  backfill of {written:,} samples, {path}: {elapsed:.2f} s")
    seconds["samples"] = per_day
    return seconds


def run(ctx: Context) -> Section:
    smoke = getattr(ctx.args, "smoke", False)
    n = 10 if smoke else 300
    warmup = 2 if smoke else 20
    for statement in SETUP:
        ctx.conn.execute(statement)
    before = ctx.conn.execute("select stage, kill_switch, promotion_frozen from chat_v11.rollout_state").fetchone()

    kill, kill_floor, obtained, feeds = operator_kills(ctx, n, warmup)
    ctx.log(f"  operator kill -> notification: p50 {kill.p50:.3f} ms, p99 {kill.p99:.3f} ms "
            f"(floor p99 {kill_floor.p99:.3f} ms); snapshots: {obtained}")
    auto, auto_floor = p0_batches(ctx, n, warmup)
    ctx.log(f"  P0 batch -> auto kill -> notification: p50 {auto.p50:.3f} ms, p99 {auto.p99:.3f} ms "
            f"(floor p99 {auto_floor.p99:.3f} ms)")
    fill = backfill(ctx, smoke)
    with ctx.conn.transaction():
        ctx.conn.execute("select chat_v11.lock_state()")
        ctx.conn.execute("select chat_v11.apply_transition('rollback', %s, %s, %s, 'benchmark reset', null, null, "
                         "null)", before)

    target = not smoke
    ratio = kill.p99 / kill_floor.p99
    section = Section(TITLE)
    section.summary += [
        SummaryRow("operator kill at canary_1 -> notification held, p99 (÷ bare UPDATE+INSERT+NOTIFY p99)",
                   f"{ms(kill.p99)} ({ratio:.2f} x; floor {ms(kill_floor.p99)})",
                   f"<= {NOTIFY_P99_MS:g} ms and <= {NOTIFY_RATIO:g} x",
                   (kill.p99 <= NOTIFY_P99_MS and ratio <= NOTIFY_RATIO) if target else None),
        SummaryRow("one bucket's batch (18 samples) with a P0 event -> auto kill -> notification held, p99",
                   f"{ms(auto.p99)} ({auto.p99 / auto_floor.p99:.2f} x bare INSERT 18 + UPDATE+INSERT+NOTIFY; "
                   f"floor {ms(auto_floor.p99)})", "reported"),
        SummaryRow(f"backfill of one day ({fill['samples']:,.0f} samples), `chat_put_v11_metric_samples(text[], …)`",
                   f"{fill['columnar']:.2f} s ({fill['columnar'] / fill['copy']:.2f} x COPY, "
                   f"{fill['copy']:.2f} s)", "reported"),
        SummaryRow(f"backfill of one day ({fill['samples']:,.0f} samples), `chat_put_v11_metric_samples(jsonb)`",
                   f"{fill['jsonb']:.2f} s ({fill['jsonb'] / fill['copy']:.2f} x COPY)", "reported"),
    ]
    rows = [
        ["operator kill at canary_1 → notification", ms(kill.p50), ms(kill.p99), str(kill.n),
         "bare UPDATE+INSERT+NOTIFY", ms(kill_floor.p50), ms(kill_floor.p99), f"{ratio:.2f}"],
        ["18-sample batch with a P0 event → auto kill → notification", ms(auto.p50), ms(auto.p99), str(auto.n),
         "bare INSERT of 18 + UPDATE+INSERT+NOTIFY", ms(auto_floor.p50), ms(auto_floor.p99),
         f"{auto.p99 / auto_floor.p99:.2f}"],
    ]
    how = ", ".join(f"{k}: {v}" for k, v in sorted(obtained.items()))
    section.body += [
        (__doc__ or "").split("\n\n", 1)[1].strip(),
        "",
        *table(["measure", "p50", "p99", "n", "floor", "floor p50", "floor p99", "p99 ÷ floor"], rows, "lrrrlrrr"),
        "",
        f"How the kill rows got their gate snapshot (`gate_snapshot ->> 'obtained'`): {how}; the feeder sent "
        f"{feeds} batch(es) of the current bucket during the kills.",
        "",
        *table(["backfill of one day", "seconds", "÷ COPY"],
               [["`chat_put_v11_metric_samples(text[], …)`", f"{fill['columnar']:.2f}",
                 f"{fill['columnar'] / fill['copy']:.2f}"],
                ["`chat_put_v11_metric_samples(jsonb)`", f"{fill['jsonb']:.2f}", f"{fill['jsonb'] / fill['copy']:.2f}"],
                ["COPY into `bench.backfill_floor` (floor)", f"{fill['copy']:.2f}", "1"]], "lrr"),
    ]
    ctx.facts["kill_path"] = {"kill_p99": kill.p99, "floor_p99": kill_floor.p99, "auto_p99": auto.p99,
                              "backfill": fill}
    return section
