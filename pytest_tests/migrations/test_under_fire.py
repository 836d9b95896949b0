"""Migrations under fire (issue "Reliability and security proof", part 7).

(a) upgrade -> downgrade -> upgrade on a database that holds history: rollout history beyond init, metric
    samples and an incident. Refused downgrades (RO013) change nothing; confirmed ones remove only the data
    their revision owns (incidents for 0003, samples for 0002) and never touch the rollout history.
(b) the top revision is downgraded and upgraded again while another session pulls the kill switch in a loop:
    the kill never hangs and never fails for any reason but RO010; the migration fails, if at all, on its own
    lock_timeout (55P03), never because of the kill.
(c) every offline (--sql) step starts with the two SET LOCAL timeouts, inside its transaction, before any DDL.
"""

from __future__ import annotations

import os
import re
import statistics
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import psycopg
import pytest
import sqlalchemy.exc

from chat_rollout import migrate, scenarios
from pytest_tests.support.calls import set_state
from pytest_tests.support.databases import create_database, drop_database
from pytest_tests.support.migrations import HEAD, alembic_version, psycopg_error
from pytest_tests.support.samples import put, sample

REVISIONS = ["0001", "0002", "0003"]
KILL = "select * from public.chat_set_v11_rollout_state('off', true, 'kill')"


# --- helpers ------------------------------------------------------------------------------------------------


def rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def table_exists(url: str, table: str) -> bool:
    return rows(url, f"select to_regclass('chat_v11.{table}') is not null")[0][0]


def rollout_history_rows(url: str) -> list[tuple]:
    """Every history row verbatim: hashes, gate snapshots and timestamps included."""
    return rows(url, "select * from chat_v11.rollout_history order by version")


def metric_sample_rows(url: str) -> list[tuple]:
    return rows(url, "select * from chat_v11.metric_sample order by metric, cohort, bucket_start")


def kept_data(url: str) -> dict:
    """What no downgrade to 0001 or above may change: the rollout's own tables, verbatim (the state row in the
    columns of revision 0001: revision 0005 adds the denormalized traffic_percent, which its downgrade drops)."""
    data = {
        table: rows(url, f"select * from chat_v11.{table} order by 1")
        for table in ("rollout_history", "config_change", "policy", "stage", "metric")
    }
    data["rollout_state"] = rows(
        url,
        "select singleton, stage, kill_switch, promotion_frozen, reason, changed_by, actor, changed_at, version "
        "from chat_v11.rollout_state",
    )
    return data


def everything(url: str) -> dict:
    data = kept_data(url)
    data["metric_sample"] = metric_sample_rows(url)
    data["incident"] = rows(url, "select * from chat_v11.incident order by 1")
    data["incident_entry"] = rows(url, "select * from chat_v11.incident_entry order by 1")
    return data


def verify(url: str) -> tuple:
    return rows(url, "select ok, rows_checked, first_broken_version, problem from public.chat_verify_v11_history()")[0]


def refused_downgrade(url: str, revision: str) -> psycopg.Error:
    with pytest.raises((psycopg.Error, sqlalchemy.exc.DBAPIError)) as info:
        migrate.downgrade(url, revision)
    return psycopg_error(info.value)


def make_history(url: str) -> None:
    """History beyond init, metric samples (a P0 event among them: automatic kill and a P0 incident), config
    changes and an operator's declaration joined to that incident's timeline (one incident at a time)."""
    anchor = scenarios.anchor_now()
    with psycopg.connect(url, autocommit=True) as conn:
        set_state(conn, "off", False, "hold before the canary")
        conn.execute("""select * from public.chat_set_v11_policy('state_lock_timeout', '"2 seconds"')""")
        healthy = []
        for k in range(6):
            t = anchor - timedelta(minutes=10) + timedelta(seconds=10 * k)
            healthy += [sample("send_stall_rate", "canary", t, 0, 500), sample("full_state_rate", "control", t, 3, 900)]
        put(conn, healthy)
        put(conn, [sample("ack_without_receipt_10s_rate", "canary", anchor - timedelta(minutes=5), 2, 300)])
        incident = conn.execute("select incident_id from public.chat_open_v11_incident('P2', 'slow resync')")
        incident_id = incident.fetchone()[0]
        conn.execute("select public.chat_log_v11_incident(%s, 'fact', 'resync p95 at 2 s')", (incident_id,))
        set_state(conn, "off", True, "kill again by hand")


