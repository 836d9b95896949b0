#!/usr/bin/env python3
"""Statement and branch coverage of every PL/pgSQL function of chat-rollout, by plpgsql_check's profiler.

    CHAT_ROLLOUT_LINT_URL=postgresql://postgres@127.0.0.1:5432/postgres tools/plpgsql_coverage.py [--no-write]

CHAT_ROLLOUT_LINT_URL is a libpq URI of a server where the plpgsql_check extension (>= 2.0) is available and of a
role that may create databases and extensions. Without it the script prints why it skipped and exits 0.

With it: create a scratch database, `alembic upgrade head` into it, `create extension plpgsql_check`, then in ONE
session `load 'plpgsql_check'` and `plpgsql_check_profiler(true)`, run a representative workload (the playbook's
calls, ingestion on both paths with a P0 event and the automatic kill, guardrails, an incident walked from the
declaration to the postmortem and the close, a P1 escalation, the admin calls and the refusals, RO010 included),
then print the statement and branch coverage of each plpgsql function of schemas public and chat_v11
(plpgsql_coverage_statements / plpgsql_coverage_branches) and the totals, write them to docs/plpgsql-coverage.md
and drop the scratch database.

Without `shared_preload_libraries = 'plpgsql,plpgsql_check'` the profiler keeps its data in session memory: that is
why the whole workload runs in the session that reads the coverage. A call that ends in an error still counts
the statements it ran (the RAISE of a refusal included).

Report only: the exit status is non-zero only when the tool itself fails (no extension, migration error, a
workload step that does not behave as expected is printed, not fatal).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from chat_rollout import PROJECT_ROOT, scenarios
from metric_samples import iso, sample  # the tests' sample writer too (pytest_tests/support/samples.py)
from scratch_db import run_in_scratch

SCHEMAS = ["public", "chat_v11"]
REPORT = PROJECT_ROOT / "docs" / "plpgsql-coverage.md"
POSTMORTEM = json.loads((PROJECT_ROOT / "docs" / "examples" / "postmortem.json").read_text(encoding="utf-8"))

FUNCTIONS = """
select p.oid,
       pg_catalog.format('%%I.%%I(%%s)', n.nspname, p.proname,
                         pg_catalog.oidvectortypes(p.proargtypes)) as signature
  from pg_catalog.pg_proc as p
  join pg_catalog.pg_namespace as n on n.oid = p.pronamespace
  join pg_catalog.pg_language as l on l.oid = p.prolang
 where n.nspname = any(%s)
   and l.lanname = 'plpgsql'
   and p.prokind in ('f', 'p')
   and not exists (
       select from pg_catalog.pg_depend as d
        where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e'
   )
 order by 2
"""

# Per function: statements the profiler knows (executed / all, blocks included) and plpgsql_check's two ratios
# (plpgsql_coverage_statements weighs statements its own way, so the two statement figures may differ slightly).
COVERAGE = """
select pg_catalog.count(*) filter (where s.exec_stmts > 0) as executed,
       pg_catalog.count(*) as statements,
       plpgsql_coverage_statements(%(oid)s::oid::regprocedure) as statement_ratio,
       plpgsql_coverage_branches(%(oid)s::oid::regprocedure) as branch_ratio
  from plpgsql_profiler_function_statements_tb(%(oid)s::oid::regprocedure) as s
"""


# --- the workload -------------------------------------------------------------------------------------------


class Workload:
    """Runs calls in the profiled session; a call that does not end as expected is recorded, not raised."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.calls = 0
        self.refusals = 0
        self.surprises: list[str] = []

    def call(self, label: str, query: str, params=None, *, expect: str | None = None):
        self.calls += 1
        try:
            rows = self.conn.execute(query, params).fetchall()
        except psycopg.Error as exc:
            if expect is not None and exc.diag.sqlstate == expect:
                self.refusals += 1
                return None
            self.surprises.append(
                f"{label}: {exc.diag.sqlstate} {str(exc).splitlines()[0]} (expected {expect or 'ok'})"
            )
            return None
        if expect is not None:
            self.surprises.append(f"{label}: accepted (expected {expect})")
        return rows

    def put(self, label: str, samples: list[dict], *, expect: str | None = None):
        return self.call(label, "select public.chat_put_v11_metric_samples(%s::jsonb)", (json.dumps(samples),),
                         expect=expect)  # fmt: skip

    def one(self, label: str, query: str, params=None):
        rows = self.call(label, query, params)
        return rows[0][0] if rows else None


