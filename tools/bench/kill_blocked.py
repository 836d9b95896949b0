"""The kill switch when something holds a project table: latency of the operator's kill while DDL holds (or queues
for) ACCESS EXCLUSIVE on each table of chat_v11, and while partition maintenance keeps giving up behind a long
reader (issue 12's "Done when": p99 <= state_lock_timeout + 50 ms, ending in success or RO010).

    python -m tools.bench.kill_blocked --url postgresql://postgres@127.0.0.1:5432/mydb [--kills 20] [--timeout-ms 300]

The database must be migrated and owned by the role in the URL (it arranges the state as the owner). It prints one
Markdown table: per scenario the outcomes, p50, p99 and max, and whether p99 <= timeout + 50 ms.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg

TABLES = [
    "policy", "stage", "metric", "rollout_state", "rollout_history", "config_change", "incident", "incident_entry",
    "metric_sample", "metric_sample_default",
]
KILL = "select kill_switch from public.chat_set_v11_rollout_state('canary_5', true, %s)"


def _reset(owner: psycopg.Connection) -> None:
    with owner.transaction():
        owner.execute("select chat_v11.lock_state()")
        owner.execute(
            "select chat_v11.apply_transition('promote', 'canary_5', false, false, 'bench arrangement', null, null,"
            " 'bench')"
        )


def _kills(url: str, owner: psycopg.Connection, n: int) -> tuple[list[float], dict[str, int]]:
    """n kills in a row (after the first, each is a repeated kill: the same path, recorded again)."""
    latencies, outcomes = [], {}
    with psycopg.connect(url, autocommit=True, application_name="oncall") as oncall:
        for i in range(n):
            started = time.perf_counter()
            try:
                oncall.execute(KILL, (f"bench kill {i}",)).fetchone()
                outcome = "ok"
            except psycopg.Error as exc:
                outcome = exc.diag.sqlstate or "?"
            latencies.append(time.perf_counter() - started)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return latencies, outcomes


def _held(url: str, owner, table: str, n: int):
    _reset(owner)
    with psycopg.connect(url, application_name=f"ddl-{table}") as ddl:
        ddl.execute(f"lock table chat_v11.{table} in access exclusive mode")
        try:
            return _kills(url, owner, n)
        finally:
            ddl.rollback()


def _queued(url: str, owner, table: str, n: int):
    _reset(owner)
    with psycopg.connect(url, application_name=f"reader-{table}") as reader, \
            psycopg.connect(url, application_name=f"ddl-{table}") as ddl:
        reader.execute(f"select 1 from chat_v11.{table} limit 1")
        ddl.execute("set lock_timeout = '60s'")

        def queue() -> None:
            try:
                ddl.execute(f"lock table chat_v11.{table} in access exclusive mode")
            except psycopg.Error:
                pass

        t = threading.Thread(target=queue)
        t.start()
        while not owner.execute(
            "select count(*) from pg_locks where pid = %s and not granted", (ddl.info.backend_pid,)
        ).fetchone()[0]:
            time.sleep(0.005)
        try:
            return _kills(url, owner, n)
        finally:
            reader.rollback()
            t.join(10)
            ddl.rollback()


def _maintenance(url: str, owner, n: int):
    """A long reader of the metric store while maintenance runs in a loop and keeps giving up on an expired day."""
    old = (datetime.now(UTC) - timedelta(days=12)).date()
    owner.execute("select chat_v11.ensure_sample_partitions(%s, %s)", (old, old))
    owner.execute("select chat_set_v11_policy('retention', '\"5 days\"')")
    stop = threading.Event()
    _reset(owner)
    with psycopg.connect(url, application_name="long reader") as reader:
        reader.execute("select count(*) from chat_v11.metric_sample")

        def loop() -> None:
            with psycopg.connect(url, autocommit=True) as m:
                while not stop.is_set():
                    m.execute("select * from chat_run_v11_maintenance()").fetchall()

        t = threading.Thread(target=loop)
        t.start()
        try:
            return _kills(url, owner, n)
        finally:
            stop.set()
            t.join(30)
            reader.rollback()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--timeout-ms", type=int, default=300)
    args = parser.parse_args()
    bound = args.timeout_ms + 50
    with psycopg.connect(args.url, autocommit=True) as owner:
        owner.execute("select chat_set_v11_policy('state_lock_timeout', %s::jsonb)", (f'"{args.timeout_ms} ms"',))
        scenarios = [(f"{how} ACCESS EXCLUSIVE on chat_v11.{table}", how, table)
                     for table in TABLES for how in ("held", "queued")]
        print(f"state_lock_timeout {args.timeout_ms} ms, {args.kills} kills per scenario, bound {bound} ms\n")
        print("| scenario | outcomes | p50 ms | p99 ms | max ms | p99 <= bound |")
        print("|---|---|---|---|---|---|")
        worst = 0.0
        rows = [(name, lambda h=how, t=table: (_held if h == "held" else _queued)(args.url, owner, t, args.kills))
                for name, how, table in scenarios]
        rows.append(("partition maintenance behind a long reader", lambda: _maintenance(args.url, owner, args.kills)))
        for name, run in rows:
            latencies, outcomes = run()
            latencies.sort()
            p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))] * 1000
            worst = max(worst, p99)
            print(f"| {name} | {', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))} | "
                  f"{statistics.median(latencies) * 1000:.1f} | {p99:.1f} | {latencies[-1] * 1000:.1f} | "
                  f"{'yes' if p99 <= bound else '**no**'} |")
        print(f"\nworst p99 {worst:.1f} ms (bound {bound} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
