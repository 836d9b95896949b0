"""Ingestion throughput through the public path, against a bare COPY of the same rows, in one run.

SPEC 6: ingestion through the public path >= 100 k samples/s in batches, guardrail check included. Every batch
is valid, healthy (no P0 event) and made of new buckets (older than the history, so no conflict with stored
rows: each call inserts, as a writer of current buckets does); each call is its own transaction (autocommit,
synchronous_commit as the server has it), so the validation, the write and the automatic-kill check that
runs inside the call are all timed, commit included.

Paths:
- ``chat_put_v11_metric_samples(jsonb)``: the JSON array of sample objects; the JSON text is built before the
  timer (the writer's encoding is its own business), psycopg sends it as a text parameter.
- ``chat_put_v11_metric_samples(text[], ..., double precision[])``, when the database has it (pg_proc): one
  Python list per field, sent as binary arrays (``%b``); psycopg's adaptation of the lists is inside the timer.
- reference: COPY (text format, built before the timer) of the jsonb path's rows into ``bench.metric_sample``,
  created ``LIKE chat_v11.metric_sample INCLUDING ALL`` (same columns, defaults, checks and primary key) and
  empty at the start, one COPY per batch, each its own transaction.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field

from psycopg.adapt import PyFormat, Transformer

from .common import Context, Section, SummaryRow, count, table, verdict
from .history import BUCKET, COPY_SQL, SeriesSpec, catalog_series, sample_fields, server_anchor

TITLE = "Ingestion throughput"
TARGET = 100_000  # samples/s
COLUMNAR = (
    "public.chat_put_v11_metric_samples(text[], text[], timestamptz[], bigint[], bigint[], double precision[])"
)
PUT_JSONB = "select public.chat_put_v11_metric_samples(%s::jsonb)"
PUT_COLUMNAR = (  # %b: binary arrays, 4-10 times cheaper for psycopg to build than text ones (timestamptz most)
    "select public.chat_put_v11_metric_samples(%b::text[], %b::text[], %b::timestamptz[], %b::bigint[], "
    "%b::bigint[], %b::double precision[])"
)
SCRATCH = "bench.metric_sample"

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


def as_json(batch: list[Sample]) -> str:
    items = []
    for metric, cohort, epoch, num, den, val in batch:
        item = {"metric": metric, "cohort": cohort,
                "bucket_start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))}
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
        f"{m}\t{c}\t{time.strftime('%Y-%m-%d %H:%M:%S+00', time.gmtime(e))}\t{t(n)}\t{t(d)}\t{t(v)}\n"
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


def run(ctx: Context) -> Section:
    conn = ctx.conn
    args = ctx.args
    series = catalog_series(conn)
    history = ctx.history
    before = history.oldest if history is not None and history.oldest is not None else server_anchor(conn) - 31 * 86400
    buckets = Buckets(series, before)
    has_columnar = conn.execute("select to_regprocedure(%s) is not null", (COLUMNAR,)).fetchone()[0]
    conn.execute("create schema if not exists bench")
    conn.execute(f"create table {SCRATCH} (like chat_v11.metric_sample including all)")
    copy_sql = COPY_SQL.format(table=SCRATCH)
    kill_before = conn.execute("select kill_switch from public.chat_get_v11_rollout_state()").fetchone()[0]
    paths = ["jsonb"] + (["columnar"] if has_columnar else []) + ["copy"]
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

    for size in args.batch_sizes:
        batches = max(3, math.ceil(args.ingest_samples / size))
        results[size] = {p: PathResult() for p in paths}
        for timed in [False] + [True] * batches:  # one untimed round first: plans cached, buffers warm
            rows = buckets.batch(size)  # the jsonb path's rows, then the very same rows by COPY
            for path in paths:  # interleaved, so that a checkpoint or autovacuum hits every path alike
                one(path, buckets.batch(size) if path == "columnar" else rows,
                    results[size][path] if timed else None)
        line = ", ".join(f"{p} {results[size][p].rate:,.0f}/s" for p in paths)
        ctx.log(f"batches of {size:,} x {batches}: {line}")

    size = max(args.batch_sizes)
    profiles = {path: profile(ctx, buckets, path, size) for path in paths if path != "copy"}
    kill_after = conn.execute("select kill_switch from public.chat_get_v11_rollout_state()").fetchone()[0]
    if kill_after != kill_before:
        raise RuntimeError("the kill switch changed during the ingestion benchmark: the batches were not healthy")

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
            SummaryRow(f"ingestion {labels[path]}, best batch size ({best_size:,})", f"{count(best)} samples/s",
                       f">= {TARGET:,} samples/s", best >= TARGET)
        )
    copy_best = max(results[s]["copy"].rate for s in results)
    section.summary.append(SummaryRow("bare COPY of the same rows (reference)", f"{count(copy_best)} rows/s"))

    rows = []
    for size, by_path in results.items():
        ref = by_path["copy"].rate
        for path in paths:
            r = by_path[path]
            ratio = "1" if path == "copy" else f"{r.rate / ref:.2f}"
            met = "" if path == "copy" else verdict(r.rate >= TARGET)
            rows.append([f"{size:,}", labels[path], str(len(r.calls)), count(r.samples), f"{r.median_ms:.1f} ms",
                         count(r.rate), ratio, met])
    body = section.body
    body += [
        "Samples per second over the timed calls (sum of samples / sum of call times), for each batch size; "
        "the paths alternate batch by batch. Every batch is valid and healthy and made of new buckets older than "
        f"the history (so each call inserts); the table then holds {history.rows if history else 0:,}+ rows. "
        "Each call is its own transaction, commit included; the automatic-kill check runs inside the call "
        "(it finds no P0 event). The JSON text is built before the timer; psycopg's adaptation of the "
        "columnar path's Python lists (binary arrays) is inside it. The COPY reference writes the jsonb path's "
        f"rows into an empty scratch table `{SCRATCH}` (`LIKE chat_v11.metric_sample INCLUDING ALL`).",
        "",
    ]
    body += table(["batch", "path", "calls", "samples", "median call", "samples/s", "÷ COPY", f">= {TARGET:,}/s"],
                  rows, "rlrrrrrl")
    if not has_columnar:
        body += ["", f"`{COLUMNAR}` does not exist in this database: not measured."]
    elif adapt_seconds:
        body += ["", "psycopg's adaptation of the columnar path's lists alone (inside the timer above), per batch: "
                 + ", ".join(
                     f"{size:,}: {adapt_seconds[size] / len(results[size]['columnar'].calls) * 1000:.1f} ms"
                     for size in results)
                 + "."]
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
    return section
