"""Where the kill switch's milliseconds go: a standalone profile of one kill call (not wired into the runner).

    python -m tools.bench.kill_profile --url postgresql://postgres@127.0.0.1:5432/mydb [--days 3] [--samples 300]

The database must be migrated (``alembic upgrade head``); the role must own the schema (the history is loaded
with COPY as the owner, the state is reset through chat_v11.lock_state/apply_transition). It measures, on one
server, in this order:

1. the floor: a bare durable UPDATE + INSERT commit (one-row scratch table + history-like row), a bare
   ``NOTIFY`` round trip to a LISTENing connection, ``SELECT 1``;
2. the kill's steps, timed inside the server with ``clock_timestamp()`` by a scratch copy of the kill's code
   path (schema ``kill_profile``, dropped at the end): lock helpers, gate evaluation (``evaluate_gates``
   directly when the installed kill does so, as in revision 0005, else ``current_gates`` as in 0004), the state
   row + history row (hash chain trigger) + NOTIFY, then the commit measured by the client;
3. the kill call ``select * from public.chat_set_v11_rollout_state('off', true, 'incident P0')`` from a live
   stage (``--from-stage``, default canary_1, kill switch off: every check is evaluated), the state reset
   between samples as the owner; p50/p99;
4. kill call start -> a LISTENing psycopg client (another connection, a thread of this process) holding the
   ``chat_v11_rollout`` notification of that kill; same reset between samples; p50/p99.

History: when ``chat_v11.metric_sample`` is empty, ``--days`` days of healthy samples (every metric, both
cohorts, 10-second buckets) are COPYed first, as tools/bench/history.py does; buckets up to now are topped up
before each phase so the data stays fresh (freshness is 2 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time

import psycopg

from .history import BUCKET, catalog_series, copy_buckets, server_anchor

KILL = "select * from public.chat_set_v11_rollout_state('off', true, 'incident P0')"
CHANNEL = "chat_v11_rollout"

# A scratch copy of the kill's path through chat_set_v11_rollout_state (and the functions it calls), with a
# clock_timestamp() after each step. Same calls, same order; the commit is timed by the client.
STEPS_SQL = """
create schema if not exists kill_profile;
create or replace function kill_profile.kill_steps(p_stage text, p_reason text, p_new_path boolean)
returns table (step text, ms double precision)
language plpgsql
volatile
set search_path = pg_catalog, chat_v11, pg_temp
as $f$
declare
    t timestamptz := clock_timestamp();
    t2 timestamptz;
    v_reason text;
    v_state record;
    v_seen record;
    v_now timestamptz;
    v_cur integer;
    v_tgt integer;
    v_snapshot jsonb;
    v_new record;
    v_saved text := current_setting('lock_timeout');
