"""Verify time at N history rows: the full walk and the incremental walk from a checkpoint, against floors.

    python -m tools.bench.verify --url postgresql://postgres@127.0.0.1:5432/postgres [--rows 50000] [--runs 7]

It creates a scratch database on the server of --url (migrated to head), fills the history with N valid rows
through the chain trigger (the state row written in the same transaction, as apply_transition does), writes a
checkpoint 100 rows before the head, and times (median of --runs, after one warm-up): the floors, a seq scan
(`count(*)`) and sha256 over the same canonical bytes, then chat_verify_v11_history_full() and
chat_verify_v11_history() (from the checkpoint). Ratios to the floors measured in the same run are what count.
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg
from psycopg import conninfo

from chat_rollout import migrate

FILL = """
insert into chat_v11.rollout_history (version, changed_at, changed_by, actor, action, from_stage, to_stage,
    from_kill_switch, to_kill_switch, promotion_frozen, reason)
select g, clock_timestamp(), 'bench', null, 'hold', 'off', 'off', false, false, true, 'hold ' || g
  from generate_series(%(first)s::bigint, %(last)s::bigint) as g
"""
FOLLOW = """
update chat_v11.rollout_state as s
   set stage = h.to_stage, kill_switch = h.to_kill_switch, promotion_frozen = h.promotion_frozen, reason = h.reason,
       changed_by = h.changed_by, actor = h.actor, changed_at = h.changed_at, version = h.version
  from chat_v11.rollout_history as h
 where h.version = %(last)s::bigint
"""
QUERIES = {
    "floor: seq scan, count(*)": "select count(*) from chat_v11.rollout_history",
    "floor: sha256 over the same bytes": (
        "select count(sha256(convert_to(h.prev_hash || h.reason || h.changed_at::text || coalesce(h.note, ''), "
        "'UTF8'))) from chat_v11.rollout_history as h"
    ),
    "verify, full walk (chat_verify_v11_history_full)": "select * from chat_verify_v11_history_full()",
    "verify, from the checkpoint (chat_verify_v11_history)": "select * from chat_verify_v11_history()",
}


def fill(conn: psycopg.Connection, first: int, last: int) -> None:
    with conn.transaction():
        conn.execute(FILL, {"first": first, "last": last})
        conn.execute(FOLLOW, {"last": last})


def timed(conn: psycopg.Connection, sql: str, runs: int) -> float:
    conn.execute(sql).fetchall()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        conn.execute(sql).fetchall()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="a superuser URL of the server to use")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--since-checkpoint", type=int, default=100)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    name = "chat_rollout_bench_verify"
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f"drop database if exists {name} with (force)")
        admin.execute(f"create database {name}")
    url = conninfo.make_conninfo(args.url, dbname=name)
    try:
        migrate.upgrade(url)
        with psycopg.connect(url, autocommit=True) as conn:
            checkpoint_at = args.rows - args.since_checkpoint
            fill(conn, 2, checkpoint_at)
            conn.execute("select * from chat_checkpoint_v11_history(true)")
            fill(conn, checkpoint_at + 1, args.rows)
            conn.execute("vacuum analyze chat_v11.rollout_history")
            results = {label: timed(conn, sql, args.runs) for label, sql in QUERIES.items()}
            check = conn.execute("select ok, rows_checked from chat_verify_v11_history()").fetchone()
            full = conn.execute("select ok, rows_checked from chat_verify_v11_history_full()").fetchone()
        floor = results["floor: seq scan, count(*)"]
        sha = results["floor: sha256 over the same bytes"]
        print(f"{args.rows} history rows, checkpoint at {checkpoint_at}; verify ok={check[0]} "
              f"(incremental {check[1]} rows, full {full[1]} rows, ok={full[0]}); median of {args.runs}")
        print("| query | ms | x seq scan | x sha256 floor |")
        print("|---|---:|---:|---:|")
        for label, value in results.items():
            print(f"| {label} | {value:.2f} | {value / floor:.1f} | {value / sha:.2f} |")
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f"drop database if exists {name} with (force)")


if __name__ == "__main__":
    main()
