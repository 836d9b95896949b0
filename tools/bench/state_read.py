"""Rollout-state read throughput: ``chat_get_v11_rollout_state()`` against ``SELECT 1`` (SPEC 6: >= 0.66 x).

pgbench, 8 clients on 2 threads (``-c 8 -j 2``), ``-M prepared``, one statement per transaction, three scripts
alternated run by run (the order rotates each round) and the median TPS of each kept:

- ``select 1`` (the reference), as the database owner;
- ``select * from chat_v11.rollout_state`` as the owner: a direct read of the one-row table, the physical ceiling
  of any function that reads it;
- ``select * from public.chat_get_v11_rollout_state()`` as a LOGIN role that is only a member of
  ``chat_rollout_reader`` (not a superuser, no other grant): the real read path of an application.

The login role is created for the run (cluster-wide, a name with this process id) and dropped after it.
"""

from __future__ import annotations

import os
import secrets
import statistics

import psycopg
from psycopg import sql

from .common import Context, Section, SummaryRow, count, run_pgbench, table

TITLE = "Rollout-state read throughput"
RATIO_TARGET = 0.66  # SPEC 6 (2026-12): keep >= 0.66 and report the ceiling
CLIENTS, JOBS = 8, 2
SCRIPTS = {
    "select 1": ("select 1;", "owner", "`select 1` (reference)"),
    "table": ("select * from chat_v11.rollout_state;", "owner", "`select * from chat_v11.rollout_state` (owner)"),
    "function": ("select * from public.chat_get_v11_rollout_state();", "reader",
                 "`select * from public.chat_get_v11_rollout_state()` (reader)"),
}


def reader_url(ctx: Context, role: str, password: str) -> str:
    """The bench database's conninfo as ``role`` (key=value form, which pgbench takes as its dbname)."""
    return psycopg.conninfo.make_conninfo(ctx.url, user=role, password=password)


def create_reader(ctx: Context) -> tuple[str, str]:
    role = f"bench_reader_{os.getpid()}"
    password = secrets.token_hex(16)
    ctx.conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))
    ctx.conn.execute(
        sql.SQL("create role {} login nosuperuser nocreatedb nocreaterole inherit password {} in role "
                "chat_rollout_reader").format(sql.Identifier(role), sql.Literal(password))
    )
    return role, password


def drop_reader(ctx: Context, role: str) -> None:
    try:
        ctx.conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))
    except psycopg.Error as exc:  # still connected somewhere: the runner drops the database, a later run the role
        ctx.log(f"  drop role {role}: {exc}")


def check_reader(url: str) -> tuple[str, str]:
    """What the reader sees: one row from the function, and the refusal of a direct table read."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select stage, version from public.chat_get_v11_rollout_state()").fetchone()
        if row is None:
            raise RuntimeError("chat_get_v11_rollout_state() returned no row for the reader")
        super_ = conn.execute("select rolsuper from pg_catalog.pg_roles where rolname = current_user").fetchone()[0]
        if super_:
            raise RuntimeError("the reader role is a superuser")
        try:
            conn.execute("select * from chat_v11.rollout_state").fetchall()
            direct = "allowed"
        except psycopg.Error as exc:
            direct = f"refused ({exc.sqlstate})"
    return f"stage {row[0]}, version {row[1]}", direct


def run(ctx: Context) -> Section:
    args = ctx.args
    smoke = getattr(args, "smoke", False)
    runs = 1 if smoke else args.read_runs
    seconds = 1 if smoke else args.read_seconds
    role, password = create_reader(ctx)
    urls = {"owner": ctx.url, "reader": reader_url(ctx, role, password)}
    tps: dict[str, list[float]] = {k: [] for k in SCRIPTS}
    try:
        seen, direct = check_reader(urls["reader"])
        ctx.log(f"  reader {role}: function -> {seen}; direct table read {direct}")
        ctx.log(f"  pgbench -c {CLIENTS} -j {JOBS} -M prepared -T {seconds}, {runs} round(s) of {len(SCRIPTS)}")
        names = list(SCRIPTS)
        for r in range(runs):
            for name in names[r % len(names):] + names[: r % len(names)]:
                script, who, _ = SCRIPTS[name]
                value = run_pgbench(ctx, script, seconds, clients=CLIENTS, jobs=JOBS, url=urls[who])
                tps[name].append(value)
                ctx.log(f"  round {r + 1}: {name}: {value:,.0f} tps")
    finally:
        drop_reader(ctx, role)

    med = {k: statistics.median(v) for k, v in tps.items()}
    ratio = med["function"] / med["select 1"]
    ceiling = med["table"] / med["select 1"]
    ctx.facts["state_read"] = {"median_tps": med, "ratio": ratio, "ceiling": ceiling}
    section = Section(TITLE)
    section.summary += [
        SummaryRow("`chat_get_v11_rollout_state()` throughput as a reader, 8 clients (÷ `SELECT 1`)",
                   f"{ratio:.2f} ({count(med['function'])} / {count(med['select 1'])} tps)",
                   f">= {RATIO_TARGET:g} x `SELECT 1`", ratio >= RATIO_TARGET),
        SummaryRow("direct read of `chat_v11.rollout_state` as the owner (÷ `SELECT 1`: the physical ceiling)",
                   f"{ceiling:.2f} ({count(med['table'])} tps)"),
    ]
    rows = []
    for name, (_, who, label) in SCRIPTS.items():
        rows.append([label, "owner" if who == "owner" else f"`{role}`", count(med[name]),
                     ", ".join(count(x) for x in tps[name]), f"{med[name] / med['select 1']:.2f}"])
    section.body += [
        f"pgbench, {CLIENTS} clients on {JOBS} threads (`-c {CLIENTS} -j {JOBS} -M prepared -T {seconds} -n`), one "
        f"statement per transaction, {runs} round(s) of the three scripts (the order rotates each round), median "
        "TPS of each. `select 1` and the direct table read run as the database owner; the function runs as "
        f"`{role}`, a LOGIN role created for the run that is only a member of `chat_rollout_reader` (not a "
        f"superuser): the read path of an application. Checked before: the function gives the reader one row "
        f"({seen}); a direct `select` of `chat_v11.rollout_state` by the reader is {direct}.",
        "",
        *table(["statement", "as", "median tps", "runs (tps)", "÷ `select 1`"], rows, "llrlr"),
        "",
        f"Target (SPEC 6): the function >= {RATIO_TARGET:g} x `select 1`: here {ratio:.2f}; the direct read of the "
        f"one-row table, {ceiling:.2f}, is what any function over that table can at best reach.",
    ]
    return section