def run_workload(conn: psycopg.Connection, url: str) -> Workload:
    w = Workload(conn)
    anchor = scenarios.anchor_now()
    set_state = "select * from public.chat_set_v11_rollout_state(%s, %s, %s)"

    # readers on the fresh install
    for label, query in [
        ("state", "select * from public.chat_get_v11_rollout_state()"),
        ("history", "select * from public.chat_get_v11_rollout_history(50)"),
        ("gates", "select * from public.chat_get_v11_release_gates()"),
        ("checks", "select * from public.chat_get_v11_gate_checks()"),
        ("verify", "select * from public.chat_verify_v11_history()"),
        ("incidents", "select * from public.chat_get_v11_incidents()"),
    ]:
        w.call(label, query)
    w.call("history limit 0", "select * from public.chat_get_v11_rollout_history(0)", expect="RO011")

    # admin: stages, policies, metric rules, with their refusals
    w.call(
        "stage settings", "select * from public.chat_set_v11_stage_settings('canary_5', null, interval '30 minutes')"
    )
    w.call("stage settings bad", "select * from public.chat_set_v11_stage_settings('canary_5', 500, null)",
           expect="RO015")  # fmt: skip
    w.call("stage settings unknown", "select * from public.chat_set_v11_stage_settings('nope', 1, null)",
           expect="RO002")  # fmt: skip
    w.call("policy", """select * from public.chat_set_v11_policy('state_lock_timeout', '"2 seconds"')""")
    w.call("policy exit window", """select * from public.chat_set_v11_policy('p0_exit_window', '"30 minutes"')""")
    w.call("policy bad", """select * from public.chat_set_v11_policy('p0_exit_window', '"5 minutes"')""",
           expect="RO014")  # fmt: skip
    w.call("policy unknown", """select * from public.chat_set_v11_policy('nope', 'true')""", expect="RO014")
    w.call("metric rule", """select * from public.chat_set_v11_metric_rule('full_state_rate', '{"factor": 1.5}')""")
    w.call("metric rule bad key", """select * from public.chat_set_v11_metric_rule('full_state_rate', '{"x": 1}')""",
           expect="RO016")  # fmt: skip
    w.call("metric rule bad value",
           """select * from public.chat_set_v11_metric_rule('full_state_rate', '{"alpha": "high"}')""",
           expect="RO016")  # fmt: skip
    w.call("metric rule unknown", """select * from public.chat_set_v11_metric_rule('nope', '{}')""", expect="RO021")
    # progression and approvals (SPEC 9): a policy that changes nothing, the refusals, the reads, an idle run
    w.call("stage policy", """select * from public.chat_set_v11_stage_policy('full', '{"approvals_required": 0}')""")
    w.call("stage policy bad", """select * from public.chat_set_v11_stage_policy('full', '{"x": 1}')""",
           expect="RO044")  # fmt: skip
    w.call("approve not next", "select * from public.chat_approve_v11_promotion('full', 'skip')", expect="RO042")
    w.call("approvals", "select * from public.chat_get_v11_approvals()")
    w.call("progression", "select * from public.chat_get_v11_progression()")
    w.call("progression run", "select * from public.chat_run_v11_progression()")

    # the playbook's state calls and their refusals, at stage off without data
    w.call("hold", set_state, ("off", False, "hold"))
    w.call("reason blank", set_state, ("off", False, "  "), expect="RO001")
    w.call("null kill switch", set_state, ("off", None, "why"), expect="RO011")
    w.call("unknown stage", set_state, ("nope", False, "typo"), expect="RO002")
    w.call("promote while frozen", set_state, ("canary_1", False, "promote"), expect="RO004")
    w.call("lift freeze without data", "select * from public.chat_lift_v11_freeze('green?')", expect="RO009")

    # healthy data on both ingestion paths, then the guardrails, a lifted freeze and a promotion
    healthy = [s for s in scenarios.load("healthy_canary").samples(anchor)]
    half = len(healthy) // 2
    scenarios.write_samples(conn, healthy[:half])
    columnar = healthy[half:]
    w.call(
        "columnar ingestion",
        "select public.chat_put_v11_metric_samples(%s::text[], %s::text[], %s::timestamptz[], %s::bigint[], "
        "%s::bigint[], %s::double precision[])",
        (
            [s["metric"] for s in columnar],
            [s["cohort"] for s in columnar],
            [datetime.fromisoformat(s["bucket_start"].replace("Z", "+00:00")) for s in columnar],
            [s.get("numerator") for s in columnar],
            [s.get("denominator") for s in columnar],
            [s.get("value") for s in columnar],
        ),
    )
    w.call("columnar length mismatch",
           "select public.chat_put_v11_metric_samples(array['a']::text[], array[]::text[], array[]::timestamptz[], "
           "array[]::bigint[], array[]::bigint[], array[]::double precision[])", expect="RO020")  # fmt: skip
    w.call("guardrails", "select * from public.chat_run_v11_guardrails()")
    w.call("maintenance", "select * from public.chat_run_v11_maintenance()")
    w.call("gates green?", "select * from public.chat_get_v11_release_gates()")
    w.call("checks", "select * from public.chat_get_v11_gate_checks()")
    w.call("gates in the past", "select * from public.chat_get_v11_release_gates(now() - interval '40 minutes')")
    w.call("lift freeze", "select * from public.chat_lift_v11_freeze('gates green')")
    w.call("promote canary_1", set_state, ("canary_1", False, "canary 1 %"))
    w.call("skip a stage", set_state, ("canary_25", False, "skip"), expect="RO003")
    w.call("promote too early", set_state, ("canary_5", False, "canary 5 %"), expect="RO006")
    w.call("rollback", set_state, ("off", False, "roll back"))
    w.call("lift freeze again", "select * from public.chat_lift_v11_freeze('gates still green')")
    w.call("promote canary_1 again", set_state, ("canary_1", False, "canary 1 % again"))
    w.call("gates at canary_1", "select * from public.chat_get_v11_gate_checks()")

    # ingestion refusals: nothing written
    t = anchor - timedelta(minutes=1)
    w.call("not an array", "select public.chat_put_v11_metric_samples('{}'::jsonb)", expect="RO020")
    w.put("unknown metric", [sample("nope", "canary", t)], expect="RO021")
    w.put("unknown key", [{**sample("send_stall_rate", "canary", t), "x": 1}], expect="RO022")
    w.put("numerator > denominator", [sample("send_stall_rate", "canary", t, 5, 1)], expect="RO022")
    w.put("negative", [sample("send_stall_rate", "canary", t, -1, 1)], expect="RO022")
    w.put("not an object", [1], expect="RO022")
    w.put("bad timestamp", [{**sample("send_stall_rate", "canary", t), "bucket_start": "yesterday"}], expect="RO022")
    w.put("missing value", [{"metric": "recovery_p95_ms", "cohort": "canary", "bucket_start": iso(t)}],
          expect="RO022")  # fmt: skip
    w.put("not aligned", [sample("send_stall_rate", "canary", t + timedelta(seconds=3))], expect="RO023")
    w.put("future", [sample("send_stall_rate", "canary", anchor + timedelta(hours=1))], expect="RO024")
    w.put("twice", [sample("send_stall_rate", "canary", t)] * 2, expect="RO025")

    # a P1 incident, its escalation by a P0 event in the ingestion transaction (automatic kill)
    p1 = w.one("open P1", "select incident_id from public.chat_open_v11_incident('P1', 'resync range spike')")
    w.call("P2 incident", "select * from public.chat_open_v11_incident('P2', 'slow avatars')")
    w.call("bad severity", "select * from public.chat_open_v11_incident('P9', 'x')", expect="RO031")
    w.put("P0 event", [sample("ack_without_receipt_10s_rate", "canary", anchor - timedelta(minutes=35), 3, 200)])
    incident = w.one("the P0 incident", "select incident_id from public.chat_get_v11_incidents() "
                     "where severity = 'P0' and status = 'open' order by incident_id desc limit 1")  # fmt: skip
    incident = incident or p1  # the P0 event escalates the open P1 incident to P0 (playbook section 7)
    w.call("guardrails after the kill", "select * from public.chat_run_v11_guardrails()")
    w.call("kill unknown stage", set_state, ("nope", True, "kill"))
    w.call("kill above", set_state, ("canary_50", True, "kill"))
    w.call("resume upwards", set_state, ("canary_5", False, "resume"), expect="RO008")

    # the incident walk: roles, snapshot, scribe's record, exit criteria, resume, resolve, postmortem, close
    w.call("role IC", "select * from public.chat_set_v11_incident_role(%s, 'IC', 'alice')", (incident,))
    w.call("role scribe", "select * from public.chat_set_v11_incident_role(%s, 'scribe', 'bob')", (incident,))
    w.call("bad role", "select * from public.chat_set_v11_incident_role(%s, 'chef', 'x')", (incident,), expect="RO031")
    w.call("unknown incident", "select * from public.chat_set_v11_incident_role(999999, 'IC', 'x')", expect="RO030")
    w.call("snapshot", "select * from public.chat_snapshot_v11_incident(%s)", (incident,))
    w.call("decision", "select * from public.chat_log_v11_incident(%s, 'decision', 'keep the kill switch on')",
           (incident,))  # fmt: skip
    w.call("checklist early", "select * from public.chat_get_v11_incident_checklist(%s)", (incident,))
    w.call("fallback", "select * from public.chat_log_v11_incident(%s, 'fallback_confirmed', 'resync_stream on web')",
           (incident,))  # fmt: skip
    w.call("root cause", "select * from public.chat_log_v11_incident(%s, 'root_cause', 'backend: no receipt')",
           (incident,))  # fmt: skip
    w.call("root cause without layer", "select * from public.chat_log_v11_incident(%s, 'root_cause', 'no layer')",
           (incident,), expect="RO031")  # fmt: skip
    w.call("close before resolve", "select * from public.chat_close_v11_incident(%s, 'done')", (incident,),
           expect="RO032")  # fmt: skip
    w.call("bad status", "select * from public.chat_set_v11_incident_status(%s, 'gone', 'x')", (incident,),
           expect="RO032")  # fmt: skip
    w.call("mitigated", "select * from public.chat_set_v11_incident_status(%s, 'mitigated', 'killed')", (incident,))
    w.call("reopen", "select * from public.chat_set_v11_incident_status(%s, 'open', 'again')", (incident,))
    w.call("lower P1 to P2", "select * from public.chat_set_v11_incident_severity(%s, 'P2', 'minor')", (p1,))
    w.call("raise P2 to P1", "select * from public.chat_set_v11_incident_severity(%s, 'P1', 'worse')", (p1,))
    # the spike is 35 minutes old and the healthy feed covers the exit window after it: controlled resume
    w.call("resume controlled", set_state, ("canary_1", False, "resume controlled"))
    w.call("checklist", "select * from public.chat_get_v11_incident_checklist(%s)", (incident,))
    w.call("resolve P0", "select * from public.chat_set_v11_incident_status(%s, 'resolved', 'exit criteria held')",
           (incident,))  # fmt: skip
    w.call("gates after", "select * from public.chat_get_v11_release_gates()")

    # postmortem: refusals, then complete; a closed incident refuses changes
    no_owner = json.loads(json.dumps(POSTMORTEM))
    no_owner["action_items"][1]["owner"] = ""
    w.call("postmortem without owner", "select * from public.chat_put_v11_postmortem(%s, %s::jsonb)",
           (incident, json.dumps(no_owner)), expect="RO035")  # fmt: skip
    w.call("postmortem", "select * from public.chat_put_v11_postmortem(%s, %s::jsonb)",
           (incident, json.dumps(POSTMORTEM)))  # fmt: skip
    w.call("timeline", "select * from public.chat_get_v11_incident_timeline(%s)", (incident,))
    w.call("close P0", "select * from public.chat_close_v11_incident(%s, 'postmortem reviewed')", (incident,))
    w.call("log after close", "select * from public.chat_log_v11_incident(%s, 'fact', 'late')", (incident,),
           expect="RO036")  # fmt: skip
    w.call("incidents", "select * from public.chat_get_v11_incidents()")
    _walk_to_close(w)

    # a second P0 event now: a new P0 incident that cannot be resolved while the P0 check fails
    w.put(
        "P0 event again", [sample("timeline_duplicate_detected_rate", "canary", anchor - timedelta(minutes=1), 1, 200)]
    )
    again = w.one("the new P0 incident", "select incident_id from public.chat_get_v11_incidents() "
                  "where severity = 'P0' and status = 'open' order by incident_id desc limit 1")  # fmt: skip
    w.call("resolve while P0 fails", "select * from public.chat_set_v11_incident_status(%s, 'resolved', 'fine?')",
           (again,), expect="RO033")  # fmt: skip

    # RO010: another session holds the state row past state_lock_timeout
    w.call("short lock timeout", """select * from public.chat_set_v11_policy('state_lock_timeout', '"200 ms"')""")
    holding, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        with psycopg.connect(url) as other:
            other.execute("select * from chat_v11.rollout_state for update")
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    holding.wait(10)
    w.call("kill while the row is held", set_state, ("off", True, "kill"), expect="RO010")
    release.set()
    holder.join()
    w.call("kill", set_state, ("off", True, "kill"))
    w.call("resume below, refused", set_state, ("off", False, "resume at off"), expect="RO007")

    # the history cannot be rewritten, and it verifies
    w.call("update history", "update chat_v11.rollout_history set reason = 'x'", expect="RO012")
    w.call("delete history", "delete from chat_v11.rollout_history", expect="RO012")
    w.call("truncate history", "truncate chat_v11.rollout_history", expect="RO012")
    w.call("update timeline", "update chat_v11.incident_entry set body = 'x'", expect="RO012")
    w.call("update config changes", "update chat_v11.config_change set target = 'x'", expect="RO012")
    w.call("verify", "select * from public.chat_verify_v11_history()")
    return w


