"""The application client (SPEC 8): ``in_canary`` throughput, a kill reaching 50 clients, recovery after a restart.

- ``in_canary``: calls per second of ``RolloutClient.in_canary(key)`` on a started client (state at canary_25, kill
  switch off: every call hashes), one thread, distinct keys ``user-<n>``; floors in the same run: the bare rule
  ``assignment.in_canary(assignment.bucket(salt, key), percent, False)`` and a bare ``hashlib.sha256`` of the
  same bytes (``salt:key``, encoded beforehand). Best of 3 interleaved passes of each.
- Kill to 50 clients: 50 ``RolloutClient`` s connected to the bench database, in worker processes (one process of 50
  clients, and 5 processes of 10: 50 client threads in one process take turns on the GIL). Each round the state
  is reset to stage off, kill switch off (as the owner, through ``chat_v11.lock_state``/``apply_transition``;
  every client holds that version first), then the operator's kill ``chat_set_v11_rollout_state('off', true,
  'kill')`` runs; the time runs from just before the kill call to the moment the last of the 50 clients holds the
  kill (its ``on_change`` callback, which runs after the new state is published). Clocks: ``time.monotonic_ns``
  (CLOCK_MONOTONIC, one clock for every process of the machine). Floor, same layout, same run: a bare
  ``NOTIFY`` to 50 psycopg connections LISTENing in threads of the same worker processes, until the last holds it.
  The two are measured one after the other (the server's 100 connections cannot hold both sets at once).
- Restart: a private PostgreSQL cluster (the binaries of the bench server when they are on this machine), initdb'ed
  in a temporary folder, migrated, one client connected; ``pg_ctl stop -m fast``, ``pg_ctl start``; from the moment
  the server accepts connections again (polled every 5 ms) a state change is committed at once, and the time runs
  until the client holds it: reconnected and reloaded. With ``backoff_initial`` 1.0 (the default) and 0.2.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import time

import psycopg

from chat_rollout.client import RolloutClient, assignment
from chat_rollout.server import ServerUnavailable

from .client_kill import FLOOR_CHANNEL, KILL, kill_rounds, quiet_client_log
from .client_restart import recovery, reset
from .common import Context, Latency, Section, SummaryRow, count, ms, table

TITLE = "Application client"
CLIENTS = 50
KILL_P99_TARGET = 10.0  # ms: SPEC 6, kill start -> 50 connected application clients hold it
LAYOUTS = [(1, 50), (5, 10)]  # (processes, clients each)


# --- in_canary throughput -------------------------------------------------------------------------------------------


def rate(fn, items: list, seconds: float) -> float:
    """Calls per second of ``fn`` over ``items`` (cycled) for about ``seconds``."""
    done, t0 = 0, time.perf_counter()
    while True:
        for item in items:
            fn(item)
        done += len(items)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return done / elapsed


def throughput(ctx: Context, seconds: float) -> dict[str, float]:
    version = reset(ctx.conn, "canary_25")
    keys = [f"user-{n}" for n in range(10_000)]
    with RolloutClient(ctx.url) as client:
        if not client.wait_ready(10) or not client.wait_for_version(version, 10):
            raise RuntimeError("the client did not load the state")
        state = client.state
        salt, percent = state.salt, state.traffic_percent
        data = [f"{salt}:{k}".encode() for k in keys]
        sha256 = hashlib.sha256
        bucket, rule = assignment.bucket, assignment.in_canary
        inside = sum(client.in_canary(k) for k in keys)
        if inside != sum(rule(bucket(salt, k), percent, False) for k in keys):
            raise RuntimeError("the client and the bare rule disagree")
        runs: dict[str, list[float]] = {"client": [], "rule": [], "sha256": []}
        for _ in range(3):
            runs["client"].append(rate(client.in_canary, keys, seconds))
            runs["rule"].append(rate(lambda k: rule(bucket(salt, k), percent, False), keys, seconds))
            runs["sha256"].append(rate(lambda b: sha256(b).digest(), data, seconds))
    reset(ctx.conn)
    return {name: max(values) for name, values in runs.items()} | {"inside": inside / len(keys)}


def run(ctx: Context) -> Section:
    smoke = getattr(ctx.args, "smoke", False)
    quiet_client_log()
    seconds = 0.1 if smoke else 1.0
    rounds, warmup = (5, 1) if smoke else (300, 10)
    restarts = 1 if smoke else 3
    section = Section(TITLE)

    rates = throughput(ctx, seconds)
    ctx.log(
        f"  in_canary: {rates['client']:,.0f} calls/s (bare rule {rates['rule']:,.0f}, bare sha256 "
        f"{rates['sha256']:,.0f})"
    )

    kills: dict[tuple[int, int], dict[str, Latency]] = {}
    for processes, each in LAYOUTS:
        lat = kill_rounds(ctx, processes, each, rounds, warmup)
        kills[(processes, each)] = lat
        ctx.log(
            f"  kill -> {CLIENTS} clients in {processes} process(es): p50 {lat['all'].p50:.3f} ms, p99 "
            f"{lat['all'].p99:.3f} ms (bare NOTIFY p99 {lat['bare all'].p99:.3f} ms, durable UPDATE + NOTIFY p99 "
            f"{lat['durable all'].p99:.3f} ms; the kill call alone p50 "
            f"{lat['call'].p50:.3f} ms, p99 {lat['call'].p99:.3f} ms; load {os.getloadavg()[0]:.2f})"
        )

    restart_error = None
    try:
        restart = recovery(ctx, restarts)
        for initial, got in restart.items():
            ctx.log(
                f"  restart, backoff_initial {initial:g}: up -> held median "
                f"{statistics.median(got['up to held']):.2f} s"
            )
    except (ServerUnavailable, RuntimeError, psycopg.Error, OSError) as exc:
        restart, restart_error = {}, f"{type(exc).__name__}: {exc}"
        ctx.log(f"  restart not measured: {restart_error}")

    target = not smoke
    headline = kills[LAYOUTS[-1]]
    head_procs, head_each = LAYOUTS[-1]
    section.summary += [
        SummaryRow(
            "`RolloutClient.in_canary` calls/s, one thread",
            f"{count(rates['client'])} calls/s "
            f"({rates['client'] / rates['rule']:.2f} x bare bucket + rule, {rates['client'] / rates['sha256']:.2f}"
            " x bare sha256)",
        ),
        SummaryRow(
            f"kill call start -> {CLIENTS} connected clients hold it, p99 ({head_procs} processes x {head_each})",
            f"{ms(headline['all'].p99)} ({headline['all'].p99 / headline['bare all'].p99:.1f} x bare NOTIFY, "
            f"{headline['all'].p99 / headline['durable all'].p99:.1f} x durable UPDATE + NOTIFY to {CLIENTS} "
            f"listeners; the kill call alone {ms(headline['call'].p99)})",
            f"<= {KILL_P99_TARGET:g} ms",
            headline["all"].p99 <= KILL_P99_TARGET if target else None,
        ),
    ]
    for (processes, each), lat in kills.items():
        if (processes, each) != LAYOUTS[-1]:
            section.summary.append(
                SummaryRow(
                    f"kill call start -> {CLIENTS} clients hold it, p99 ({processes} process x {each} threads)",
                    f"{ms(lat['all'].p99)} ({lat['all'].p99 / lat['bare all'].p99:.1f} x bare NOTIFY, "
                    f"{lat['all'].p99 / lat['durable all'].p99:.1f} x durable UPDATE + NOTIFY)",
                )
            )
    for initial, got in restart.items():
        section.summary.append(
            SummaryRow(
                f"client recovery after a server restart, backoff_initial {initial:g} s, median",
                f"{statistics.median(got['up to held']):.2f} s from the server accepting connections "
                f"({statistics.median(got['stop to held']):.2f} s from the stop)",
            )
        )

    section.body += [
        "`RolloutClient.in_canary(key)` on a started client holding stage canary_25 (kill switch off: every call "
        f"hashes), one thread, 10,000 distinct keys `user-<n>` cycled, about {seconds:g} s per pass, best of 3 "
        "interleaved passes. Floors in the same run: the bare rule `assignment.in_canary(assignment.bucket(salt, "
        "key), percent, False)` and a bare `hashlib.sha256(b).digest()` of the same bytes `salt:key`, encoded "
        f"beforehand. {rates['inside']:.1%} of the keys are in (target share 25 %).",
        "",
        *table(
            ["call", "calls/s", "÷ bare rule", "÷ bare sha256"],
            [
                [
                    "`client.in_canary(key)`",
                    count(rates["client"]),
                    f"{rates['client'] / rates['rule']:.2f}",
                    f"{rates['client'] / rates['sha256']:.2f}",
                ],
                [
                    "bare `in_canary(bucket(salt, key), percent, False)`",
                    count(rates["rule"]),
                    "1",
                    f"{rates['rule'] / rates['sha256']:.2f}",
                ],
                ["bare `sha256(salt:key bytes).digest()`", count(rates["sha256"]), "", "1"],
            ],
            "lrrr",
        ),
        "",
        f"Kill to {CLIENTS} clients: {CLIENTS} `RolloutClient` s (defaults: LISTEN, poll every 5 s) connected to "
        "the bench database from worker processes. Each round the state is reset to stage off, kill switch off "
        "(owner, `chat_v11.apply_transition`), every client holds that version, then `" + KILL + "` runs; the time "
        f"runs from just before the call to the moment the last of the {CLIENTS} clients holds the kill (its "
        "`on_change` callback, which runs after the new state is published to `in_canary`). Between rounds, "
        "untimed, the current bucket's samples go through the public ingestion path every 5 s, as in production: "
        "the kill records the evaluation ingestion stored (issue 19) instead of evaluating the gates over the "
        "bench's 64 days of samples. "
        f"{warmup} warm-up rounds, then {rounds} timed. Clock: `time.monotonic_ns` (CLOCK_MONOTONIC, shared by "
        f"the processes). Floors: `notify {FLOOR_CHANNEL}` (autocommit, no write), and a durable transaction "
        "`update` of a one-row table + the same `notify` (`synchronous_commit = on`, as the kill's commit), each "
        f"to {CLIENTS} psycopg connections LISTENing in threads of the same layout of worker processes, until the "
        "first / median / last holds it (the two floors interleaved, in the rounds just before the clients': the "
        "server's 100 connections cannot hold the listeners and the clients at once). The kill's own call time "
        "(its durable commit, which the notification waits for) is in the last row of each layout. 50 client "
        "threads in one process take turns on the GIL to read and apply the notification; 5 processes of 10 "
        "spread them over the CPUs (the summary's figure).",
        "",
        *table(
            [
                "layout",
                "measure",
                "p50",
                "p99",
                "n",
                "bare NOTIFY p50",
                "p99",
                "durable UPDATE + NOTIFY p50",
                "p99",
                "p99 ÷ bare",
                "p99 ÷ durable",
            ],
            [
                [
                    f"{p} x {e}",
                    label,
                    ms(lat[key].p50),
                    ms(lat[key].p99),
                    str(lat[key].n),
                    *(
                        [
                            ms(lat[f"bare {floor}"].p50),
                            ms(lat[f"bare {floor}"].p99),
                            ms(lat[f"durable {floor}"].p50),
                            ms(lat[f"durable {floor}"].p99),
                            f"{lat[key].p99 / lat[f'bare {floor}'].p99:.1f}",
                            f"{lat[key].p99 / lat[f'durable {floor}'].p99:.1f}",
                        ]
                        if floor
                        else [""] * 6
                    ),
                ]
                for (p, e), lat in kills.items()
                for label, key, floor in (
                    ("kill start -> the last client holds it", "all", "all"),
                    ("kill start -> the median client holds it", "median", "median"),
                    ("kill start -> the first client holds it", "first", "first"),
                    ("the kill call itself (start -> its row, durable commit included)", "call", None),
                )
            ],
            "llrrrrrrrrr",
        ),
        "",
    ]
    if restart_error is not None:
        section.body.append(f"Restart: not measured here ({restart_error}).")
    else:
        section.body += [
            "Restart: a private cluster (the bench server's binaries, `initdb` in a temporary folder, `fsync = off`, "
            "migrated), one client connected (poll every 5 s, jitter 0.2). `pg_ctl stop -m fast`, then `pg_ctl start`; "
            "the server is polled every 5 ms until it accepts a connection, then a state change is committed at "
            "once; the time runs until the client holds it (reconnected after its backoff, LISTENing, reloaded). "
            f"{restarts} restart(s) per backoff; the client's reconnect delays are backoff_initial, then twice it, "
            "each plus up to 20 % jitter, so the recovery is about the first delay that ends after the server is "
            "back.",
            "",
            *table(
                [
                    "backoff_initial",
                    "server down (stop -> accepting), median",
                    "accepting -> client holds, median",
                    "max",
                    "stop -> client holds, median",
                    "reconnects per restart",
                ],
                [
                    [
                        f"{initial:g} s",
                        f"{statistics.median(got['down']):.2f} s",
                        f"{statistics.median(got['up to held']):.2f} s",
                        f"{max(got['up to held']):.2f} s",
                        f"{statistics.median(got['stop to held']):.2f} s",
                        ", ".join(str(n) for n in got["reconnects"]),
                    ]
                    for initial, got in restart.items()
                ],
                "lrrrrl",
            ),
        ]
    return section
