"""Shadowing attack: hostile temp objects, a hostile schema first in search_path, and every API function still
gives the results of a clean session and never touches a hostile object.

Two clones of the template run the same script of calls, as real logins (operator, ingest, admin). In the clean
clone the sessions are plain. In the hostile clone each session first creates, in pg_temp and in a schema it owns
(the owner grants CREATE on that database): tables named like every chat_v11 table (one row, forced row-level
security and statement triggers that fire the marker), functions named like every chat_v11 helper and like the
builtins our functions use (now(), format helpers, current_setting, ...), operators for text, bigint, numeric and
timestamptz, and sets `search_path = pg_temp, <its schema>, public, pg_catalog`. Every hostile object calls
pg_temp.hit(), which bumps a sequence (non-transactional, so a swallowed error still leaves a trace) and raises.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import re

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from chat_rollout.utc import utc
from pytest_tests.support.databases import create_database, drop_database

OPERATOR, INGEST, ADMIN = "chat_test_operator", "chat_test_ingest", "chat_test_admin"
LOGINS = [OPERATOR, INGEST, ADMIN]

BUILTINS = [
    ("now", ""), ("clock_timestamp", ""), ("statement_timestamp", ""), ("transaction_timestamp", ""),
    ("current_setting", "text"), ("current_setting", "text, boolean"), ("set_config", "text, text, boolean"),
    ("btrim", "text"), ("left", "text, integer"), ("lower", "text"), ("split_part", "text, text, integer"),
    ("char_length", "text"), ("quote_literal", "text"), ("regexp_replace", "text, text, text, text"),
    ("md5", "text"), ("sha256", "bytea"), ("jsonb_typeof", "jsonb"), ("to_jsonb", "anyelement"),
    ("array_to_string", "anyarray, text"), ("cardinality", "anyarray"), ("pg_notify", "text, text"),
    ("to_char", "timestamp with time zone, text"), ("txid_current", ""), ("pg_backend_pid", ""),
    ("date_bin", "interval, timestamp with time zone, timestamp with time zone"), ("abs", "numeric"),
    ("sqrt", "double precision"), ("exp", "double precision"), ("greatest", "numeric, numeric"),
]
OPERATORS = [
    ("=", "text", "text", "boolean"), ("<>", "text", "text", "boolean"), ("||", "text", "text", "text"),
    ("=", "bigint", "bigint", "boolean"), ("=", "integer", "integer", "boolean"),
    ("<", "numeric", "numeric", "boolean"), (">", "numeric", "numeric", "boolean"),
    ("<=", "timestamp with time zone", "timestamp with time zone", "boolean"),
    (">", "timestamp with time zone", "timestamp with time zone", "boolean"),
]


def bucket_now_minus(minutes: int) -> dt.datetime:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return now - dt.timedelta(minutes=minutes, seconds=now.second % 10)


def script(bucket: dt.datetime) -> list[tuple[str, str, tuple | None]]:
    stamp = utc(bucket, "iso")
    samples = json.dumps([
        {"metric": "full_state_rate", "cohort": "canary", "bucket_start": stamp, "numerator": 1, "denominator": 900},
        {"metric": "recovery_p95_ms", "cohort": "control", "bucket_start": stamp, "value": 830},
    ])
    later = bucket + dt.timedelta(seconds=10)
    pulls = json.dumps([
        {"metric": "full_state_rate", "cohort": "canary", "bucket_start": stamp, "field": "numerator",
         "query": "query=sum(increase(a[10s]))&time=1", "query_time": stamp, "outcome": "value", "value": 1,
         "answer_sha256": "0" * 64, "answer_excerpt": "{}"},
    ])
    alerts = json.dumps([
        {"alertname": "ChatAckSpike", "severity": "P1", "startsAt": stamp, "fingerprint": "4a0e4b0c2c3d1e2f",
         "silenced": False},
    ])
    at = bucket + dt.timedelta(seconds=30)
    return [
        (OPERATOR, "select * from public.chat_get_v11_rollout_state()", None),
        (OPERATOR, "select * from public.chat_get_v11_assignment('user-42')", None),
        (OPERATOR, "select salt, changed_by from public.chat_get_v11_assignment_policy()", None),
        (OPERATOR, "select * from public.chat_get_v11_rollout_history(50)", None),
        (OPERATOR, "select * from public.chat_verify_v11_history()", None),
        (INGEST, "select public.chat_put_v11_metric_samples(%s::jsonb)", (samples,)),
        (INGEST, "select public.chat_put_v11_metric_samples(%s::text[], %s::text[], %s::timestamptz[], %s::bigint[], "
                 "%s::bigint[], %s::float8[])",
         (["full_state_rate", "send_stall_rate"], ["control", "canary"], [later, later], [0, 0], [1000, 50],
          [None, None])),
        (INGEST, "select * from public.chat_run_v11_guardrails()", None),
        (INGEST, "select * from public.chat_run_v11_maintenance()", None),
        (OPERATOR, "select * from public.chat_get_v11_release_gates(%s)", (at,)),
        (OPERATOR, "select * from public.chat_get_v11_gate_checks(%s)", (at,)),
        (OPERATOR, "select * from public.chat_get_v11_release_gates()", None),
        (OPERATOR, "select * from public.chat_get_v11_gate_checks()", None),
        (ADMIN, "select * from public.chat_set_v11_stage_settings('canary_1', 2, '45 minutes')", None),
        (ADMIN, "select * from public.chat_set_v11_policy('state_lock_timeout', '\"3 seconds\"')", None),
        (ADMIN, "select * from public.chat_set_v11_metric_rule('full_state_rate', '{\"factor\": 2}')", None),
        (ADMIN, "select * from public.chat_set_v11_stage_policy('canary_1', '{\"approvals_required\": 1}')", None),
        (OPERATOR, "select approval_id, stage, from_stage, approved_by, state_version, reason, recorded "
                   "from public.chat_approve_v11_promotion('canary_1', 'four eyes')", None),
        (OPERATOR, "select stage, approved_by, state_version, counts_for_you from public.chat_get_v11_approvals()",
         None),
        (OPERATOR, "select * from public.chat_get_v11_progression()", None),
        (INGEST, "select action, stage, next_stage, version from public.chat_run_v11_progression()", None),
        (OPERATOR, "select * from public.chat_set_v11_rollout_state('canary_1', false, 'promote, refused')", None),
        (OPERATOR, "select * from public.chat_set_v11_rollout_state('off', false, 'hold')", None),
        (OPERATOR, "select * from public.chat_lift_v11_freeze('lift, refused: gates not green')", None),
        (OPERATOR, "select * from public.chat_set_v11_rollout_state('nowhere', false, 'unknown stage')", None),
        (OPERATOR, "select * from public.chat_open_v11_incident('P1', 'shadowing test')", None),
        (OPERATOR, "select * from public.chat_get_v11_incidents()", None),
        (OPERATOR, "select * from public.chat_log_v11_incident(1, 'fact', 'receipts delayed')", None),
        (OPERATOR, "select * from public.chat_log_v11_incident(1, 'root_cause', 'backend: receipts')", None),
        (OPERATOR, "select * from public.chat_set_v11_incident_role(1, 'IC', 'alice')", None),
        (OPERATOR, "select * from public.chat_set_v11_incident_severity(1, 'P0', 'worse')", None),
        (OPERATOR, "select * from public.chat_snapshot_v11_incident(1)", None),
        (OPERATOR, "select * from public.chat_get_v11_incident_checklist(1)", None),
        (OPERATOR, "select * from public.chat_get_v11_incident_timeline(1)", None),
        (OPERATOR, "select public.chat_get_v11_postmortem(1)", None),
        (OPERATOR, "select * from public.chat_get_v11_metric_rules()", None),
        (OPERATOR, "select * from public.chat_get_v11_metric_samples(%s, %s)", (bucket, later)),
        (ADMIN, "select metric, cohort, source from public.chat_set_v11_metric_source('full_state_rate', 'canary', "
                "'{\"numerator\": \"sum(increase(a[10s]))\", \"denominator\": \"sum(increase(b[10s]))\"}')", None),
        (ADMIN, "select metric, cohort, source from public.chat_set_v11_metric_source('recovery_p95_ms', 'canary', "
                "'{\"numerator\": \"x\"}')", None),
        (INGEST, "select metric, cohort, kind, numerator, denominator, value from public.chat_get_v11_metric_sources()",
         None),
        (INGEST, "select public.chat_put_v11_metric_pulls(%s::jsonb)", (pulls,)),
        (INGEST, "select public.chat_put_v11_active_alerts(%s::jsonb)", (alerts,)),
        (OPERATOR, "select reachable, error, alerts, required, max_age from public.chat_get_v11_active_alerts()",
         None),
        (INGEST, "select public.chat_put_v11_active_alerts(null, 'connection refused')", None),
        (OPERATOR, "select reachable, error, alerts, required, max_age from public.chat_get_v11_active_alerts()",
         None),
        (OPERATOR, "select metric, cohort, bucket_start, field, query, outcome, value, answer_sha256 "
                   "from public.chat_get_v11_metric_pulls(%s, %s)", (bucket, later)),
        (OPERATOR, "select * from public.chat_set_v11_incident_status(1, 'mitigated', 'fallback on')", None),
        (OPERATOR, "select * from public.chat_set_v11_incident_status(1, 'resolved', 'refused: exit criteria')",
         None),
        (OPERATOR, "select * from public.chat_put_v11_postmortem(1, '{}')", None),
        (OPERATOR, "select * from public.chat_close_v11_incident(1, 'refused: not resolved')", None),
        (OPERATOR, "select * from public.chat_set_v11_rollout_state('off', true, 'kill')", None),
        (OPERATOR, "select * from public.chat_set_v11_rollout_state('off', false, 'resume, refused')", None),
        (OPERATOR, "select * from public.chat_get_v11_rollout_state()", None),
        (OPERATOR, "select * from public.chat_get_v11_rollout_history(50)", None),
        (OPERATOR, "select * from public.chat_get_v11_incidents()", None),
        (OPERATOR, "select * from public.chat_verify_v11_history()", None),
        (OPERATOR, "select * from public.chat_verify_v11_history_full()", None),
        # state_xmin is a transaction id: it differs between the two databases, so it is not compared
        (OPERATOR, "select version, hash, walked_from from public.chat_checkpoint_v11_history()", None),
        (OPERATOR, "select * from public.chat_verify_v11_history()", None),
    ]


TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d(:\d\d)?|Z)?( UTC)?")
CLOCK = re.compile(r"\b\d\d:\d\d:\d\d(\.\d+)?( UTC)?")
HASH = re.compile(r"\b[0-9a-f]{64}\b")
PID = re.compile(r"\bpid \d+")


def normalize(value):
    """Make two runs comparable: times, hashes (which cover times) and pids are not part of the contract here."""
    if isinstance(value, dt.datetime | dt.date):
        return "<ts>"
    if isinstance(value, dt.timedelta | decimal.Decimal | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in sorted(value.items())}
    return PID.sub("pid <n>", HASH.sub("<hash>", CLOCK.sub("<ts>", TIMESTAMP.sub("<ts>", str(value)))))


def run(urls: dict[str, str], steps, arm=None) -> list:
    outcomes = []
    connections = {login: psycopg.connect(url, autocommit=True) for login, url in urls.items()}
    try:
        if arm:
            for login, connection in connections.items():
                arm(connection, login)
        for login, statement, params in steps:
            connection = connections[login]
            try:
                rows = normalize(connection.execute(statement, params).fetchall())
                if "incident_timeline" in statement:
                    # ordered by time, and the times are masked: the gate verdicts of the minute grid interleave with
                    # the rollout rows by when each database was made, so compare the rows, not their interleaving
                    rows = sorted(rows, key=repr)
                outcomes.append((statement, "ok", rows))
            except psycopg.Error as exc:
                diag = exc.diag
                outcomes.append((statement, diag.sqlstate, normalize(diag.message_primary)))
    finally:
        for connection in connections.values():
            connection.close()
    return outcomes


def catalog(conn) -> dict:
    tables = {}
    for table, columns in conn.execute(
        "select c.relname, array_agg(a.attname::text order by a.attnum) from pg_class c "
        "join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped "
        "where c.relnamespace = 'chat_v11'::regnamespace and c.relkind in ('r', 'p', 'v') group by c.relname"
    ).fetchall():
        tables[table] = columns
    functions = [
        (name, args) for name, args in conn.execute(
            "select p.proname::text, pg_get_function_identity_arguments(p.oid) from pg_proc p "
            "where p.pronamespace = 'chat_v11'::regnamespace"
        ).fetchall()
        if "chat_v11." not in args
    ]
    sequences = [r[0] for r in conn.execute(
        "select relname::text from pg_class where relnamespace = 'chat_v11'::regnamespace and relkind = 'S'"
    ).fetchall()]
    return {"tables": tables, "functions": functions + BUILTINS, "sequences": sequences}


def arming(objects: dict):
    def arm(conn: psycopg.Connection, login: str) -> None:
        schema = f"evil_{login}"
        conn.execute(
            "create function pg_temp.hit(what text) returns boolean language plpgsql as $$ begin "
            "perform pg_catalog.nextval('public.shadow_hits'); "
            "raise exception 'hostile object used: %', what; end $$"
        )
        conn.execute(
            "create function pg_temp.hit_trigger() returns trigger language plpgsql as $$ begin "
            "perform pg_temp.hit(tg_op || ' ' || tg_table_schema || '.' || tg_table_name); return null; end $$"
        )
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
        for namespace in ["pg_temp", schema]:
            for table, columns in objects["tables"].items():
                name = sql.Identifier(namespace, table)
                cols = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in columns)
                conn.execute(sql.SQL("create table {} ({})").format(name, cols))
                conn.execute(sql.SQL("insert into {} default values").format(name))
                conn.execute(sql.SQL(
                    "create trigger hostile before insert or update or delete or truncate on {} "
                    "for each statement execute function pg_temp.hit_trigger()"
                ).format(name))
                conn.execute(sql.SQL("alter table {} enable row level security").format(name))
                conn.execute(sql.SQL("alter table {} force row level security").format(name))
                conn.execute(sql.SQL("create policy hostile on {} using (pg_temp.hit({}))").format(
                    name, sql.Literal(f"select {namespace}.{table}")))
            for sequence in objects["sequences"]:
                conn.execute(sql.SQL("create sequence {}").format(sql.Identifier(namespace, sequence)))
            for function, args in objects["functions"]:
                conn.execute(sql.SQL(
                    "create or replace function {}({}) returns boolean language sql as {}"
                ).format(sql.Identifier(namespace, function), sql.SQL(args),
                         sql.Literal(f"select pg_temp.hit('{namespace}.{function}')")))
            for index, (operator, left, right, result) in enumerate(objects_operators()):
                function = sql.Identifier(namespace, f"hostile_operator_{index}")
                conn.execute(sql.SQL("create function {}({}, {}) returns {} language sql as {}").format(
                    function, sql.SQL(left), sql.SQL(right), sql.SQL(result),
                    sql.Literal(f"select pg_temp.hit('{namespace} operator {operator}')::{result}")))
                conn.execute(sql.SQL("create operator {}.{} (leftarg = {}, rightarg = {}, function = {})").format(
                    sql.Identifier(namespace), sql.SQL(operator), sql.SQL(left), sql.SQL(right), function))
        conn.execute(sql.SQL("set search_path = pg_temp, {}, public, pg_catalog").format(sql.Identifier(schema)))
        # the session really is hostile: its own unqualified calls resolve to the hostile objects
        with pytest.raises(psycopg.Error, match="hostile object used"):
            conn.execute("select now()")
        with pytest.raises(psycopg.Error, match="hostile object used"):
            conn.execute("select 'a'::text = 'b'::text")
        with pytest.raises(psycopg.Error, match="hostile object used"):
            conn.execute("select * from rollout_state")
        conn.execute("select pg_catalog.setval('public.shadow_hits', 1, false)")  # the self-checks above hit it
    return arm


def objects_operators():
    return OPERATORS


@pytest.fixture
def hostile_db(pg_server, template_db):
    name = f"chat_rollout_h{os.getpid()}_{dt.datetime.now().strftime('%H%M%S%f')}"
    url = create_database(pg_server, name, template=template_db)
    with psycopg.connect(url, autocommit=True) as owner:
        owner.execute(sql.SQL("grant create on database {} to {}").format(
            sql.Identifier(name), sql.SQL(", ").join(sql.Identifier(login) for login in LOGINS)))
        owner.execute("create sequence public.shadow_hits")
        owner.execute("grant usage, update on sequence public.shadow_hits to public")
    yield url
    drop_database(pg_server, name)


def test_every_api_function_gives_clean_results_in_a_hostile_session(conn, db_url, hostile_db):
    bucket = bucket_now_minus(10)
    steps = script(bucket)
    api = {r[0] for r in conn.execute(
        "select p.proname::text from pg_proc p where p.pronamespace = 'public'::regnamespace "
        "and p.proname ~ '^chat_[a-z]+_v11_'"
    ).fetchall()}
    called = {re.search(r"public\.(chat_[a-z]+_v11_[a-z_]+)\(", statement).group(1) for _, statement, _ in steps}
    assert called == api

    objects = catalog(conn)
    assert set(objects["tables"]) >= {"rollout_state", "rollout_history", "stage", "metric_sample", "incident"}
    clean = run({login: make_conninfo(db_url, user=login) for login in LOGINS}, steps)
    hostile = run({login: make_conninfo(hostile_db, user=login) for login in LOGINS}, steps, arm=arming(objects))

    for expected, got in zip(clean, hostile, strict=True):
        assert got == expected, expected[0]
    outcomes = {state for _, state, _ in clean}
    assert "ok" in outcomes and any(s.startswith("RO") for s in outcomes)  # accepted calls and refusals both ran
    assert not any(s not in ("ok",) and not s.startswith("RO") for s in outcomes), clean

    with psycopg.connect(hostile_db, autocommit=True) as owner:
        assert owner.execute("select is_called from public.shadow_hits").fetchone()[0] is False
        assert owner.execute("select ok from public.chat_verify_v11_history()").fetchone()[0] is True
        assert owner.execute(
            "select count(*) from chat_v11.rollout_history where reason ~ 'hostile'"
        ).fetchone()[0] == 0


def test_temp_objects_cannot_be_resolved_by_our_functions_even_when_named_like_ours(conn, db_url):
    """pg_temp is last in every pinned search_path: a temp table named like ours, in a session whose own
    search_path puts pg_temp first, is not what the API reads."""
    with psycopg.connect(make_conninfo(db_url, user=OPERATOR), autocommit=True) as operator:
        operator.execute("create temp table rollout_state (stage text, kill_switch boolean)")
        operator.execute("insert into rollout_state values ('full', false)")
        operator.execute("set search_path = pg_temp, public")
        assert operator.execute("select stage, kill_switch from public.chat_get_v11_rollout_state()").fetchone() == (
            "off", False)
