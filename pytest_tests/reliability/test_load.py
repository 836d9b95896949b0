"""SPEC 4.6 under load: 16 clients x 200 mixed calls, each client on its own connection.

Kills, holds, rollbacks, promote / resume / unfreeze attempts, reads (state, gates, checks, history) and
ingestion of healthy samples, all at once on a rollout with green gates and no observation window, so every
kind of state change can be accepted. Afterwards: no lost update (state version = 1 + every accepted state
change, auto_kill rows included), no serialization failure or deadlock shown to a caller (every error is a
project RO0xx guard refusal), a contiguous history and a verified hash chain. No timing assertion.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import psycopg

from pytest_tests.support.calls import arrange_state, history, state
from pytest_tests.support.samples import healthy, put, sample

CLIENTS = 16
CALLS = 200
STAGES = ["off", "canary_1", "canary_5", "canary_25", "canary_50", "full"]
METRICS = [
    "ack_without_receipt_10s_rate",
    "timeline_duplicate_detected_rate",
    "read_rollback_detected_rate",
    "send_stall_rate",
    "pending_forever_count",
    "resync_range_unavailable_rate",
    "full_state_rate",
    "forced_resync_rate",
    "recovery_p95_ms",
]
# the guard refusals a racing client can meet: promotion skipping (from a stale view of the stage), frozen,
# Go/No-Go (killed, or no next stage), observation window, resume criteria or upwards, unfreeze refused
GUARD_REFUSALS = {"RO003", "RO004", "RO005", "RO006", "RO007", "RO008", "RO009", "RO017"}
OPERATIONS = {
    "kill": 2,
    "hold": 2,
    "rollback": 2,
    "promote": 4,
    "resume": 2,
    "lift_freeze": 3,
    "read_state": 3,
    "read_gates": 2,
    "read_checks": 1,
    "read_history": 1,
    "ingest": 2,
}
STATE_CALL = "select stage, version from chat_set_v11_rollout_state(%s, %s, %s)"


def current_bucket() -> datetime:
    now = time.time()
    return datetime.fromtimestamp(now - now % 10, tz=UTC)


def healthy_bucket() -> list[dict]:
    at = current_bucket()
    return [sample(m, c, at) for m in METRICS for c in ("control", "canary")]


def test_16_clients_x_200_mixed_calls_lose_no_update_and_show_only_guard_refusals(conn, db_url):
    healthy(conn, 40)  # green gates, and a P0 exit window covered by clean data: resumes can pass
    for stage in STAGES[1:]:
        conn.execute("select chat_set_v11_stage_settings(%s, null, '0')", (stage,))
    arrange_state(conn, "promote", "canary_1", False, False)
    start = state(conn)["version"]
    gates = conn.execute("select promotion_allowed, blockers from chat_get_v11_release_gates()").fetchone()
    assert gates[0] is True, gates[1]

    lock = threading.Lock()
    accepted: Counter[str] = Counter()
    refusals: Counter[tuple[str, str]] = Counter()
    unexpected: list[str] = []
    names, weights = zip(*OPERATIONS.items(), strict=True)

    def client(seed: int) -> None:
        rng = random.Random(seed)
        mine: Counter[str] = Counter()
        refused: Counter[tuple[str, str]] = Counter()
        try:
            with psycopg.connect(db_url, autocommit=True) as c:
                c.execute("select set_config('application_name', %s, false)", (f"load-{seed}",))
                stage = "canary_1"  # this client's (possibly stale) view of the stage
                for i in range(CALLS):
                    op = rng.choices(names, weights)[0]
                    at = STAGES.index(stage)
                    try:
                        if op == "kill":
                            target = rng.choice([stage, rng.choice(STAGES)])
                            stage = c.execute(STATE_CALL, (target, True, f"kill {seed}/{i}")).fetchone()[0]
                        elif op == "hold":
                            stage = c.execute(STATE_CALL, (stage, False, f"hold {seed}/{i}")).fetchone()[0]
                        elif op == "rollback":
                            target = STAGES[rng.randrange(at)] if at else "off"
                            stage = c.execute(STATE_CALL, (target, False, f"rollback {seed}/{i}")).fetchone()[0]
                        elif op == "promote":
                            target = STAGES[min(at + 1, len(STAGES) - 1)]
                            stage = c.execute(STATE_CALL, (target, False, f"promote {seed}/{i}")).fetchone()[0]
                        elif op == "resume":
                            target = STAGES[max(at - rng.randrange(2), 0)]
                            stage = c.execute(STATE_CALL, (target, False, f"resume {seed}/{i}")).fetchone()[0]
                        elif op == "lift_freeze":
                            c.execute("select stage from chat_lift_v11_freeze(%s)", (f"unfreeze {seed}/{i}",))
                        elif op == "read_state":
                            stage = c.execute("select stage from chat_get_v11_rollout_state()").fetchone()[0]
                            continue
                        elif op == "read_gates":
                            c.execute("select * from chat_get_v11_release_gates()").fetchone()
                            continue
                        elif op == "read_checks":
                            c.execute("select * from chat_get_v11_gate_checks()").fetchall()
                            continue
                        elif op == "read_history":
                            c.execute("select * from chat_get_v11_rollout_history(20)").fetchall()
                            continue
                        else:
                            assert put(c, healthy_bucket()) == 2 * len(METRICS)
                            continue
                        mine[op] += 1
                    except psycopg.Error as exc:
                        refused[(op, exc.diag.sqlstate or f"none: {exc}")] += 1
        except Exception as exc:  # reported below
            with lock:
                unexpected.append(f"client {seed}: {exc!r}")
        with lock:
            accepted.update(mine)
            refusals.update(refused)

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started

    rows = [r for r in history(conn, 100000) if r["version"] > start]
    actions = Counter(r["action"] for r in rows)
    summary = (
        f"{CLIENTS} x {CALLS} calls in {elapsed:.1f} s; accepted calls {dict(accepted)}; "
        f"history actions {dict(actions)}; refusals {dict(sorted(refusals.items()))}"
    )
    print(summary)
    assert not unexpected, unexpected
    assert {code for _, code in refusals} <= GUARD_REFUSALS, summary
    auto_kills = actions["auto_kill"]
    final = state(conn)
    # no lost update: every accepted call (and any automatic kill) is exactly one version
    assert final["version"] == start + sum(accepted.values()) + auto_kills, summary
    assert len(rows) == final["version"] - start, summary
    versions = sorted(r["version"] for r in history(conn, 100000))
    assert versions == list(range(1, final["version"] + 1))
    assert conn.execute("select ok from chat_verify_v11_history()").fetchone()[0] is True
    # the load reached every kind of change, so the proof covers each path
    assert {"kill", "hold", "rollback", "promote", "resume", "unfreeze"} <= set(actions), summary


def test_concurrent_batches_naming_the_same_buckets_in_any_order_do_not_deadlock(conn, db_url):
    failures: Counter[str] = Counter()
    lock = threading.Lock()
    failed = threading.Event()  # one deadlock is enough: each costs deadlock_timeout

    def writer(reverse: bool) -> None:
        with psycopg.connect(db_url, autocommit=True) as c:
            for _ in range(150):
                if failed.is_set():
                    return
                batch = healthy_bucket()
                if reverse:  # another exporter, another order (both are valid batches)
                    batch.reverse()
                try:
                    put(c, batch)
                except psycopg.Error as exc:
                    with lock:
                        failures[exc.diag.sqlstate] += 1
                    failed.set()

    threads = [threading.Thread(target=writer, args=(n % 2 == 1,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, dict(failures)