# --- (a) upgrade -> downgrade -> upgrade on a database holding history ----------------------------------------


def test_downgrades_refuse_then_drop_only_their_own_data_and_keep_the_history(fresh_db):
    _, url = fresh_db
    make_history(url)
    before = everything(url)
    assert len(before["rollout_history"]) >= 4
    assert len(before["metric_sample"]) == 13
    assert {r[0] for r in rows(url, "select action from chat_v11.rollout_history")} >= {"init", "auto_kill", "kill"}
    assert rows(url, "select count(*) from chat_v11.incident")[0][0] == 1  # the P2 declaration joined the P0

    # refused (RO013), all the way down and one step down: nothing changes
    for revision in ("base", "0001", "0002"):
        err = refused_downgrade(url, revision)
        assert err.sqlstate == "RO013", (revision, err)
        assert err.diag.message_detail and err.diag.message_hint
        assert alembic_version(url) == [HEAD]
        assert everything(url) == before, f"a refused downgrade to {revision} changed data"
    assert "incidents" in refused_downgrade(url, "0002").diag.message_detail

    # head -> 0002 confirmed: incidents go, rollout history and samples stay, row for row
    migrate.downgrade(url, "0002", drop_data=True)
    assert alembic_version(url) == ["0002"]
    assert not table_exists(url, "incident") and not table_exists(url, "incident_entry")
    assert kept_data(url) == {k: before[k] for k in kept_data(url)}
    assert metric_sample_rows(url) == before["metric_sample"]
    assert verify(url)[:2] == (True, len(before["rollout_history"]))

    # 0002 -> 0001 refused while samples exist, with the 0002 hint
    err = refused_downgrade(url, "0001")
    assert err.sqlstate == "RO013" and "metric samples" in err.diag.message_detail
    assert alembic_version(url) == ["0002"]
    assert metric_sample_rows(url) == before["metric_sample"]

    # back to head: the history chain verifies, the API works, history and samples are the same rows
    migrate.upgrade(url)
    assert alembic_version(url) == [HEAD]
    assert verify(url)[:2] == (True, len(before["rollout_history"]))
    assert rollout_history_rows(url) == before["rollout_history"]
    assert metric_sample_rows(url) == before["metric_sample"]
    assert rows(url, "select count(*) from chat_v11.incident")[0][0] == 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select public.chat_open_v11_incident('P2', 'after the round trip')")
        assert (
            set_state(conn, "off", True, "kill after the round trip")["version"] == len(before["rollout_history"]) + 1
        )
    assert verify(url)[0] is True

    # 0002 -> 0001 confirmed: samples go, history stays; then up to head again
    history_before = rollout_history_rows(url)
    migrate.downgrade(url, "0002", drop_data=True)
    migrate.downgrade(url, "0001", drop_data=True)
    assert alembic_version(url) == ["0001"]
    assert not table_exists(url, "metric_sample")
    assert rollout_history_rows(url) == history_before
    assert verify(url)[:2] == (True, len(history_before))

    # 0001 -> base is still refused: the history beyond init is operator data
    err = refused_downgrade(url, "base")
    assert err.sqlstate == "RO013"
    assert rollout_history_rows(url) == history_before

    migrate.upgrade(url)
    assert alembic_version(url) == [HEAD]
    assert rollout_history_rows(url) == history_before
    assert verify(url)[:2] == (True, len(history_before))
    assert metric_sample_rows(url) == []
    with psycopg.connect(url, autocommit=True) as conn:
        assert set_state(conn, "off", True, "kill at the end")["version"] == len(history_before) + 1
    assert verify(url)[0] is True


# --- (b) the kill switch in a loop while the top revision goes down and up -------------------------------------

MIGRATION_CYCLES = 10
KILL_MARGIN_S = 3.0  # scheduling, connecting and the call itself, beyond state_lock_timeout


@dataclass
class Fire:
    url: str
    lock_timeout_s: float
    samples_before: list
    kills: list[tuple[float, float, str | None, str]]  # (start, seconds, sqlstate or None, first line)
    migration_results: list[tuple[str, str | None, str]]  # (step, sqlstate or None, first line)
    t0: float
    t1: float

    def during(self) -> list[tuple[float, float, str | None, str]]:
        return [k for k in self.kills if self.t0 <= k[0] <= self.t1]


