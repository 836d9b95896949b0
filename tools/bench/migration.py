"""`alembic upgrade head` on an empty database (chat_rollout.migrate.upgrade), median of 3, against creating it."""

from __future__ import annotations

import os
import statistics
import time

import psycopg

from chat_rollout import migrate

from .common import Context, Section, SummaryRow, table

TITLE = "Migration time"


def run(ctx: Context) -> Section:
    runs = 1 if getattr(ctx.args, "smoke", False) else 3
    upgrade, create = [], []
    admin = psycopg.connect(ctx.server.url, autocommit=True)
    try:
        for i in range(runs):
            name = f"chat_rollout_bench_mig_{os.getpid()}_{i}"
            admin.execute(f'drop database if exists "{name}" with (force)')
            t0 = time.perf_counter()
            admin.execute(f'create database "{name}"')
            create.append(time.perf_counter() - t0)
            try:
                t0 = time.perf_counter()
                migrate.upgrade(ctx.server.url_for(name))
                upgrade.append(time.perf_counter() - t0)
            finally:
                admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        admin.close()
    up, cr = statistics.median(upgrade), statistics.median(create)
    ctx.log(f"  alembic upgrade head: median {up:.2f} s over {runs} (create database {cr:.2f} s)")
    section = Section(TITLE, summary=[SummaryRow("`alembic upgrade head` on an empty database, median",
                                                 f"{up:.2f} s ({up / cr:.1f} x `create database`)")])
    section.body += [
        f"`chat_rollout.migrate.upgrade` (in process) on a freshly created empty database, {runs} run(s); the "
        "reference is the `create database` before it.",
        "",
        *table(["step", "median", "runs"],
               [["`alembic upgrade head`", f"{up:.2f} s", ", ".join(f"{x:.2f}" for x in upgrade)],
                ["`create database` (reference)", f"{cr:.2f} s", ", ".join(f"{x:.2f}" for x in create)]], "lrl"),
    ]
    return section