def _walk_to_close(w: Workload) -> None:
    """A P2 incident: resolved at once (no exit criteria), close refused without a postmortem (RO034), closed."""
    p2 = w.one("P2 to close", "select incident_id from public.chat_open_v11_incident('P2', 'typo in a banner')")
    w.call("resolve P2", "select * from public.chat_set_v11_incident_status(%s, 'resolved', 'fixed')", (p2,))
    w.call("close without postmortem", "select * from public.chat_close_v11_incident(%s, 'done')", (p2,),
           expect="RO034")  # fmt: skip
    w.call("postmortem P2", "select * from public.chat_put_v11_postmortem(%s, %s::jsonb)",
           (p2, json.dumps(POSTMORTEM)))  # fmt: skip
    w.call("close", "select * from public.chat_close_v11_incident(%s, 'postmortem reviewed')", (p2,))
    w.call("timeline P2", "select * from public.chat_get_v11_incident_timeline(%s)", (p2,))
    w.call("checklist closed", "select * from public.chat_get_v11_incident_checklist(%s)", (p2,))


# --- the report ----------------------------------------------------------------------------------------------


def pct(ratio) -> str:
    return "n/a" if ratio is None or ratio != ratio else f"{100 * ratio:.1f} %"


def coverage(url: str) -> int:
    return run_in_scratch(url, "chat_rollout_cov", _measure)