@pytest.fixture(scope="module")
def fire(pg_server, template_db):
    """One run, shared by the assertions below: a kill loop in one thread, MIGRATION_CYCLES downgrades of the
    top revision (drop_data confirmed) and upgrades back in another, on a clone holding history."""
    name = f"chat_rollout_fire_{os.getpid()}"
    url = create_database(pg_server, name, template=template_db)
    try:
        yield _under_fire(url)
    finally:
        drop_database(pg_server, name)


def _under_fire(url: str) -> Fire:
    make_history(url)
    lock_timeout_s = float(rows(url, "select extract(epoch from chat_v11.policy_interval('state_lock_timeout'))")[0][0])
    samples_before = metric_sample_rows(url)
    stop = threading.Event()
    kills: list = []
    migration_results: list = []
    crashed: list[BaseException] = []

    def kill_loop() -> None:
        try:
            # a client-side ceiling only, so that a hang shows as a failure instead of a stuck run
            # prepared statements off: revision 0006 changes the kill's result type (the action column), and a
            # statement prepared before a migration cannot run after it (0A000, docs/design.md)
            with psycopg.connect(
                url, autocommit=True, options="-c statement_timeout=30s", prepare_threshold=None
            ) as conn:
                while not stop.is_set():
                    start = time.monotonic()
                    try:
                        conn.execute(KILL).fetchall()
                        outcome, message = None, ""
                    except psycopg.Error as exc:
                        outcome, message = exc.diag.sqlstate, str(exc).splitlines()[0]
                        if exc.diag.context:
                            message += " | " + exc.diag.context.splitlines()[0]
                    kills.append((start, time.monotonic() - start, outcome, message))
        except BaseException as exc:  # pragma: no cover - reported below
            crashed.append(exc)

    def migration_loop() -> None:
        try:
            for _ in range(MIGRATION_CYCLES):
                for step, run in (
                    ("downgrade 0002", lambda: migrate.downgrade(url, "0002", drop_data=True)),
                    ("upgrade head", lambda: migrate.upgrade(url)),
                ):
                    try:
                        run()
                        migration_results.append((step, None, ""))
                    except (psycopg.Error, sqlalchemy.exc.DBAPIError) as exc:
                        err = psycopg_error(exc)
                        sqlstate = getattr(err, "sqlstate", None) or "?"
                        migration_results.append((step, sqlstate, str(err).splitlines()[0]))
        except BaseException as exc:  # pragma: no cover - reported below
            crashed.append(exc)
        finally:
            stop.set()

    killer = threading.Thread(target=kill_loop, name="kill-loop")
    killer.start()
    time.sleep(0.2)  # the loop runs before the first DDL
    t0 = time.monotonic()
    migrator = threading.Thread(target=migration_loop, name="migration")
    migrator.start()
    migrator.join(timeout=300)
    t1 = time.monotonic()
    stop.set()
    killer.join(timeout=lock_timeout_s + 60)
    assert not migrator.is_alive() and not killer.is_alive(), "a thread hangs"
    assert not crashed, crashed

    result = Fire(url, lock_timeout_s, samples_before, kills, migration_results, t0, t1)
    latencies = sorted(k[1] for k in result.during())
    assert latencies, "no kill ran during the migrations"
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    print(
        f"\nFIGURE kill_during_migration p50={p50 * 1000:.1f}ms p99={p99 * 1000:.1f}ms "
        f"max={latencies[-1] * 1000:.1f}ms n={len(latencies)} cycles={MIGRATION_CYCLES} "
        f"migration_s={t1 - t0:.2f} kill_errors={sorted({k[2] for k in result.during() if k[2]})} "
        f"migration_errors={sorted({r[1] for r in migration_results if r[1]})}"
    )
    return result


def test_the_kill_never_hangs_while_the_top_revision_is_downgraded_and_upgraded(fire):
    slow = [k for k in fire.kills if k[1] > fire.lock_timeout_s + KILL_MARGIN_S]
    assert not slow, f"kill took longer than state_lock_timeout {fire.lock_timeout_s}s + {KILL_MARGIN_S}s: {slow[:5]}"
    assert any(k[2] is None for k in fire.during()), "no kill succeeded during the migrations"


