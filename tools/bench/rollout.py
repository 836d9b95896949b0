"""The kill switch: its latency (alone and under load), its notification, and state-change throughput.

- Throughput: ``chat_set_v11_rollout_state('off', false, 'hold')`` by 8 contending pgbench clients (prepared,
  custom script), against a bare reference: UPDATE of a one-row table + INSERT of a history-like row in scratch
  tables (``bench.state_ref``, ``bench.history_ref``), same pgbench settings. Runs first, with the state reset to
  stage off, kill switch off (as a superuser, through chat_v11.lock_state/apply_transition), then one batch of the
  current bucket through the public path, as ingestion sends one every 10 s: a hold records that batch's gate
  evaluation (issue 19; target >= 0.5 x bare).
- Kill latency: ``select * from chat_set_v11_rollout_state('off', true, 'kill')``, each its own transaction,
  without load and while 8 load processes read the state, evaluate the gates and ingest healthy columnar batches
  of 1000 samples (binary params); the reference is the bare UPDATE + INSERT transaction, interleaved with the kills.
- The notification (kill start -> a LISTENing client holds it) is ``kill_path.py``'s (issue 19: at canary_1 with
  real data, against a bare UPDATE+INSERT+NOTIFY); ``Listener`` and ``notify_latency`` stay here for it and for
  other callers.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time

import psycopg

from .common import Context, Latency, Section, SummaryRow, count, ms, run_pgbench, table
from .common import pgbench_path as pgbench_path  # noqa: F401  (re-exported: it lived here)
from .history import BUCKET, catalog_series, sample_fields, server_anchor
from .ingest import PUT_COLUMNAR, Buckets, as_columns

TITLE = "Kill switch and state changes"
KILL = "select * from public.chat_set_v11_rollout_state('off', true, 'kill')"
HOLD = "select * from public.chat_set_v11_rollout_state('off', false, 'hold');"
BARE_TX = ("update bench.state_ref set version = version + 1, changed_at = clock_timestamp() where id = 1;\n"
           "insert into bench.history_ref (stage, kill_switch, reason) values ('off', false, 'hold');")
KILL_P99_TARGET = 50.0  # ms, under load
HOLD_RATIO_TARGET = 0.5  # issue 19: hold throughput >= 0.5 x the bare UPDATE+INSERT
CLIENTS = 8
LOAD_BATCH = 1000


def pgbench(ctx: Context, script: str, seconds: int) -> float:
    return run_pgbench(ctx, script, seconds, clients=CLIENTS, jobs=CLIENTS)


def reset_state(ctx: Context) -> None:
    """Stage off, kill switch off, as the owner/superuser (bypasses the guards: it is the bench's own setting)."""
    with ctx.connect() as conn, conn.transaction():
        conn.execute("select chat_v11.lock_state()")
        conn.execute("select chat_v11.apply_transition('rollback', 'off', false, false, 'benchmark reset', "
                     "null, null, null)")


def feed_current_bucket(conn) -> None:
    """The current bucket's healthy samples (every metric, both cohorts) through the public path, as ingestion sends
    them every 10 s: the gate evaluation it stores (chat_v11.gate_evaluation, at most one every 5 s) is what a kill,
    a hold or a rollback records for a minute (issue 19)."""
    series = catalog_series(conn)
    epoch = server_anchor(conn)
    batch = [(s.metric, s.cohort, epoch, *sample_fields(s, epoch // BUCKET, k)) for k, s in enumerate(series)]
    conn.execute(PUT_COLUMNAR, as_columns(batch), prepare=True)


def load_client(url: str, index: int, before: int, stop, started, errors) -> None:
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            series = catalog_series(conn)
            buckets = Buckets(series, before)
            cur = conn.cursor()
            started.release()
            step = index
            while not stop.is_set():
                kind = step % 3
                step += 1
                if kind == 0:
                    cur.execute("select * from public.chat_get_v11_rollout_state()", prepare=True).fetchall()
                elif kind == 1:
                    cur.execute("select * from public.chat_get_v11_release_gates()", prepare=True).fetchall()
                else:
                    batch = buckets.batch(LOAD_BATCH)
                    written = cur.execute(PUT_COLUMNAR, as_columns(batch), prepare=True).fetchone()[0]
                    if written != len(batch):
                        raise RuntimeError(f"load ingest wrote {written} of {len(batch)}")
    except Exception as exc:  # reported to the parent
        errors.put(f"load client {index}: {exc!r}")
        started.release()


def kills(ctx: Context, n: int, warmup: int) -> tuple[Latency, Latency]:
    """n kills, each followed by a bare UPDATE + INSERT transaction (reference), on one autocommit connection."""
    with ctx.connect() as conn:
        cur = conn.cursor()
        clock = time.perf_counter_ns
        kill_ms, ref_ms = [], []
        for i in range(warmup + n):
            t0 = clock()
            row = cur.execute(KILL, prepare=True).fetchone()
            t1 = clock()
            with conn.transaction():
                cur.execute(BARE_TX.split(";\n")[0], prepare=True)
                cur.execute(BARE_TX.split(";\n")[1].rstrip(";"), prepare=True)
            t2 = clock()
            if row is None:
                raise RuntimeError("kill returned no row")
            if i >= warmup:
                kill_ms.append((t1 - t0) / 1e6)
                ref_ms.append((t2 - t1) / 1e6)
            time.sleep(0.005)
    return Latency(kill_ms), Latency(ref_ms)


def kill_under_load(ctx: Context, n: int, warmup: int) -> tuple[Latency, Latency, int]:
    oldest = ctx.conn.execute("select extract(epoch from min(bucket_start))::bigint from chat_v11.metric_sample"
                              ).fetchone()[0]
    if oldest is None:
        oldest = int(time.time()) // 10 * 10 - 40 * 86400
    oldest -= 10 * 86400  # clear of the ingestion benchmark's buckets
    mpc = mp.get_context("spawn")
    stop, started, errors = mpc.Event(), mpc.Semaphore(0), mpc.Queue()
    procs = [mpc.Process(target=load_client, args=(ctx.url, k, oldest - k * 20 * 86400, stop, started, errors),
                         daemon=True) for k in range(CLIENTS)]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            started.acquire(timeout=60)
        time.sleep(0.5)
        kill, ref = kills(ctx, n, warmup)
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=30)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    if problems:
        raise RuntimeError("; ".join(problems))
    return kill, ref, CLIENTS


class Listener:
    def __init__(self, ctx: Context) -> None:
        self.conn = ctx.connect()
        self.conn.execute("listen chat_v11_rollout")
        self.conn.execute("listen x")
        self.got = threading.Event()
        self.at = 0.0
        self.channel = ""
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self) -> None:
        while self.running:
            for note in self.conn.notifies(timeout=0.2):
                self.at = time.perf_counter()
                self.channel = note.channel
                self.got.set()

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=5)
        self.conn.close()


def notify_latency(ctx: Context, n: int, warmup: int) -> tuple[Latency, Latency]:
    listener = Listener(ctx)
    kill_ms, ref_ms = [], []
    try:
        with ctx.connect() as conn:
            cur = conn.cursor()
            for i in range(warmup + n):
                for query, channel, out in ((KILL, "chat_v11_rollout", kill_ms), ("notify x, 'payload'", "x", ref_ms)):
                    listener.got.clear()
                    t0 = time.perf_counter()
                    cur.execute(query, prepare=True)
                    if not listener.got.wait(10):
                        raise RuntimeError(f"no notification on {channel}")
                    if listener.channel != channel:
                        raise RuntimeError(f"notification on {listener.channel}, expected {channel}")
                    if i >= warmup:
                        out.append((listener.at - t0) * 1000)
                time.sleep(0.002)
    finally:
        listener.close()
    return Latency(kill_ms), Latency(ref_ms)


def run(ctx: Context) -> Section:
    args = ctx.args
    smoke = getattr(args, "smoke", False)
    n_kills = 10 if smoke else 200
    warmup = 2 if smoke else 20
    seconds = 1 if smoke else 10
    conn = ctx.conn
    conn.execute("create schema if not exists bench")
    conn.execute("create table if not exists bench.state_ref (id int primary key, stage text not null, "
                 "kill_switch boolean not null, version bigint not null, changed_at timestamptz not null)")
    conn.execute("insert into bench.state_ref values (1, 'off', false, 1, now()) on conflict do nothing")
    conn.execute("create table if not exists bench.history_ref (id bigint generated always as identity primary key, "
                 "stage text not null, kill_switch boolean not null, reason text not null, "
                 "changed_at timestamptz not null default clock_timestamp())")

    history = ctx.get_history()
    if history.rows == 0:  # the holds and kills act on real data in the windows
        history.extend_to(1)
    history.top_up()
    history.maintain()  # the load's statistics and checkpoint now, not during the hold and its floor
    reset_state(ctx)
    feed_current_bucket(conn)  # ingestion's most recent evaluation, as every 10 s in production
    ctx.log(f"  pgbench: {CLIENTS} clients x {seconds} s, hold, then the bare UPDATE + INSERT")
    tps_hold = pgbench(ctx, HOLD, seconds)
    tps_bare = pgbench(ctx, "begin;\n" + BARE_TX + "\ncommit;", seconds)
    ctx.log(f"  hold {tps_hold:,.0f} tps, bare {tps_bare:,.0f} tps")

    idle_kill, idle_ref = kills(ctx, n_kills, warmup)
    ctx.log(f"  kill without load: p50 {idle_kill.p50:.3f} ms, p99 {idle_kill.p99:.3f} ms")
    load_kill, load_ref, clients = kill_under_load(ctx, n_kills, warmup)
    ctx.log(f"  kill under load: p50 {load_kill.p50:.3f} ms, p99 {load_kill.p99:.3f} ms")
    accepted = conn.execute("select count(*) from chat_v11.rollout_history where reason = 'kill'").fetchone()[0]
    reset_state(ctx)

    target = not smoke
    section = Section(TITLE)
    section.summary += [
        SummaryRow("kill p99 under load (8 clients)", f"{ms(load_kill.p99)} ({load_kill.p99 / load_ref.p99:.1f} x "
                   "bare UPDATE+INSERT p99)", f"<= {KILL_P99_TARGET:g} ms",
                   load_kill.p99 <= KILL_P99_TARGET if target else None),
        SummaryRow("kill p99 without load", f"{ms(idle_kill.p99)} ({idle_kill.p99 / idle_ref.p99:.1f} x bare)"),
        SummaryRow(f"`chat_set_v11_rollout_state` hold, {CLIENTS} clients",
                   f"{count(tps_hold)} tps ({tps_hold / tps_bare:.2f} x bare UPDATE+INSERT, {count(tps_bare)} tps)",
                   f">= {HOLD_RATIO_TARGET:g} x bare", tps_hold / tps_bare >= HOLD_RATIO_TARGET if target else None),
    ]
    rows = []
    for label, lat, ref, refname in (
        ("kill, without load", idle_kill, idle_ref, "bare UPDATE + INSERT"),
        (f"kill, under load ({clients} clients)", load_kill, load_ref, "bare UPDATE + INSERT"),
    ):
        rows.append([label, ms(lat.p50), ms(lat.p99), str(lat.n), refname, ms(ref.p50), ms(ref.p99),
                     f"{lat.p99 / ref.p99:.1f}"])
    section.body += [
        "Kills: `" + KILL + "` on an autocommit connection (prepared, one transaction per call, durable commit "
        f"forced by the function), {warmup} warm-up kills then the timed ones, 5 ms apart; each kill is followed "
        "by the reference transaction (UPDATE of a one-row scratch table + INSERT of a history-like row, "
        f"`bench.state_ref`/`bench.history_ref`). Under load, {clients} separate processes loop over "
        "`chat_get_v11_rollout_state()`, `chat_get_v11_release_gates()` and healthy columnar batches of "
        f"{LOAD_BATCH:,} samples (binary arrays) through `chat_put_v11_metric_samples(text[], …)`. "
        f"{accepted:,} kills were accepted and recorded in `chat_v11.rollout_history`.",
        "",
        "The kill's notification (kill start -> a LISTENing client holds it, at canary_1 with real data, against "
        "a bare UPDATE+INSERT+NOTIFY) is measured in the next section.",
        "",
        *table(["measure", "p50", "p99", "n", "reference", "ref p50", "ref p99", "p99 ÷ ref"], rows, "lrrrlrrr"),
        "",
        f"Throughput: pgbench, {CLIENTS} clients, {CLIENTS} threads, `-M prepared`, {seconds} s each, state reset "
        "to stage off with the kill switch off first, after a `VACUUM (ANALYZE)` of the samples and a `CHECKPOINT` "
        "(the history load's work done before, not during, the hold and its floor).",
        "",
        *table(["script", "tps", "÷ bare"],
               [[f"`{HOLD}`", count(tps_hold), f"{tps_hold / tps_bare:.2f}"],
                ["bare: `begin; update` one-row table; `insert` history-like row; `commit;`", count(tps_bare), "1"]],
               "lrr"),
    ]
    return section
