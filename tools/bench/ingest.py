"""Ingestion throughput through the public path, against a bare COPY of the same rows, in one run.

Issue 19 dropped the throughput target (SPEC 6 had >= 100 k samples/s): the playbook's metrics arrive as 9 metrics x
2 cohorts per 10-second bucket, about 2 samples a second. What follows the workload is in ``kill_path.py`` (one
bucket's batch with a P0 event to the kill's notification, a day's backfill against COPY); these throughputs stay
as figures, each a ratio to the bare COPY of the same rows, without a target.

Realistic batches: every batch is valid and made of new *recent* buckets, each newer than every stored one of its
series (as a writer of current buckets appends), into a table that already holds the history. To get such buckets
without colliding with the history (loaded up to the server's now by ``history.py``), the benchmark frees them:
it computes how many buckets the whole run writes, deletes the history's samples from that many buckets before
now (``VACUUM (ANALYZE)`` after, as after a prune), and then ingests forward in time into the freed range, so
that the run ends about at now and the history is whole again, healthy, for the benchmarks that follow (the
``History`` object is told the new newest bucket). Run alone (``--only ingest``) it loads a history first.

Each call is its own transaction (autocommit, synchronous_commit as the server has it), so the validation, the
write and the automatic-kill check that runs inside the call are all timed, commit included. At least 20 timed
batches per batch size (``MIN_BATCHES``; --smoke: 3).

Paths:
- ``chat_put_v11_metric_samples(jsonb)``: the JSON array of sample objects; the JSON text is built before the
  timer (the writer's encoding is its own business), psycopg sends it as a text parameter.
- ``chat_put_v11_metric_samples(text[], ..., double precision[])``, when the database has it (pg_proc): one
  Python list per field, sent as binary arrays (``%b``); psycopg's adaptation of the lists is inside the timer.
- reference: COPY (text format, built before the timer) of the jsonb path's rows into ``bench.metric_sample``,
  created ``LIKE chat_v11.metric_sample INCLUDING ALL`` (same columns, defaults, checks and primary key; not
  partitioned) and empty at the start, one COPY per batch, each its own transaction.

The guard: rounds of three columnar calls of the same size (5,000), timed: a healthy batch, a batch with one P0
event (``ack_without_receipt_10s_rate``, canary, numerator 1) that makes the automatic kill engage the kill switch
(the P0 check fails on real data: the 15 minutes before it are the healthy buckets just written), and another
batch with a P0 event while the kill switch is already on (the check is judged, nothing to change). After each
round, untimed: the rollout state is put back as it was (owner, ``apply_transition``), the guard's incident is
resolved and the P0 buckets are re-sent healthy (a re-sent bucket replaces the stored one), so the data the later
benchmarks read stays healthy.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field

from psycopg.adapt import PyFormat, Transformer

from chat_rollout.utc import utc

from .common import Context, Section, SummaryRow, count, table
from .history import BUCKET, COPY_SQL, SeriesSpec, catalog_series, sample_fields, server_anchor

TITLE = "Ingestion throughput"
COLUMNAR = (
    "public.chat_put_v11_metric_samples(text[], text[], timestamptz[], bigint[], bigint[], double precision[])"
)
PUT_JSONB = "select public.chat_put_v11_metric_samples(%s::jsonb)"
PUT_COLUMNAR = (  # %b: binary arrays, 4-10 times cheaper for psycopg to build than text ones (timestamptz most)
    "select public.chat_put_v11_metric_samples(%b::text[], %b::text[], %b::timestamptz[], %b::bigint[], "
    "%b::bigint[], %b::double precision[])"
)
SCRATCH = "bench.metric_sample"
MIN_BATCHES = 20  # timed batches per batch size, at least
GUARD_SIZE = 5000
GUARD_ROUNDS = 5
P0_EVENT = ("ack_without_receipt_10s_rate", "canary")

Sample = tuple[str, str, int, int | None, int | None, float | None]


@dataclass
class PathResult:
    samples: int = 0
    seconds: float = 0.0
    calls: list[float] = field(default_factory=list)

    def add(self, n: int, seconds: float) -> None:
        self.samples += n
        self.seconds += seconds
        self.calls.append(seconds)

    @property
    def rate(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0

    @property
    def median_ms(self) -> float:
        return sorted(self.calls)[len(self.calls) // 2] * 1000 if self.calls else 0.0


class Buckets:
    """Hands out blocks of new buckets, going back in time from ``before`` (exclusive)."""

    def __init__(self, series: list[SeriesSpec], before: int) -> None:
        self.series = series
        self.next_end = before - BUCKET

    def batch(self, size: int) -> list[Sample]:
        n = math.ceil(size / len(self.series))
        first = self.next_end - (n - 1) * BUCKET
        self.next_end = first - BUCKET
        out: list[Sample] = []
        for epoch in range(first, first + n * BUCKET, BUCKET):
            i = epoch // BUCKET
            for s, sp in enumerate(self.series):
                out.append((sp.metric, sp.cohort, epoch, *sample_fields(sp, i, s)))
        return out[:size]


class RecentBuckets:
    """Hands out new buckets going forward in time from ``first``: sample after sample of every series, bucket
    after bucket (a batch may end in the middle of a bucket; the next one completes it), so the range is filled
    without holes and every batch is newer than anything stored before it."""

    def __init__(self, series: list[SeriesSpec], first: int) -> None:
        self.series = series
        self.first = first
        self.position = 0  # samples handed out so far

    def batch(self, size: int) -> list[Sample]:
        out: list[Sample] = []
        n = len(self.series)
        for p in range(self.position, self.position + size):
            epoch = self.first + (p // n) * BUCKET
            s = p % n
            sp = self.series[s]
            out.append((sp.metric, sp.cohort, epoch, *sample_fields(sp, epoch // BUCKET, s)))
        self.position += size
        return out

    @property
    def last(self) -> int:
        """The newest bucket handed out so far."""
        return self.first + ((self.position - 1) // len(self.series)) * BUCKET

    @staticmethod
    def buckets_for(samples: int, series: int) -> int:
        return math.ceil(samples / series)


def with_p0_event(batch: list[Sample]) -> tuple[list[Sample], int]:
    """The batch with its last P0_EVENT sample turned into a P0 event (numerator 1); returns it and the index."""
    for k in range(len(batch) - 1, -1, -1):
        metric, cohort, epoch, num, den, val = batch[k]
        if (metric, cohort) == P0_EVENT:
            changed = list(batch)
            changed[k] = (metric, cohort, epoch, 1, den, val)
            return changed, k
    raise RuntimeError(f"no {P0_EVENT} sample in the batch")


def as_json(batch: list[Sample]) -> str:
    items = []
    for metric, cohort, epoch, num, den, val in batch:
        item = {"metric": metric, "cohort": cohort, "bucket_start": utc(epoch, "iso")}
        if num is not None:
            item["numerator"] = num
        if den is not None:
            item["denominator"] = den
        if val is not None:
            item["value"] = val
        items.append(item)
    return json.dumps(items, separators=(",", ":"))


def as_columns(batch: list[Sample]) -> tuple[list, ...]:
    from datetime import UTC, datetime

    metric, cohort, epoch, num, den, val = (list(c) for c in zip(*batch, strict=True))
    return metric, cohort, [datetime.fromtimestamp(e, UTC) for e in epoch], num, den, val


def as_copy_text(batch: list[Sample]) -> str:
    def t(v) -> str:
        return "\\N" if v is None else str(v)

    return "".join(
        f"{m}\t{c}\t{utc(e, 'sql')}\t{t(n)}\t{t(d)}\t{t(v)}\n"
        for m, c, e, n, d, v in batch
    )


def profile(ctx: Context, buckets: Buckets, path: str, size: int) -> list[tuple[float, str]]:
    """Where one untimed call of ``size`` samples spends its time: auto_explain of every statement inside it
    (nested statements, row counts but no per-node timing). Superuser only (LOAD); empty when not allowed."""
    notes: list[str] = []
    with ctx.connect() as conn:
        try:
            conn.execute("load 'auto_explain'")
        except Exception as exc:
            ctx.log(f"  profile skipped: {exc}")
            return []
        for key, value in {"log_min_duration": "0", "log_nested_statements": "on", "log_analyze": "on",
                           "log_timing": "off", "log_level": "notice"}.items():
            conn.execute(f"set auto_explain.{key} = {value}")
        conn.add_notice_handler(lambda d: notes.append(d.message_primary or ""))
        batch = buckets.batch(size)
        if path == "columnar":
            conn.execute(PUT_COLUMNAR, as_columns(batch))
        else:
            conn.execute(PUT_JSONB, (as_json(batch),))
    steps = []
    for note in notes:
        found = re.match(r"duration: ([0-9.]+) ms\s+plan:\s*Query Text: (.*?)(?:\n\S|$)", note, re.S)
        if found:
            steps.append((float(found.group(1)), " ".join(found.group(2).split())))
    return steps


def rollout_row(conn) -> tuple:
    return conn.execute("select stage, kill_switch, promotion_frozen from chat_v11.rollout_state").fetchone()


def restore_rollout(conn, before: tuple) -> None:
    """The rollout state as it was before a guard round (as the owner: the benchmark's own setting), and no active
    incident left by the guard."""
    stage, kill, frozen = before
    with conn.transaction():
        conn.execute("select chat_v11.lock_state()")
        conn.execute("select chat_v11.apply_transition('rollback', %s, %s, %s, 'benchmark reset', null, null, null)",
                     (stage, kill, frozen))
        conn.execute("update chat_v11.incident set status = 'resolved', resolved_at = clock_timestamp() "
                     "where status in ('open', 'mitigated')")


def free_recent_buckets(ctx: Context, series: list[SeriesSpec], buckets: int) -> tuple[int, int]:
    """Deletes every sample from ``buckets`` buckets before the server's now (rounded down to 10 s) on, after
    loading a history when there is none. Returns (the first freed bucket, rows deleted)."""
    conn = ctx.conn
    history = ctx.get_history()
    if history.rows == 0:
        days = max(1, math.ceil(buckets * BUCKET / 86400) + (0 if ctx.args.smoke else 7))
        history.extend_to(days)
    first = server_anchor(conn) - (buckets - 1) * BUCKET
    t0 = time.perf_counter()
    deleted = conn.execute("delete from chat_v11.metric_sample where bucket_start >= to_timestamp(%s)",
                           (first,)).rowcount
    conn.execute("vacuum (analyze) chat_v11.metric_sample")
    history.rows -= deleted
    seconds = time.perf_counter() - t0
    ctx.log(f"  freed {buckets:,} recent buckets: {deleted:,} rows deleted + vacuum in {seconds:.1f} s")
    return first, deleted


def run(ctx: Context) -> Section:
    conn = ctx.conn
    args = ctx.args
    series = catalog_series(conn)
    has_columnar = conn.execute("select to_regprocedure(%s) is not null", (COLUMNAR,)).fetchone()[0]
    paths = ["jsonb"] + (["columnar"] if has_columnar else []) + ["copy"]
    min_batches = 3 if args.smoke else MIN_BATCHES
    rounds = 1 if args.smoke else GUARD_ROUNDS
    plan = {size: max(min_batches, math.ceil(args.ingest_samples / size)) for size in args.batch_sizes}
    # every sample written to chat_v11.metric_sample: per size one untimed round then the timed ones, for each
    # public path (COPY writes the jsonb rows into the scratch table); the guard rounds; the profiles
    public = len(paths) - 1
    samples = sum((n + 1) * size * public for size, n in plan.items())
    samples += (3 * rounds * GUARD_SIZE if has_columnar else 0) + public * max(args.batch_sizes)
    first, _ = free_recent_buckets(ctx, series, RecentBuckets.buckets_for(samples, len(series)) + 1)
    buckets = RecentBuckets(series, first)
    history = ctx.history
    conn.execute("create schema if not exists bench")
    conn.execute(f"create table {SCRATCH} (like chat_v11.metric_sample including all)")
    copy_sql = COPY_SQL.format(table=SCRATCH)
    state_before = rollout_row(conn)
    results: dict[int, dict[str, PathResult]] = {}
    adapt_seconds: dict[int, float] = {}
    cur = conn.cursor()
    tx = Transformer(conn)

    def one(path: str, batch: list[Sample], timed: PathResult | None) -> None:
        size = len(batch)
        if path == "columnar":
            params = as_columns(batch)
            t0 = time.perf_counter()
            written = cur.execute(PUT_COLUMNAR, params, prepare=True).fetchone()[0]
            elapsed = time.perf_counter() - t0
            if timed is not None:
                t1 = time.perf_counter()
                tx.dump_sequence(params, [PyFormat.BINARY] * len(params))
                adapt_seconds[size] = adapt_seconds.get(size, 0.0) + time.perf_counter() - t1
        elif path == "jsonb":
            payload = as_json(batch)
            t0 = time.perf_counter()
            written = cur.execute(PUT_JSONB, (payload,), prepare=True).fetchone()[0]
            elapsed = time.perf_counter() - t0
        else:
            text = as_copy_text(batch)
            t0 = time.perf_counter()
            with cur.copy(copy_sql) as copy:
                copy.write(text)
            elapsed = time.perf_counter() - t0
            written = cur.rowcount
        if written != size:
            raise RuntimeError(f"{path}: {written} samples written of {size}")
        if timed is not None:
            timed.add(size, elapsed)

    for size, batches in plan.items():
        results[size] = {p: PathResult() for p in paths}
        for timed in [False] + [True] * batches:  # one untimed round first: plans cached, buffers warm
            rows: list[Sample] = []
            for path in paths:  # interleaved, so that a checkpoint or autovacuum hits every path alike
                if path != "copy":
                    rows = buckets.batch(size)  # COPY writes the jsonb path's rows into the scratch table
                one(path, rows, results[size][path] if timed else None)
        line = ", ".join(f"{p} {results[size][p].rate:,.0f}/s" for p in paths)
        ctx.log(f"batches of {size:,} x {batches}: {line}")

    guard: dict[str, PathResult] = {k: PathResult() for k in ("healthy", "kill", "killed")}
    if has_columnar:
        for _ in range(rounds):
            timed_calls = []
            for kind in ("healthy", "kill", "killed"):
                batch = buckets.batch(GUARD_SIZE)
                if kind != "healthy":
                    event, k = with_p0_event(batch)
                    timed_calls.append((kind, event, batch[k]))
                else:
                    timed_calls.append((kind, batch, None))
            healed = []
            for kind, batch, healthy in timed_calls:
                one("columnar", batch, guard[kind])
                if healthy is not None:
                    healed.append(healthy)
            after = rollout_row(conn)
            if not after[1]:
                raise RuntimeError("a P0 event did not engage the kill switch: the guard was not measured")
            restore_rollout(conn, state_before)
            one("columnar", healed, None)  # the P0 buckets re-sent healthy (an upsert)
        ctx.log("guard: " + ", ".join(f"{k} median {r.median_ms:.1f} ms" for k, r in guard.items()))

    size = max(args.batch_sizes)
    profiles = {path: profile(ctx, buckets, path, size) for path in paths if path != "copy"}
    if history is not None and history.newest is not None:
        history.newest = max(history.newest, buckets.last)
        history.rows += buckets.position
    if rollout_row(conn) != state_before:
        raise RuntimeError("the rollout state changed during the ingestion benchmark")

    labels = {
        "jsonb": "`chat_put_v11_metric_samples(jsonb)`",
        "columnar": "`chat_put_v11_metric_samples(text[], …, double precision[])`",
        "copy": "bare COPY (reference)",
    }
    section = Section(f"{TITLE}: the public path against a bare COPY")
    for path in [p for p in paths if p != "copy"]:
        best = max(results[s][path].rate for s in results)
        best_size = max(results, key=lambda s: results[s][path].rate)
        section.summary.append(
            SummaryRow(f"ingestion {labels[path]}, best batch size ({best_size:,})", f"{count(best)} samples/s")
        )
    copy_best = max(results[s]["copy"].rate for s in results)
    section.summary.append(SummaryRow("bare COPY of the same rows (reference)", f"{count(copy_best)} rows/s"))
    for path in [p for p in paths if p != "copy"]:
        ratios = [results[s][path].rate / results[s]["copy"].rate for s in results if results[s]["copy"].rate]
        if ratios:
            section.summary.append(SummaryRow(f"ingestion {labels[path]} ÷ bare COPY, per batch size",
                                              " / ".join(f"{r:.2f}" for r in ratios)))
    if guard["kill"].calls:
        section.summary.append(SummaryRow(
            f"P0 guard: a {GUARD_SIZE:,}-sample batch with one P0 event that kills, minus a healthy one (median)",
            f"+{guard['kill'].median_ms - guard['healthy'].median_ms:.1f} ms"))

    rows = []
    for size, by_path in results.items():
        ref = by_path["copy"].rate
        for path in paths:
            r = by_path[path]
            ratio = "1" if path == "copy" else f"{r.rate / ref:.2f}"
            rows.append([f"{size:,}", labels[path], str(len(r.calls)), count(r.samples), f"{r.median_ms:.1f} ms",
                         count(r.rate), ratio])
    body = section.body
    body += [
        "Samples per second over the timed calls (sum of samples / sum of call times), for each batch size; "
        "the paths alternate batch by batch. Every batch is valid and healthy and made of new recent buckets, "
        "each newer than every stored sample of its series (the benchmark freed the "
        f"{count(buckets.last // BUCKET - first // BUCKET + 1)} buckets before now for them and writes forward "
        f"in time; the table holds {history.rows if history else 0:,} rows at the end). "
        "Each call is its own transaction, commit included; the automatic-kill check runs inside the call "
        "(it finds no P0 event). The JSON text is built before the timer; psycopg's adaptation of the "
        "columnar path's Python lists (binary arrays) is inside it. The COPY reference writes the jsonb path's "
        f"rows into an empty scratch table `{SCRATCH}` (`LIKE chat_v11.metric_sample INCLUDING ALL`, not "
        "partitioned).",
        "",
    ]
    body += table(["batch", "path", "calls", "samples", "median call", "samples/s", "÷ COPY"], rows, "rlrrrrr")
    if not has_columnar:
        body += ["", f"`{COLUMNAR}` does not exist in this database: not measured."]
    elif adapt_seconds:
        body += ["", "psycopg's adaptation of the columnar path's lists alone (inside the timer above), per batch: "
                 + ", ".join(
                     f"{size:,}: {adapt_seconds[size] / len(results[size]['columnar'].calls) * 1000:.1f} ms"
                     for size in results)
                 + "."]
    if guard["kill"].calls:
        body += [
            "",
            f"The P0 guard, columnar batches of {GUARD_SIZE:,} in {len(guard['kill'].calls)} round(s) of three "
            "timed calls (the state reset and the P0 buckets re-sent healthy between rounds, untimed): "
            "a healthy batch; one P0 event that engages the kill switch (auto_kill: the P0 checks judged, the "
            "state row locked, a P0 incident opened, the transition and its history row written); one P0 event "
            "with the kill switch already on (the checks judged, nothing changed):",
            "",
        ]
        healthy = guard["healthy"].median_ms
        body += table(["batch", "calls", "median call", "guard cost (median − healthy)"],
                      [[label, str(len(guard[k].calls)), f"{guard[k].median_ms:.1f} ms",
                        "" if k == "healthy" else f"+{guard[k].median_ms - healthy:.1f} ms"]
                       for k, label in (("healthy", "healthy"), ("kill", "one P0 event: kills"),
                                        ("killed", "one P0 event, kill switch already on"))], "lrrr")
    for path, steps in profiles.items():
        if not steps:
            continue
        body += [
            "",
            f"Where one more (untimed) call of {labels[path]} with {size:,} samples spends its time: "
            "`auto_explain` of each statement, nested ones included (`log_analyze` with `log_timing` off); "
            "the last line is the whole call:",
            "",
        ]
        rows = [[f"{sec:.1f}", "`" + (text if len(text) <= 110 else text[:107] + "...").replace("|", "\\|") + "`"]
                for sec, text in steps]
        body += table(["ms", "statement"], rows, "rl")
    ctx.facts["ingest"] = {s: {p: r.rate for p, r in by.items()} for s, by in results.items()}
    ctx.facts["ingest_guard_ms"] = {k: r.median_ms for k, r in guard.items()}
    return section