def test_the_migration_fails_only_on_its_own_lock_timeout_never_because_of_the_kill(fire):
    bad_steps = [r for r in fire.migration_results if r[1] not in (None, "55P03")]
    assert not bad_steps, bad_steps
    assert any(r[1] is None for r in fire.migration_results if r[0] == "downgrade 0002"), fire.migration_results


def test_after_the_fire_the_kill_switch_works_and_the_history_verifies(fire):
    url = fire.url
    if alembic_version(url) != [HEAD]:
        migrate.upgrade(url)
    assert alembic_version(url) == [HEAD]
    with psycopg.connect(url, autocommit=True) as conn:
        killed = set_state(conn, "off", True, "kill after the migrations")
    assert killed["kill_switch"] is True
    ok, checked, broken, problem = verify(url)
    assert (ok, broken, problem) == (True, None, None)
    assert checked == killed["version"]
    versions = [r[0] for r in rows(url, "select version from chat_v11.rollout_history order by 1")]
    assert versions == list(range(1, checked + 1))
    assert metric_sample_rows(url) == fire.samples_before


def test_the_kill_fails_only_with_ro010_while_the_top_revision_is_downgraded_and_upgraded(fire):
    bad_kills = [k for k in fire.kills if k[2] not in (None, "RO010")]
    assert not bad_kills, f"kill failed with something else than RO010: {bad_kills[:3]}"


# --- (c) every offline step starts with the two SET LOCAL timeouts ---------------------------------------------

_PAIRS = list(zip(["base", *REVISIONS[:-1]], REVISIONS, strict=True))
STEPS = (
    [("upgrade", f"{a}:{b}", False) for a, b in _PAIRS]
    + [("downgrade", f"{b}:{a}", False) for a, b in _PAIRS]
    + [("downgrade", f"{b}:{a}", True) for a, b in _PAIRS]
)


def statements(script: str) -> list[str]:
    """The script's top-level statements, comments and blank lines dropped, dollar-quoted bodies kept whole."""
    out: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for line in script.splitlines():
        if quote is None and (not line.strip() or line.lstrip().startswith("--")):
            continue
        current.append(line)
        for tag in re.findall(r"\$[A-Za-z_]*\$", line):
            quote = None if quote == tag else (quote or tag)
        if quote is None and line.rstrip().endswith(";"):
            out.append(" ".join(" ".join(current).split()))
            current = []
    if current:
        out.append(" ".join(" ".join(current).split()))
    return out


@pytest.mark.parametrize(
    "direction, step, drop_data", STEPS, ids=[f"{d}-{s}{'-drop_data' if x else ''}" for d, s, x in STEPS]
)
def test_every_offline_step_sets_both_timeouts_before_any_ddl(direction, step, drop_data):
    script = migrate.offline_sql(step, downgrade_to=direction == "downgrade", drop_data=drop_data)
    stmts = statements(script)
    assert stmts[:3] == [
        "BEGIN;",
        "SET LOCAL lock_timeout = '5s';",
        "SET LOCAL statement_timeout = '5min';",
    ], stmts[:5]
    # one transaction: SET LOCAL holds for every statement after it
    assert [s for s in stmts if s.upper() in ("BEGIN;", "COMMIT;", "ROLLBACK;")] == ["BEGIN;", "COMMIT;"]
    assert stmts[-1] == "COMMIT;"
    assert len(stmts) > 6, "the step runs nothing"
    # no later statement loosens them
    later = [s for s in stmts[3:] if re.match(r"(?i)set\s+(local\s+)?(lock|statement)_timeout", s)]
    later += [s for s in stmts[3:] if re.search(r"(?i)set_config\(\s*'(lock|statement)_timeout'", s) and "$" not in s]
    assert not later, later
    # then the state table in ACCESS EXCLUSIVE mode: state calls wait in peek_state()/lock_state() (RO010), never
    # on a dropped object, and no later lock upgrade can deadlock with them
    assert stmts[3].startswith("DO $state_lock$")
    assert "LOCK TABLE chat_v11.rollout_state IN ACCESS EXCLUSIVE MODE" in stmts[3]
    if drop_data:
        assert stmts[4] == "SET LOCAL chat_rollout.drop_data = 'yes';"
