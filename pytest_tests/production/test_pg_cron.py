"""Issue 16 (SPEC 7, "Scheduled by pg_cron"): the documented schedule runs the guardrails as an ingest login on
Debian's pg_cron 1.4, and the run history is bounded.

SLOW: one private PostgreSQL 15 cluster (``shared_preload_libraries = 'pg_cron'``, ``cron.database_name =
'chat_cron'``, ``cron.use_background_workers = on``) for the whole module, and ONE wait for a pg_cron tick: pg_cron
1.4 schedules by the minute (``'5 seconds'`` is "invalid schedule" there), so the module waits up to ~70 s once, then
every test reads what that tick did. Skipped with the reason when PostgreSQL 15 or its pg_cron
(``apt-get install postgresql-15-cron``) is not installed.

Two migrated databases on the cluster, both at canary_1:

- ``chat_cron`` (pg_cron's own database) with no P0 data (stale): scheduled exactly as README says
  (``cron.schedule_in_database('chat-guardrails', '* * * * *', …, current_database(), 'cron_ingest')``), with the
  hourly maintenance and the run-history cleanup (both switched to every minute for this test only), and a job of
  a reader login, which fails every run and shows it only in ``cron.job_run_details``;
- ``chat_cron_b`` with a failing P0 sample the writer did not act on (``auto_kill`` was off then): scheduled by
  ``chat-rollout schedule --ingest-login cron_ingest_b --apply`` (the jobs of another database, pg_cron 1.4's
  ``schedule_in_database``).
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from chat_rollout import PROJECT_ROOT, migrate, scenarios
from chat_rollout.cli import schedule
from pytest_tests.support.calls import arrange_state, history, invoke, state
from pytest_tests.support.cluster import PG15_BIN, private_cluster, unavailable_reason
from pytest_tests.support.samples import put, sample

PG_CRON_LIBRARY = PG15_BIN.parent / "lib" / "pg_cron.so"
CRON_DB, OTHER_DB = "chat_cron", "chat_cron_b"
INGEST, OTHER_INGEST, READER = "cron_ingest", "cron_ingest_b", "cron_reader"
MAX_TICK_WAIT = 70  # seconds: the next whole minute, plus the jobs' own run time

#: README's schedule on pg_cron 1.4, verbatim (the test runs it and checks README still says it).
DOCUMENTED = {
    "chat-guardrails": "select cron.schedule_in_database('chat-guardrails', '* * * * *', "
    "'select * from public.chat_run_v11_guardrails()', current_database(), 'cron_ingest')",
    "chat-progression": "select cron.schedule_in_database('chat-progression', '* * * * *', "
    "'select * from public.chat_run_v11_progression()', current_database(), 'cron_ingest')",
    "chat-maintenance": "select cron.schedule_in_database('chat-maintenance', '17 * * * *', "
    "'select * from public.chat_run_v11_maintenance()', current_database(), 'cron_ingest')",
    "chat-cron-history": "select cron.schedule_in_database('chat-cron-history', '47 * * * *', "
    "$$delete from cron.job_run_details where end_time < now() - interval '7 days'$$, current_database(), "
    "current_user::text)",
}


def _unavailable() -> str | None:
    reason = unavailable_reason(15)
    if reason is None and not PG_CRON_LIBRARY.exists():
        reason = f"no pg_cron for PostgreSQL 15 ({PG_CRON_LIBRARY} is missing: apt-get install postgresql-15-cron)"
    return reason


def words(text: str) -> str:
    return " ".join(text.split())


def run_rows(conn: psycopg.Connection) -> list[dict]:
    cur = conn.cursor(row_factory=dict_row)
    return cur.execute(
        "select d.runid, d.jobid, j.jobname, d.database, d.username, d.status, d.return_message, d.start_time, "
        "d.end_time from cron.job_run_details d left join cron.job j using (jobid) order by d.runid"
    ).fetchall()


def seconds_into_minute() -> float:
    now = datetime.now(UTC)
    return now.second + now.microsecond / 1e6


@pytest.fixture(scope="module")
def tick():
    """The cluster, the two databases, the jobs, and what one pg_cron tick did (waited for once)."""
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    with private_cluster(15) as cluster:
        for name in (CRON_DB, OTHER_DB):
            with cluster.connect() as c:
                c.execute(f'create database "{name}"')
            migrate.upgrade(cluster.url(name))  # as the migration role (here the cluster's superuser)
        # pg_cron reads its jobs in cron.database_name; its background workers run them without a password
        cluster.configure(
            shared_preload_libraries="'pg_cron'",
            max_worker_processes="16",
            **{"cron.database_name": f"'{CRON_DB}'", "cron.use_background_workers": "on"},
        )
        cluster.stop()
        cluster.start()
        with cluster.connect(CRON_DB) as cron, cluster.connect(OTHER_DB) as other:
            cron.execute("create extension pg_cron")  # created by the migration role after migrating
            for login_name, group in ((INGEST, "chat_rollout_ingest"), (OTHER_INGEST, "chat_rollout_ingest"),
                                      (READER, "chat_rollout_reader")):
                cron.execute(f"create role {login_name} login in role {group}")

            # chat_cron: canary_1 with no P0 data at all (stale): the guardrails freeze promotion
            arrange_state(cron, "promote", "canary_1", False, False)
            # chat_cron_b: canary_1 with a failing P0 sample the writer did not act on: the guardrails kill
            arrange_state(other, "promote", "canary_1", False, False)
            other.execute("select chat_set_v11_policy('auto_kill', 'false')")
            put(other, [sample("read_rollback_detected_rate", "canary", scenarios.anchor_now(), 1, 100)])
            other.execute("select chat_set_v11_policy('auto_kill', 'true')")
            assert state(other)["kill_switch"] is False

            # the history row the cleanup job must delete (8 days old); the runs of this tick must stay
            cron.execute(
                "insert into cron.job_run_details (jobid, runid, job_pid, database, username, command, status, "
                "return_message, start_time, end_time) values (0, nextval('cron.runid_seq'), 0, %s, 'postgres', "
                "'select 1', 'succeeded', '1 row', now() - interval '8 days', now() - interval '8 days')",
                (CRON_DB,),
            )
            refused_seconds = None
            try:
                cron.execute("select cron.schedule('chat-seconds', '5 seconds', 'select 1')")
            except psycopg.Error as exc:
                refused_seconds = exc.diag.message_primary

            # not too close to a minute boundary: a job scheduled in the last seconds may wait for the next tick
            if seconds_into_minute() > 55:
                time.sleep(61 - seconds_into_minute())
            jobs = {}
            for jobname, statement in DOCUMENTED.items():
                jobs[jobname] = cron.execute(statement).fetchone()[0]
            jobs["reader"] = cron.execute(
                "select cron.schedule_in_database('chat-guardrails-as-reader', '* * * * *', "
                "'select * from public.chat_run_v11_guardrails()', current_database(), %s)",
                (READER,),
            ).fetchone()[0]
            cli = invoke(["schedule", "--ingest-login", OTHER_INGEST, "--apply"], cluster.url(OTHER_DB))
            assert cli.exit_code == 0, cli.output
            jobs["b"] = cron.execute(
                "select jobid from cron.job where jobname = 'chat-guardrails' and database = %s", (OTHER_DB,)
            ).fetchone()[0]
            jobs["b-progression"] = cron.execute(
                "select jobid from cron.job where jobname = 'chat-progression' and database = %s", (OTHER_DB,)
            ).fetchone()[0]
            # for this test only: the hourly jobs every minute, so this tick runs them too
            for jobname in ("chat-maintenance", "chat-cron-history"):
                cron.execute("select cron.alter_job(%s, schedule := '* * * * *')", (jobs[jobname],))
            scheduled = cron.execute(
                "select jobid, jobname, schedule, command, database, username from cron.job order by jobid"
            ).fetchall()

            started = time.monotonic()
            expected = set(jobs.values())
            rows: list[dict] = []
            while time.monotonic() - started < MAX_TICK_WAIT:
                rows = run_rows(cron)
                if expected <= {r["jobid"] for r in rows if r["status"] in ("succeeded", "failed")}:
                    break
                time.sleep(0.5)
            waited = time.monotonic() - started
            print(f"FIGURE pg_cron tick: waited {waited:.1f} s for the first runs")
            for row in rows:
                print(f"CRON RUN {row['runid']} {row['jobname']} db={row['database']} user={row['username']} "
                      f"status={row['status']} message={row['return_message']!r}")
            yield {
                "cluster": cluster, "cron": cron, "other": other, "jobs": jobs, "rows": rows, "waited": waited,
                "scheduled": scheduled, "cli_output": cli.output, "refused_seconds": refused_seconds,
            }
            with contextlib.suppress(psycopg.Error):  # stop the jobs before the cluster goes
                cron.execute("select cron.unschedule(jobid) from cron.job")


def runs(tick, jobname: str, database: str = CRON_DB) -> list[dict]:
    found = [r for r in tick["rows"] if r["jobname"] == jobname and r["database"] == database]
    assert found, f"no run of {jobname} in {database} within {MAX_TICK_WAIT} s: {tick['rows']}"
    return found


# --- README says what runs -------------------------------------------------------------------------------------------


def test_readme_documents_the_schedule_this_module_runs():
    readme = words((PROJECT_ROOT / "README.md").read_text(encoding="utf-8"))
    for statement in DOCUMENTED.values():
        assert words(statement) in readme
    assert "'5 seconds'" in readme  # pg_cron >= 1.5
    assert "cron.schedule('chat-guardrails', '5 seconds'" not in readme  # the old snippet: fails on 1.4, superuser


def test_the_cli_prints_the_documented_statements_for_each_pg_cron_version():
    on_14 = words(schedule.jobs_sql("chat", "cron_ingest", "1.4-1", "chat"))
    assert "'chat-guardrails', '* * * * *', 'select * from public.chat_run_v11_guardrails()', 'chat', 'cron_ingest'" \
        in on_14
    assert "'chat-maintenance', '17 * * * *', 'select * from public.chat_run_v11_maintenance()', 'chat', " \
        "'cron_ingest'" in on_14
    assert words(DOCUMENTED["chat-cron-history"].removeprefix("select cron.schedule_in_database(")) in on_14
    assert "'chat-progression', '* * * * *', 'select * from public.chat_run_v11_progression()', 'chat', " \
        "'cron_ingest'" in on_14
    on_16 = words(schedule.jobs_sql("chat", "cron_ingest", "1.6", "chat"))
    assert "'chat-guardrails', '5 seconds', 'select * from public.chat_run_v11_guardrails()'" in on_16
    assert "'chat-progression', '5 seconds', 'select * from public.chat_run_v11_progression()'" in on_16
    assert schedule.statements(schedule.jobs_sql("chat", "o'brien", "1.4", "chat"))[1].endswith("'chat', 'o''brien')")


# --- one tick of pg_cron 1.4 -------------------------------------------------------------------------------------


def test_pg_cron_1_4_has_no_seconds_the_old_snippet_fails(tick):
    assert tick["refused_seconds"] == "invalid schedule: 5 seconds"


def test_the_tick_came_within_the_wait(tick):
    assert tick["waited"] < MAX_TICK_WAIT


def test_the_guardrails_run_as_the_ingest_login_and_freeze_a_stale_canary(tick):
    guardrails = runs(tick, "chat-guardrails")
    assert {(r["username"], r["status"]) for r in guardrails} == {(INGEST, "succeeded")}
    assert guardrails[0]["return_message"] == "SELECT 1"  # one action: hold
    now = state(tick["cron"])
    assert (now["stage"], now["kill_switch"], now["promotion_frozen"]) == ("canary_1", False, True)
    last = history(tick["cron"], 1)[0]
    assert (last["action"], last["actor"], last["changed_by"]) == ("hold", "guardrail", INGEST)
    assert "stale" in last["reason"]


def test_the_cli_schedules_another_database_whose_guardrails_kill_on_a_failing_p0_check(tick):
    assert "chat-guardrails: '* * * * *' in database chat_cron_b as cron_ingest_b" in tick["cli_output"]
    guardrails = runs(tick, "chat-guardrails", OTHER_DB)
    assert {(r["username"], r["status"]) for r in guardrails} == {(OTHER_INGEST, "succeeded")}
    now = state(tick["other"])
    assert now["kill_switch"] is True
    last = history(tick["other"], 1)[0]
    assert (last["action"], last["actor"], last["changed_by"]) == ("auto_kill", "guardrail", OTHER_INGEST)


def test_no_job_of_ours_runs_as_a_superuser(tick):
    ingest_jobs = [row for row in tick["scheduled"] if row[1] in ("chat-guardrails", "chat-maintenance")]
    assert len(ingest_jobs) == 4  # two databases, two jobs each
    assert {row[5] for row in ingest_jobs} == {INGEST, OTHER_INGEST}
    superusers = {r[0] for r in tick["cron"].execute("select rolname from pg_roles where rolsuper").fetchall()}
    assert not {row[5] for row in ingest_jobs} & superusers


def test_the_progression_runs_as_the_ingest_login_and_promotes_nothing_without_a_stage_policy(tick):
    for database in (CRON_DB, OTHER_DB):
        progression = runs(tick, "chat-progression", database)
        assert {r["status"] for r in progression} == {"succeeded"}
        assert {r["username"] for r in progression} <= {INGEST, OTHER_INGEST}
    assert "auto_promote" not in {h["action"] for h in history(tick["cron"])}


def test_the_maintenance_runs_as_the_ingest_login(tick):
    maintenance = runs(tick, "chat-maintenance")
    assert {(r["username"], r["status"]) for r in maintenance} == {(INGEST, "succeeded")}


def test_the_run_history_is_bounded_by_the_cleanup_job(tick):
    cleanup = runs(tick, "chat-cron-history")
    assert {(r["username"], r["status"]) for r in cleanup} == {("postgres", "succeeded")}  # the cron owner
    assert cleanup[0]["return_message"] == "DELETE 1"  # the 8-day-old row
    left = tick["cron"].execute(
        "select count(*) filter (where end_time < now() - interval '7 days'), count(*) from cron.job_run_details"
    ).fetchone()
    assert left[0] == 0 and left[1] >= len(set(tick["jobs"].values()))  # this tick's runs are kept


def test_a_job_of_a_login_without_the_ingest_role_fails_visibly_only_in_the_run_history(tick):
    failed = runs(tick, "chat-guardrails-as-reader")
    assert {(r["username"], r["status"]) for r in failed} == {(READER, "failed")}
    assert "permission denied for function chat_run_v11_guardrails" in failed[0]["return_message"]


def test_the_cli_refuses_a_login_whose_job_would_fail_and_one_that_would_move_another_databases_jobs(tick):
    url = tick["cluster"].url(OTHER_DB)
    reader = invoke(["schedule", "--ingest-login", READER, "--apply"], url)
    assert reader.exit_code == 1
    assert "is not a member of chat_rollout_ingest" in words(reader.output)
    moved = invoke(["schedule", "--ingest-login", INGEST, "--apply"], url)
    assert moved.exit_code == 1
    assert "cron_ingest already runs the chat-rollout jobs of database chat_cron" in words(moved.output)
    jobs = tick["cron"].execute("select count(*) from cron.job where database = %s", (OTHER_DB,)).fetchone()[0]
    assert jobs == 3  # guardrails, progression, maintenance: nothing moved, nothing added


def test_the_cli_prints_the_sql_for_the_installed_pg_cron(tick):
    printed = invoke(["schedule", "--ingest-login", OTHER_INGEST], tick["cluster"].url(OTHER_DB))
    assert printed.exit_code == 0, printed.output
    assert "pg_cron 1.4" in printed.output and "'* * * * *'" in printed.output
    assert "Run in database chat_cron (cron.database_name)" in words(printed.output)


def test_a_granted_role_can_use_cron_schedule_of_an_extension_created_after_migrating(tick):
    """Revision 0004's default privileges revoked PUBLIC's EXECUTE on cron.schedule (created later by the same role);
    with none, pg_cron keeps its grants: a role given USAGE on schema cron schedules its own jobs."""
    cron = tick["cron"]
    cron.execute(f"grant usage on schema cron to {INGEST}")
    with psycopg.connect(make_conninfo(tick["cluster"].url(CRON_DB), user=INGEST), autocommit=True) as own:
        jobid = own.execute("select cron.schedule('chat-probe', '0 0 1 1 *', 'select 1')").fetchone()[0]
        assert own.execute("select username from cron.job where jobid = %s", (jobid,)).fetchone() == (INGEST,)
        assert own.execute("select cron.unschedule(%s)", (jobid,)).fetchone() == (True,)