def _measure(conn: psycopg.Connection, scratch_url: str, scratch: str, server: str) -> int:
    version = conn.execute("select extversion from pg_catalog.pg_extension where extname = 'plpgsql_check'")
    version = version.fetchone()[0]
    conn.execute("load 'plpgsql_check'")
    conn.execute("set plpgsql_check.profiler = on")
    conn.execute("select plpgsql_profiler_reset_all()")
    shared = conn.execute("select current_setting('shared_preload_libraries')").fetchone()[0]
    mode = "shared memory" if "plpgsql_check" in shared else "session memory (this session only)"
    print(f"plpgsql_check {version} profiler on PostgreSQL {server}, scratch database {scratch}, {mode}")

    workload = run_workload(conn, scratch_url)
    print(f"workload: {workload.calls} calls, {workload.refusals} refused as expected, "
          f"{len(workload.surprises)} not as expected")  # fmt: skip
    for surprise in workload.surprises:
        print(f"    not as expected: {surprise}")

    conn.execute("set plpgsql_check.profiler = off")
    functions = conn.execute(FUNCTIONS, [SCHEMAS]).fetchall()
    if not functions:
        print(f"error: no plpgsql function found in schemas {', '.join(SCHEMAS)}: did the migration run?")
        return 1
    table = []
    for oid, signature in functions:
        executed, statements, statement_ratio, branch_ratio = conn.execute(COVERAGE, {"oid": oid}).fetchone()
        table.append((signature, executed, statements, statement_ratio, branch_ratio))

    total_exec = sum(r[1] for r in table)
    total_stmts = sum(r[2] for r in table)
    branches = [r[4] for r in table if r[4] is not None and r[4] == r[4]]
    never = [r[0] for r in table if r[1] == 0]
    total_statements = total_exec / total_stmts if total_stmts else None
    mean_branches = sum(branches) / len(branches) if branches else None

    width = max(len(r[0]) for r in table)
    lines = [f"{'function':<{width}}  {'statements':>16}  {'stmt %':>8}  {'branch %':>8}"]
    for signature, executed, statements, statement_ratio, branch_ratio in table:
        lines.append(
            f"{signature:<{width}}  {f'{executed}/{statements}':>16}  {pct(statement_ratio):>8}  {pct(branch_ratio):>8}"
        )
    lines.append(
        f"{'TOTAL (' + str(len(table)) + ' functions)':<{width}}  {f'{total_exec}/{total_stmts}':>16}  "
        f"{pct(total_statements):>8}  {pct(mean_branches):>8}"
    )
    print("\n".join(lines))
    summary = (
        f"COVERAGE plpgsql statements={pct(total_statements)} ({total_exec}/{total_stmts}) "
        f"branches={pct(mean_branches)} (mean over {len(branches)} functions) functions={len(table)} "
        f"never_run={len(never)}"
    )
    print(summary)
    return _write_report(table, summary, never, version, server, workload)