begin
    perform chat_v11.begin_write('chat_set_v11_rollout_state');
    v_reason := chat_v11.checked_reason(p_reason);
    t2 := clock_timestamp(); step := 'begin_write + checked_reason';
    ms := extract(epoch from t2 - t) * 1000; t := t2; return next;
    if not p_new_path then
        select p.* into v_seen from chat_v11.peek_state() as p;
        t2 := clock_timestamp(); step := 'peek_state (subtransaction)';
        ms := extract(epoch from t2 - t) * 1000; t := t2; return next;
    end if;
    v_state := chat_v11.lock_state();
    v_now := clock_timestamp();
    select s.ordinal into v_cur from chat_v11.stage as s where s.stage = v_state.stage;
    select s.ordinal into v_tgt from chat_v11.stage as s where s.stage = p_stage;
    t2 := clock_timestamp(); step := 'lock_state (subtransaction) + stage ordinals';
    ms := extract(epoch from t2 - t) * 1000; t := t2; return next;
    if p_new_path then
        select jsonb_build_object(
                   'evaluated_at', to_char(v_now at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   'gate_p0_ok', g.gate_p0_ok, 'gate_p1_ok', g.gate_p1_ok,
                   'rollout_decision', g.rollout_decision, 'failing_checks', to_jsonb(g.failing_checks))
          into v_snapshot
          from chat_v11.evaluate_gates(v_now, v_state.stage, v_state.kill_switch, v_state.promotion_frozen,
                                       null, null) as g;
        t2 := clock_timestamp(); step := 'gates (evaluate_gates -> evaluate_checks, verdict only)';
    else
        select g.snapshot into v_snapshot from chat_v11.current_gates(v_now) as g;
        t2 := clock_timestamp(); step := 'gates (current_gates -> state_at, evaluate_gates -> evaluate_checks)';
    end if;
    ms := extract(epoch from t2 - t) * 1000; t := t2; return next;
    v_new := chat_v11.apply_transition('kill', v_state.stage, true, true, v_reason, null, v_snapshot, null);
    t2 := clock_timestamp(); step := 'apply_transition (UPDATE, INSERT + hash chain, NOTIFY)';
    ms := extract(epoch from t2 - t) * 1000; t := t2; return next;
    perform set_config('lock_timeout', v_saved, true);
    perform v_new.version, t.traffic_percent from chat_v11.stage as t where t.stage = v_new.stage;
    t2 := clock_timestamp(); step := 'result row';
    ms := extract(epoch from t2 - t) * 1000; t := t2; return next;
end
$f$;
create or replace function kill_profile.parts(p_at timestamptz)
returns table (step text, ms double precision)
language plpgsql
volatile
set search_path = pg_catalog, chat_v11, pg_temp
as $f$
declare
    t timestamptz;
    r record;
begin
    t := clock_timestamp();
    perform count(*) from chat_v11.evaluate_checks(p_at, 'canary_1', false);
    step := 'part: evaluate_checks alone'; ms := extract(epoch from clock_timestamp() - t) * 1000; return next;
    t := clock_timestamp();
    select * into r from chat_v11.state_at('infinity');
    step := 'part: state_at(infinity) (stage start from the history)';
    ms := extract(epoch from clock_timestamp() - t) * 1000; return next;
    t := clock_timestamp();
    perform chat_v11.history_row_hash(h) from chat_v11.rollout_history as h order by h.version desc limit 1;
    step := 'part: history_row_hash of the newest row'; ms := extract(epoch from clock_timestamp() - t) * 1000;
    return next;
end
$f$;
"""


def pct(values: list[float], q: float) -> float:
    cuts = statistics.quantiles(values, n=1000, method="inclusive")
    return cuts[round(q * 1000) - 1]


def summary(name: str, values: list[float]) -> str:
    return (f"{name:<58} p50 {statistics.median(values):7.3f} ms  p90 {pct(values, 0.9):7.3f}  "
            f"p99 {pct(values, 0.99):7.3f}  min {min(values):7.3f}  n {len(values)}")


class Data:
    """Keeps the samples fresh: loads --days days when the table is empty, tops up to now before each phase."""

    def __init__(self, conn: psycopg.Connection, days: int) -> None:
        self.conn = conn
        self.series = catalog_series(conn)
        newest = conn.execute("select extract(epoch from max(bucket_start))::bigint from chat_v11.metric_sample"
                              ).fetchone()[0]
        if newest is None:
            now = server_anchor(conn)
            t0 = time.perf_counter()
            rows = copy_buckets(conn, self.series, now - days * 86400 + BUCKET, now)
            conn.execute("vacuum (analyze) chat_v11.metric_sample")
            print(f"loaded {rows:,} rows ({days} days) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            newest = now
        self.newest = newest

    def top_up(self) -> None:
        now = server_anchor(self.conn)
        if now > self.newest:
            copy_buckets(self.conn, self.series, self.newest + BUCKET, now)
            self.newest = now


def reset(conn: psycopg.Connection, stage: str) -> None:
    with conn.transaction():
        conn.execute("select chat_v11.lock_state()")
        conn.execute("select chat_v11.apply_transition('rollback', %s, false, false, 'kill profile reset', "
                     "null, null, null)", (stage,))


class Listener:
    """A thread LISTENing on one channel of its own connection: `got` is set and `at` holds time.perf_counter()
    when a notification whose payload `accept` takes arrives. A context manager: LISTEN on entry, UNLISTEN on exit."""

    def __init__(self, conn: psycopg.Connection, channel: str, accept=lambda payload: True) -> None:
        self.conn, self.channel, self.accept = conn, channel, accept
        self.got = threading.Event()
        self.at = 0.0
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop:
            for note in self.conn.notifies(timeout=0.2):
                if self.accept(note.payload):
                    self.at = time.perf_counter()
                    self.got.set()

    def __enter__(self) -> Listener:
        self.conn.execute(f"listen {self.channel}")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop = True
        self._thread.join(timeout=5)
        self.conn.execute(f"unlisten {self.channel}")


def floor(conn: psycopg.Connection, listen: psycopg.Connection, n: int) -> dict[str, list[float]]:
    conn.execute("create schema if not exists kill_profile")
    conn.execute("create table if not exists kill_profile.state_ref (id int primary key, version bigint not null, "
                 "changed_at timestamptz not null)")
    conn.execute("insert into kill_profile.state_ref values (1, 1, now()) on conflict do nothing")
    conn.execute("create table if not exists kill_profile.history_ref (id bigint generated always as identity "
                 "primary key, stage text not null, reason text not null, "
                 "changed_at timestamptz not null default clock_timestamp())")
    out: dict[str, list[float]] = {"select 1": [], "bare UPDATE + INSERT, durable commit": [],
                                   "bare NOTIFY -> listener holds it": []}
    cur = conn.cursor()
    clock = time.perf_counter
    for i in range(n + 20):
        t0 = clock()
        cur.execute("select 1", prepare=True).fetchone()
        t1 = clock()
        with conn.transaction():
            cur.execute("update kill_profile.state_ref set version = version + 1, changed_at = clock_timestamp() "
                        "where id = 1", prepare=True)
            cur.execute("insert into kill_profile.history_ref (stage, reason) values ('off', 'incident P0')",
                        prepare=True)
        t2 = clock()
        if i >= 20:
            out["select 1"].append((t1 - t0) * 1000)
            out["bare UPDATE + INSERT, durable commit"].append((t2 - t1) * 1000)
    with Listener(listen, "kill_profile_x") as heard:
        for i in range(n + 20):
            heard.got.clear()
            t0 = clock()
            cur.execute("notify kill_profile_x, 'x'", prepare=True)
            if not heard.got.wait(10):
                raise RuntimeError("no notification")
            if i >= 20:
                out["bare NOTIFY -> listener holds it"].append((heard.at - t0) * 1000)
            time.sleep(0.001)
    return out


def steps(conn: psycopg.Connection, data: Data, stage: str, n: int) -> dict[str, list[float]]:
    # revision 0005's kill path: no peek_state, evaluate_gates directly (no current_gates/state_at)
    new_path = conn.execute("select p.prosrc not like '%%current_gates(v_now)%%' or p.prosrc like "
                            "'%%chat_v11.evaluate_gates(%%' from pg_proc as p where p.oid = "
                            "'public.chat_set_v11_rollout_state(text, boolean, text)'::regprocedure").fetchone()[0]
    conn.execute(STEPS_SQL)
    out: dict[str, list[float]] = {}
    cur = conn.cursor()
    for i in range(n + 10):
        if i % 50 == 0:
            data.top_up()
        reset(conn, stage)
        with conn.transaction():
            rows = cur.execute("select * from kill_profile.kill_steps('off', 'incident P0', %s)", (new_path,),
                               prepare=True).fetchall()
            t0 = time.perf_counter()
        commit = (time.perf_counter() - t0) * 1000
        parts = cur.execute("select * from kill_profile.parts(clock_timestamp())", prepare=True).fetchall()
        if i >= 10:
            for step, ms in [*rows, ("commit (client: COMMIT round trip, WAL flush)", commit), *parts]:
                out.setdefault(step, []).append(ms)
    return out


def kills(conn: psycopg.Connection, data: Data, stage: str, n: int) -> list[float]:
    cur = conn.cursor()
    out = []
    for i in range(n + 20):
        if i % 50 == 0:
            data.top_up()
        reset(conn, stage)
        t0 = time.perf_counter()
        cur.execute(KILL, prepare=True).fetchone()
        t1 = time.perf_counter()
        if i >= 20:
            out.append((t1 - t0) * 1000)
        time.sleep(0.002)
    return out


def notifications(conn: psycopg.Connection, listen: psycopg.Connection, data: Data, stage: str,
                  n: int) -> list[float]:
    cur = conn.cursor()
    out = []
    with Listener(listen, CHANNEL, lambda payload: json.loads(payload).get("action") == "kill") as heard:
        for i in range(n + 20):
            if i % 50 == 0:
                data.top_up()
            reset(conn, stage)
            time.sleep(0.003)  # the reset's own notification reaches the listener (and is ignored) first
            heard.got.clear()
            t0 = time.perf_counter()
            cur.execute(KILL, prepare=True).fetchone()
            if not heard.got.wait(10):
                raise RuntimeError(f"no kill notification on {CHANNEL}")
            if i >= 20:
                out.append((heard.at - t0) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL"), help="a migrated database (owner role)")
    parser.add_argument("--days", type=int, default=3, help="days of samples to load into an empty table")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--from-stage", default="canary_1", help="the stage each kill stops (kill switch off)")
    parser.add_argument("--only", choices=["floor", "steps", "kill", "notify"], action="append")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("--url or DATABASE_URL is required")
    only = set(args.only or ["floor", "steps", "kill", "notify"])
    with psycopg.connect(args.url, autocommit=True) as conn, psycopg.connect(args.url, autocommit=True) as listen:
        server = conn.execute("select version()").fetchone()[0]
        rows = conn.execute("select count(*) from chat_v11.rollout_history").fetchone()[0]
        print(f"# {server}\n# history rows at start: {rows:,}; kills from stage {args.from_stage}")
        data = Data(conn, args.days)
        try:
            if "floor" in only:
                for name, values in floor(conn, listen, args.samples).items():
                    print(summary(name, values))
            if "steps" in only:
                for name, values in steps(conn, data, args.from_stage, args.samples).items():
                    print(summary(name, values))
            if "kill" in only:
                print(summary("kill call (client round trip)", kills(conn, data, args.from_stage, args.samples)))
            if "notify" in only:
                print(summary("kill call start -> listener holds the notification",
                              notifications(conn, listen, data, args.from_stage, args.samples)))
        finally:
            conn.execute("drop schema if exists kill_profile cascade")
            reset(conn, "off")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