def _write_report(table, summary, never, version, server, workload) -> int:
    if not ARGS.write:
        return 0
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# PL/pgSQL statement and branch coverage",
        "",
        f"Measured {now} by `tools/plpgsql_coverage.py` (plpgsql_check {version} profiler, PostgreSQL {server}) "
        "on a scratch database migrated to head, with the representative workload of that script run in one "
        f"session: {workload.calls} calls, {workload.refusals} of them refusals expected by SQLSTATE. "
        "Regenerate with `CHAT_ROLLOUT_LINT_URL=postgresql://postgres@127.0.0.1:5432/postgres "
        "tools/plpgsql_coverage.py` (also a report-only step of `tools/lint`).",
        "",
        "Statements: executed / all statements the profiler knows for the function (blocks included), and "
        "`plpgsql_coverage_statements()`. Branches: `plpgsql_coverage_branches()`; the total is the unweighted mean "
        "over the functions (the profiler gives no branch counts to weigh by). "
        "Language sql functions are not PL/pgSQL and not listed.",
        "",
        f"`{summary}`",
        "",
        "| function | statements | statements % | branches % |",
        "|---|---:|---:|---:|",
    ]
    for signature, executed, statements, statement_ratio, branch_ratio in table:
        out.append(f"| `{signature}` | {executed}/{statements} | {pct(statement_ratio)} | {pct(branch_ratio)} |")
    out.append(f"| **total** | {sum(r[1] for r in table)}/{sum(r[2] for r in table)} | | |")
    if never:
        out += ["", "Never run by the workload: " + ", ".join(f"`{n}`" for n in never) + "."]
    if workload.surprises:
        out += ["", "Workload calls that did not end as expected:", ""]
        out += [f"- {s}" for s in workload.surprises]
    REPORT.write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"wrote {Path(REPORT).relative_to(PROJECT_ROOT)}")
    return 0


def main() -> int:
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-write", dest="write", action="store_false", help=f"do not write {REPORT.name}")
    ARGS = parser.parse_args()
    url = os.environ.get("CHAT_ROLLOUT_LINT_URL")
    if not url:
        print("skipped: set CHAT_ROLLOUT_LINT_URL (a libpq URI of a server with plpgsql_check available) to run it")
        return 0
    return coverage(url)


ARGS = argparse.Namespace(write=True)

if __name__ == "__main__":
    raise SystemExit(main())
