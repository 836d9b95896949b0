"""The demo: the P0 incident of the playbook, replayed end to end like a psql session (and a smoke test).

``run_demo(url, console)`` takes a freshly migrated database and tells the whole story on real time: the
SQL snapshot with gates that fail closed, the exporter's healthy data and the promotion to canary_1 (GO),
the observation window, an operator hold, a P0 spike that arrives late and kills the rollout in the very
call that writes it (auto_kill) and declares a P0 incident, then the incident process of the playbook as
data: the incident and its on-call checklist (what is missing), the first five minutes (roles, the SQL
snapshot into the timeline), the postmortem view of the spike, the IC's verbatim kill and decision, the P0
runbook (chain checked, client fallback confirmed, root cause by layer), a refused resume upwards, the
controlled resume, a close refused while open (RO032), the resolve, a close refused without postmortem
(RO034), the unfreeze and the promotion through the gate, the verified history, the postmortem (refused
incomplete with RO035, then stored), the checklist all done, the close, and the incident's UTC timeline.
Promotions are judged at the real current time, so the spike is late-arriving evidence (a bucket of 35
minutes ago): the 30-minute exit window is already clean when the IC resumes and resolves.

Every call is printed with its result (or its refusal, as ``ERROR <SQLSTATE>``) and checked against what
the playbook expects; after each step one line shows the gates, the state and the newest history row, and
once there is an incident a second line its status, its checklist and its roles.
``run_demo`` returns True only when every step behaved as expected.

Rows and errors are rendered by ``render.py``, shared with the CLI.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from rich.console import Console
from rich.json import JSON
from rich.text import Text

from . import migrate, scenarios
from .render import print_pg_error, print_rows
from .server import Server

DEMO_DATABASE = "chat_rollout_demo"
CHANNEL = "chat_v11_rollout"
NOTIFY_TIMEOUT_S = 5.0


# --- a psql-like session ---------------------------------------------------------------------------


@dataclass
class Result:
    """What one statement gave: rows (as dicts) or the error that refused it."""

    sql: str
    columns: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    status: str | None = None
    error: psycopg.Error | None = None

    @property
    def sqlstate(self) -> str | None:
        return self.error.sqlstate if self.error is not None else None

    @property
    def row(self) -> dict:
        return self.rows[0] if self.rows else {}


class Session:
    """An autocommit connection that echoes each statement, its notices and its result."""

    def __init__(self, conn: psycopg.Connection, console: Console, label: str | None = None) -> None:
        self.conn = conn
        self.console = console
        self.prompt = f"{label + ' ' if label else ''}{conn.info.dbname}=# "
        conn.add_notice_handler(self._notice)

    def _notice(self, diag: psycopg.errors.Diagnostic) -> None:
        self.console.print(
            Text(f"{diag.severity or 'NOTICE'}: ", style="bold yellow") + Text(diag.message_primary or ""),
            soft_wrap=False,
        )

    def run(
        self,
        statement: str,
        params: Sequence[Any] | None = None,
        *,
        comment: str | None = None,
        expanded: bool | None = None,
    ) -> Result:
        """Echo ``statement`` (and a ``-- comment`` line), run it with ``params``, print its rows or its error."""
        self.console.print(Text(self.prompt, style="dim") + Text(statement, style="bold cyan"))
        if comment:
            self.console.print(Text(f"  -- {comment}", style="dim"))
        result = Result(sql=statement)
        try:
            with self.conn.cursor(row_factory=dict_row) as cur:
                cur.execute(statement.replace("$1", "%s") if params is not None else statement, params)
                result.status = cur.statusmessage
                if cur.description is not None:
                    result.columns = [column.name for column in cur.description]
                    result.rows = cur.fetchall()
        except psycopg.Error as exc:
            result.error = exc
            print_pg_error(self.console, exc)
            return result
        if not result.columns:
            self.console.print(result.status or "")
        else:
            print_rows(self.console, result.columns, result.rows, expanded=expanded)
        return result


# --- the walk --------------------------------------------------------------------------------------


class Walk:
    """Numbered steps with a heading each, checks that record every deviation, and where the rollout stands."""

    def __init__(self, console: Console, conn: psycopg.Connection | None = None) -> None:
        self.console = console
        self.conn = conn
        self.steps = 0
        self.deviations: list[str] = []

    def step(self, heading: str) -> None:
        self.standing()
        self.steps += 1
        self.console.print()
        self.console.print(Text(f"── Step {self.steps}. ", style="bold magenta") + Text(heading, style="bold"))

    def say(self, text: str) -> None:
        """A line of narration (who acts, and why), between the calls."""
        self.console.print(Text(text, style="italic"))

    def check(self, condition: bool, expectation: str) -> bool:
        if condition:
            self.console.print(Text("  ✓ ", style="bold green") + Text(expectation, style="green"))
        else:
            self.console.print(Text("  ✗ NOT AS EXPECTED: ", style="bold red") + Text(expectation, style="red"))
            self.deviations.append(f"step {self.steps}: {expectation}")
        return condition

    def accepted(self, result: Result, expectation: str) -> bool:
        if result.error is not None:
            return self.check(False, f"{expectation} (refused with {result.sqlstate})")
        return self.check(True, expectation)

    def refused(self, result: Result, sqlstate: str, expectation: str) -> bool:
        if result.error is None:
            return self.check(False, f"{expectation} (it was accepted)")
        if result.sqlstate != sqlstate:
            return self.check(False, f"{expectation} (refused with {result.sqlstate} instead)")
        return self.check(True, expectation)

    def standing(self) -> None:
        """After a step: the gates, the state and the newest history row in one line; then the incident, if any."""
        if self.conn is None or self.steps == 0:
            return
        try:
            with self.conn.cursor() as cur:
                g = cur.execute(
                    "select gate_p0_ok, gate_p1_ok, rollout_decision, promotion_allowed "
                    "from public.chat_get_v11_release_gates()"
                ).fetchone()
                s = cur.execute(
                    "select stage, traffic_percent, kill_switch, promotion_frozen, version "
                    "from public.chat_get_v11_rollout_state()"
                ).fetchone()
                h = cur.execute("select action, actor from public.chat_get_v11_rollout_history(1)").fetchone()
                i = cur.execute(
                    "select incident_id, severity, status, roles from public.chat_get_v11_incidents() limit 1"
                ).fetchone()
                items = (
                    cur.execute(
                        "select status, count(*) from public.chat_get_v11_incident_checklist(%s) group by status",
                        (i[0],),
                    ).fetchall()
                    if i is not None
                    else []
                )
        except psycopg.Error as exc:
            self.console.print(Text(f"  ⎿ (the standing could not be read: {exc.sqlstate})", style="dim"))
            return
        line = Text("  ⎿ ", style="dim")
        line += Text("gates ", style="dim") + _flag("p0", g[0]) + Text(" ") + _flag("p1", g[1]) + Text(" ")
        line += Text(g[2], style=_DECISION_STYLE.get(g[2], "")) + Text(" ")
        line += Text("GO" if g[3] else "NO-GO", style="green" if g[3] else "red")
        line += Text(" │ ", style="dim") + Text(f"{s[0]} ({s[1]} %)", style="bold")
        line += Text(", kill switch ") + Text("ON" if s[2] else "off", style="bold red" if s[2] else "green")
        line += Text(", frozen" if s[3] else ", not frozen")
        line += Text(f", v{s[4]}") + Text(" │ last: ", style="dim")
        line += Text(f"{h[0]}" + (f" by {h[1]}" if h[1] else ""), style="bold")
        self.console.print(line)
        if i is not None:  # the incident, as data: its status, its checklist, its roles
            counts = dict(items)
            line = Text("  ⎿ ", style="dim") + Text(f"incident {i[0]} {i[1]} ", style="bold")
            line += Text(i[2], style=_INCIDENT_STYLE.get(i[2], "")) + Text(" │ checklist ", style="dim")
            line += Text(
                ", ".join(f"{counts[status]} {status}" for status in _CHECKLIST_STATUSES if counts.get(status)),
                style="green" if set(counts) <= {"done", "n/a"} else "yellow",
            )
            line += Text(" │ ", style="dim") + Text(i[3] or "no roles named yet")
            self.console.print(line)


_DECISION_STYLE = {"PROCEED": "bold green", "HOLD": "bold yellow", "ROLLBACK": "bold red"}
_INCIDENT_STYLE = {"open": "bold red", "mitigated": "bold yellow", "resolved": "green", "closed": "dim"}
_CHECKLIST_STATUSES = ("done", "n/a", "not done", "overdue")


def _flag(name: str, ok: bool) -> Text:
    return Text(f"{name} {'✓' if ok else '✗'}", style="green" if ok else "red")


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S+00")


def run_demo(url: str, console: Console) -> bool:
    """Replay the P0 incident of the playbook on the freshly migrated database at ``url``.

    True when every step behaved as expected (the demo is also a smoke test).
    """
    with (
        psycopg.connect(url, autocommit=True, application_name="chat-rollout demo (on-call)") as conn,
        psycopg.connect(url, autocommit=True, application_name="chat-rollout demo (exporter)") as exporter_conn,
        psycopg.connect(url, autocommit=True, application_name="chat-rollout demo (app server)") as listener_conn,
        psycopg.connect(url, autocommit=True, application_name="chat-rollout demo (standing)") as standing_conn,
    ):
        walk = Walk(console, standing_conn)
        ops = Session(conn, console)
        exporter = Session(exporter_conn, console, label="(exporter)")
        app_server = Session(listener_conn, console, label="(app server)")
        _walk(walk, ops, exporter, app_server)
        walk.standing()

    console.print()
    if walk.deviations:
        console.rule(Text("The demo deviated from the playbook", style="bold red"), align="left")
        for deviation in walk.deviations:
            console.print(Text(f"  ✗ {deviation}", style="red"))
        return False
    console.rule(Text(f"All {walk.steps} steps behaved as the playbook expects", style="bold green"), align="left")
    return True


def _state_of(result: Result) -> tuple:
    row = result.row
    return (row.get("stage"), row.get("kill_switch"), row.get("promotion_frozen"), row.get("version"))


def _checklist(result: Result) -> dict[int, str]:
    return {row["item"]: row["status"] for row in result.rows}


# The checklist right after the guardrail's kill (playbook section 11, plus the IC's 10-minute cadence):
# severity, freeze and kill switch are facts already; the exit criteria hold (the spike is 35 minutes old).
_CHECKLIST_DECLARED = {
    1: "done", 2: "not done", 3: "done", 4: "done", 5: "not done", 6: "not done",
    7: "done", 8: "not done", 9: "not done", 10: "not done", 11: "done",
}  # fmt: skip


def _postmortem(
    incident_id: int, spike_at: dt.datetime, moments: dict[str, Any], history: Sequence[dict], today: dt.date
) -> dict:
    """The postmortem of playbook section 10, its timeline and decision log taken from what the walk recorded."""

    def at(key: str) -> str:
        moment = moments.get(key)
        return _utc_mark(moment) if isinstance(moment, dt.datetime) else "(not recorded)"

    def deadline(days: int) -> str:
        return (today + dt.timedelta(days=days)).isoformat()

    return {
        "timeline": [
            f"{_utc_mark(spike_at)} canary bucket: 3 of 200 ACKs without a receipt within 10 s",
            f"{at('auto_kill')} the bucket arrives 35 minutes late: the P0 guardrail kills the rollout in the same "
            f"call (v4) and declares P0 incident {incident_id}",
            f"{at('kill')} roles named, SQL snapshot taken; IC alice confirms the kill switch verbatim (v5)",
            f"{at('resume')} controlled resume at canary_1 (v6): the P0 exit criteria hold",
            f"{at('resolved')} incident {incident_id} resolved",
            f"{at('unfreeze')} freeze lifted through the gate (v7)",
            f"{at('promote')} promotion to canary_5 through the Go/No-Go (v8)",
        ],
        "root_cause": {
            "technical": "backend: the idempotency path answers a duplicate ACK with the stored ACK and skips "
            "receipt emission",
            "process": "no test sends a duplicate ACK; the missing-receipt metric paged nobody, and the exporter's "
            "reconciliation delivered the evidence 35 minutes late",
        },
        "what_worked": [
            "the P0 guardrail killed the rollout in the ingestion call that wrote the evidence, and declared the "
            "incident",
            "LISTENing application servers held the kill at once",
            "the client fallback (status_write, resync_stream) kept every message visible",
        ],
        "what_did_not_work": [
            "the evidence arrived 35 minutes after the fact (late reconciliation bucket)",
            "nothing alerted on ack_without_receipt_10s_rate before the guardrail",
        ],
        "action_items": [
            {
                "kind": "test",
                "title": "a duplicate ACK emits its receipt (idempotency path)",
                "owner": "carol",
                "deadline": deadline(7),
            },
            {
                "kind": "alert",
                "title": "page the on-call on any ack_without_receipt_10s_rate > 0",
                "owner": "dave",
                "deadline": deadline(3),
            },
            {
                "kind": "guardrail",
                "title": "exporter lag guardrail: hold promotion while reconciliation is behind",
                "owner": "alice",
                "deadline": deadline(14),
            },
        ],
        "decision_log": [
            f"v{row['version']} {row['utc']} UTC {row['action']}"
            + (f" by {row['actor']}" if row.get("actor") else "")
            + f": {_short(row.get('reason') or '', 60)}"
            for row in reversed(history)
        ],
    }


def _short(text: str, width: int = 80) -> str:
    """``text`` cut at a word boundary to at most ``width`` characters."""
    return text if len(text) <= width else text[: width - 1].rsplit(" ", 1)[0] + " …"


def _utc_mark(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _walk(walk: Walk, ops: Session, exporter: Session, app_server: Session) -> None:
    console = walk.console
    gates_verdict = (
        "select gate_p0_ok, gate_p1_ok, rollout_decision, promotion_allowed, blockers\n"
        "  from public.chat_get_v11_release_gates();"
    )
    moments: dict[str, Any] = {}  # when each rollout decision was taken, for the postmortem

    # --- before any data -----------------------------------------------------------------------------
    walk.step("Playbook §4.2 — take the SQL snapshot: the three sources of truth, on a fresh rollout")
    gates = ops.run("select * from public.chat_get_v11_release_gates();")
    state = ops.run("select * from public.chat_get_v11_rollout_state();")
    history = ops.run("select * from public.chat_get_v11_rollout_history(50);")
    walk.check(
        _state_of(state) == ("off", False, False, 1),
        "a fresh rollout starts at stage off, kill switch off, not frozen, version 1",
    )
    walk.check([r["action"] for r in history.rows] == ["init"], "the history holds the single init row")
    walk.check(
        (gates.row.get("gate_p0_ok"), gates.row.get("rollout_decision"), gates.row.get("promotion_allowed"))
        == (False, "HOLD", False),
        "no metric data yet: the gates fail closed (gate_p0_ok false, HOLD, no GO), the blockers say why",
    )

    walk.step("Playbook §9 (NO-GO) — promoting off → canary_1 without data is refused (RO005)")
    promote = ops.run("select * from public.chat_set_v11_rollout_state('canary_1', false, 'canary 1 %');")
    walk.refused(promote, "RO005", "missing data never passes: the promotion is refused with RO005")

    # --- healthy data, promotion to canary_1 ---------------------------------------------------------
    walk.step("The metric exporter writes the last 60 minutes of 10-second buckets, both cohorts, ending now")
    scenario = scenarios.load("healthy_canary")
    anchor = scenarios.anchor_now()
    samples = scenario.samples(anchor)
    walk.say(f"Its samples: the scenario healthy_canary ({scenario.description})")
    exporter.run("SET chat.actor = 'exporter';")
    written = exporter.run(
        "select public.chat_put_v11_metric_samples($1::jsonb);",
        [json.dumps(samples)],
        comment=f"$1: {len(samples)} samples, buckets {_utc(anchor - dt.timedelta(minutes=60))} "
        f"to {_utc(anchor)}, cohorts canary (1 %) and control",
    )
    walk.check(
        written.row.get("chat_put_v11_metric_samples") == len(samples),
        f"all {len(samples)} samples are written in one all-or-nothing call",
    )
    verdict = ops.run(gates_verdict)
    walk.check(
        (
            verdict.row.get("gate_p0_ok"),
            verdict.row.get("gate_p1_ok"),
            verdict.row.get("rollout_decision"),
            verdict.row.get("promotion_allowed"),
        )
        == (True, True, "PROCEED", True),
        "every check passes: gate_p0_ok, gate_p1_ok, PROCEED, promotion_allowed (GO)",
    )

    walk.step("Playbook §9 (GO) — promote off → canary_1 through the Go/No-Go")
    promote = ops.run("select * from public.chat_set_v11_rollout_state('canary_1', false, 'canary 1 %');")
    walk.accepted(promote, "the promotion is accepted")
    walk.check(
        _state_of(promote) == ("canary_1", False, False, 2) and promote.row.get("traffic_percent") == 1,
        "stage canary_1 (1 % of traffic), not frozen, version 2",
    )

    walk.step("Playbook §9 — 'metrics stable in the agreed observation window': canary_5 is refused (RO006)")
    early = ops.run("select * from public.chat_set_v11_rollout_state('canary_5', false, 'canary 5 %');")
    walk.refused(early, "RO006", "canary_1 has not been observed for 30 minutes: refused with RO006")
    blockers = ops.run("select promotion_allowed, blockers from public.chat_get_v11_release_gates();")
    listed = blockers.row.get("blockers") or []
    walk.check(
        blockers.row.get("promotion_allowed") is False
        and len(listed) == 1
        and "must be observed for 00:30:00" in listed[0],
        "the gates are green; the one blocker is the observation window, with its end time",
    )

    walk.step("Playbook §8 — freeze without kill, verbatim: hold at canary_1")
    hold = ops.run("select * from public.chat_set_v11_rollout_state('canary_1', false, 'hold');")
    walk.accepted(hold, "the hold is accepted")
    walk.check(_state_of(hold) == ("canary_1", False, True, 3), "stage canary_1, promotion frozen, version 3")

    walk.step("Application servers LISTEN on chat_v11_rollout, to react to the kill switch at once")
    listen = app_server.run(f"LISTEN {CHANNEL};")
    walk.accepted(listen, "the application server listens on chat_v11_rollout")

    # --- the P0 spike ----------------------------------------------------------------------------------
    spike_at = anchor - dt.timedelta(minutes=35)
    spike = [
        {
            "metric": "ack_without_receipt_10s_rate",
            "cohort": "canary",
            "bucket_start": spike_at.isoformat().replace("+00:00", "Z"),
            "numerator": 3,
            "denominator": 200,
        }
    ]
    walk.step("Playbook §5 (P0: ack_without_receipt_10s_rate > 0) — the spike, found late, kills in the same call")
    walk.say(
        f"The exporter's reconciliation re-sends the canary bucket of {_utc(spike_at)} (35 minutes ago): "
        "3 of 200 ACKs got no receipt within 10 s."
    )
    put = exporter.run(f"select public.chat_put_v11_metric_samples('{json.dumps(spike)}');")
    walk.check(put.row.get("chat_put_v11_metric_samples") == 1, "the bucket is written (it replaces the stored one)")
    killed = ops.run(
        "select version, changed_at, changed_by, actor, action, from_stage, to_stage, to_kill_switch,\n"
        "       promotion_frozen, incident_id, reason\n"
        "  from public.chat_get_v11_rollout_history(1);",
        expanded=True,
    )
    row = killed.row
    moments["auto_kill"] = row.get("changed_at")
    walk.check(
        (row.get("action"), row.get("actor"), row.get("to_stage"), row.get("to_kill_switch"), row.get("version"))
        == ("auto_kill", "guardrail", "canary_1", True, 4),
        "the P0 guardrail engaged the kill switch before the call returned: auto_kill by guardrail, version 4",
    )
    walk.check(
        "ack_without_receipt_10s_rate = " in (row.get("reason") or ""),
        "its reason names the metric and its value",
    )
    walk.check(
        row.get("incident_id") is not None,
        "in the same transaction the guardrail declared a P0 incident: the kill names it (incident_id)",
    )
    notes = list(app_server.conn.notifies(timeout=NOTIFY_TIMEOUT_S, stop_after=1))
    payloads = []
    for note in notes:
        console.print(
            f'Asynchronous notification "{note.channel}" with payload "{note.payload}" '
            f"received from server process with PID {note.pid}.",
            soft_wrap=True,
        )
        console.print(JSON(note.payload))
        try:
            payloads.append(json.loads(note.payload))
        except ValueError:
            payloads.append({})
    if not notes:
        console.print(Text(f"(no notification within {NOTIFY_TIMEOUT_S:g} s)", style="red"))
    walk.check(
        any(
            (p.get("action"), p.get("actor"), p.get("version"), p.get("stage"), p.get("kill_switch"))
            == ("auto_kill", "guardrail", 4, "canary_1", True)
            for p in payloads
        ),
        "the application server holds the payload: auto_kill, actor guardrail, version 4, kill_switch true",
    )

    # --- the incident: the first five minutes ------------------------------------------------------------
    walk.step("Playbook §4.1 / §11 — 'declare the incident and its severity': the guardrail's P0, and what is missing")
    incidents = ops.run("select * from public.chat_get_v11_incidents();")
    incident = incidents.row
    incident_id = incident.get("incident_id") or 0
    walk.check(
        len(incidents.rows) == 1
        and (incident.get("severity"), incident.get("status"), incident.get("has_postmortem")) == ("P0", "open", False)
        and incident_id == row.get("incident_id"),
        "one incident: P0, open, declared by the guardrail with the automatic kill it names, no postmortem yet",
    )
    checklist = ops.run(f"select * from public.chat_get_v11_incident_checklist({incident_id});")
    walk.check(
        _checklist(checklist) == _CHECKLIST_DECLARED,
        "the checklist from facts: severity, freeze and kill switch done, the exit criteria hold already; "
        "missing: 2 snapshot, 5 fallback, 6 root cause, 8 resume, 9 postmortem, 10 action items",
    )

    walk.step("Playbook §3 / §4.2 — the first five minutes: the roles, and the SQL snapshot into the timeline")
    for role, person, duty in (
        ("IC", "alice", "commands, records a decision every 10 minutes"),
        ("scribe", "bob", "timeline, facts, decisions"),
        ("backend", "carol", "commit path, idempotency, receipt emission"),
    ):
        named = ops.run(
            f"select * from public.chat_set_v11_incident_role({incident_id}, '{role}', '{person}');",
            comment=f"§3: {role} — {duty}",
        )
        walk.accepted(named, f"{person} is the {role}")
    snapshot = ops.run(f"select * from public.chat_snapshot_v11_incident({incident_id});")
    body = snapshot.row.get("body") or ""
    walk.check(
        snapshot.error is None and "stage canary_1" in body and "kill switch true" in body,
        "the snapshot stores gates, checks, state and history 50 in the timeline: canary_1, kill switch on",
    )
    roles = ops.run("select incident_id, severity, status, roles, entries from public.chat_get_v11_incidents();")
    walk.check(
        roles.row.get("roles") == "IC=alice, backend=carol, scribe=bob",
        "the incident names its roles: IC=alice, backend=carol, scribe=bob",
    )

    walk.step("Playbook §10 — the postmortem re-evaluates any past moment: the gates 10 s after the spike")
    then = ops.run(
        "select evaluated_at, gate_p0_ok, rollout_decision, stage, kill_switch, failing_checks\n"
        f"  from public.chat_get_v11_release_gates(p_at => '{_utc(spike_at + dt.timedelta(seconds=10))}');",
        comment="stage and kill switch are those in force at p_at: in this replay the rollout was still off then",
    )
    walk.check(
        (then.row.get("gate_p0_ok"), then.row.get("rollout_decision"), then.row.get("failing_checks"))
        == (False, "ROLLBACK", ["ack_without_receipt_10s_rate: fail"]),
        "at that moment: gate_p0_ok false, ROLLBACK, failing ack_without_receipt_10s_rate",
    )
    now = ops.run(gates_verdict)
    now_blockers = now.row.get("blockers") or []
    walk.check(
        (now.row.get("gate_p0_ok"), now.row.get("rollout_decision"), now.row.get("promotion_allowed"))
        == (True, "PROCEED", False)
        and any("kill switch is on" in b for b in now_blockers)
        and any(f"incident {incident_id} (P0, open" in b for b in now_blockers),
        "now the 15-minute gate window no longer holds the spike (PROCEED), but the kill switch and the open "
        "incident block any GO",
    )

    walk.step("Playbook §4.4 — the IC confirms P0 and the kill switch, verbatim, and records the decision")
    confirm = ops.run("select * from public.chat_set_v11_rollout_state('canary_1', true, 'incident P0');")
    moments["kill"] = confirm.row.get("changed_at")
    walk.accepted(confirm, "the IC's kill is accepted and recorded (a second decision is part of the story)")
    walk.check(
        _state_of(confirm) == ("canary_1", True, True, 5) and confirm.row.get("note") is None,
        "kill switch on at canary_1, frozen, version 5",
    )
    decision = ops.run(
        f"select * from public.chat_log_v11_incident({incident_id}, 'decision',\n"
        "       'P0 confirmed: kill switch stays on, rollout frozen; resume only once the P0 exit criteria hold');",
        comment="§3: the IC records a decision at least every 10 minutes",
    )
    walk.check(decision.row.get("kind") == "decision", "the IC's decision is in the UTC timeline")

    # --- the P0 runbook --------------------------------------------------------------------------------
    walk.step("Playbook §5.2–§5.4 — the P0 runbook: the chain checked, the client fallback, the root cause by layer")
    walk.say("The scribe records what the owners report; §5.5: no risky DDL during the incident.")
    fact = ops.run(
        f"select * from public.chat_log_v11_incident({incident_id}, 'fact',\n"
        "       'ACK -> ledger -> event durable; no receipt row for 3 duplicate ACKs; realtime delivers the rest');",
        comment="§5.2–§5.3: the chain ACK -> ledger -> event -> receipt, in the database and in realtime",
    )
    walk.accepted(fact, "the backend owner's finding is a fact in the timeline")
    fallback = ops.run(
        f"select * from public.chat_log_v11_incident({incident_id}, 'fallback_confirmed',\n"
        "       'status_write after 3-5 s, unknown -> resync_stream, full_state_dialog throttled: web and mobile');",
        comment="§5.4: enable or confirm the client fallback",
    )
    walk.accepted(fallback, "the client fallback is confirmed")
    cause = ops.run(
        f"select * from public.chat_log_v11_incident({incident_id}, 'root_cause',\n"
        "       'backend: receipt not emitted for duplicate ACKs (idempotency path returns the stored ACK)');",
        comment="§11.6: the root cause names its layer first ('layer: cause')",
    )
    walk.accepted(cause, "the root cause is localized to the backend layer")
    checklist = ops.run(f"select * from public.chat_get_v11_incident_checklist({incident_id});")
    walk.check(
        _checklist(checklist) == {**_CHECKLIST_DECLARED, 2: "done", 5: "done", 6: "done"},
        "now done: 2 snapshot, 5 fallback, 6 root cause, 11 the IC's decision; "
        "still missing: 8 resume, 9 postmortem, 10 action items",
    )

    walk.step("Playbook §8 — a resume never goes up a stage: resume at canary_5 is refused (RO008)")
    resume_up = ops.run("select * from public.chat_set_v11_rollout_state('canary_5', false, 'resume controlled');")
    walk.refused(resume_up, "RO008", "resume to a higher stage is refused with RO008")

    walk.step("Playbook §5.6 — exit criteria: every P0 check passes, and has for the 30-minute exit window")
    checks = ops.run("select metric, status, explanation from public.chat_get_v11_gate_checks() where severity = 'P0';")
    walk.check(
        len(checks.rows) == 5 and all(r["status"] == "pass" for r in checks.rows),
        "all 5 P0 checks pass now",
    )
    walk.say(
        f"The spike ({_utc(spike_at)}) is 35 minutes old: outside the 30-minute exit window (policy "
        "p0_exit_window), and the samples cover that window. The playbook's resume still waits for the incident "
        "commander: the P0 incident is open (SPEC 4.6, no surprise)."
    )
    early_resume = ops.run("select * from public.chat_set_v11_rollout_state('canary_1', false, 'resume controlled');")
    walk.refused(
        early_resume, "RO018",
        "the resume is refused with RO018 while P0 incident is open; its HINT says promotion is already frozen",
    )

    walk.step("Playbook §11.7 — the exit criteria hold, the incident is not over: closing it now is refused (RO032)")
    items = ops.run(
        f"select item, title, status, evidence from public.chat_get_v11_incident_checklist({incident_id})\n"
        " where item in (7, 8);"
    )
    walk.check(
        _checklist(items) == {7: "done", 8: "not done"},
        "7 exit criteria met; 8 the resume has not happened yet",
    )
    early_close = ops.run(f"select * from public.chat_close_v11_incident({incident_id}, 'exit criteria hold');")
    walk.refused(early_close, "RO032", "an open incident cannot be closed: refused with RO032, resolve it first")

    walk.step("Playbook §5.6 / §11.7 — the exit criteria hold: the IC resolves the P0 incident; closing needs §10")
    walk.say("Resolving is checked against the exit criteria; the close checks them again.")
    resolved = ops.run(
        f"select * from public.chat_set_v11_incident_status({incident_id}, 'resolved', 'P0 exit criteria hold');"
    )
    moments["resolved"] = resolved.row.get("changed_at")
    walk.accepted(resolved, "the incident is resolved: its P0 exit criteria hold")
    walk.check(
        (resolved.row.get("status"), resolved.row.get("previous_status")) == ("resolved", "open"),
        "status open -> resolved",
    )
    no_postmortem = ops.run(f"select * from public.chat_close_v11_incident({incident_id}, 'resolved');")
    walk.refused(no_postmortem, "RO034", "resolved, but no postmortem yet: closing is refused with RO034")

    walk.step("Playbook §8 — the controlled resume, through the P0 exit criteria and the resolved incident")
    resume = ops.run("select * from public.chat_set_v11_rollout_state('canary_1', false, 'resume controlled');")
    moments["resume"] = resume.row.get("changed_at")
    walk.accepted(resume, "the controlled resume is accepted; a NOTICE says the kill switch is off")
    walk.check(
        _state_of(resume) == ("canary_1", False, True, 6) and resume.row.get("action") == "resume",
        "action resume: kill switch off at canary_1, promotion stays frozen, version 6",
    )
    item8 = ops.run(
        f"select item, status from public.chat_get_v11_incident_checklist({incident_id}) where item = 8;"
    )
    walk.check(_checklist(item8) == {8: "done"}, "8 the resume went through the P0 exit criteria")

    walk.step("Playbook §11.8 — 'rollout resume only through the gate': lift the freeze")
    lift = ops.run("select * from public.chat_lift_v11_freeze('gates green after the controlled resume');")
    moments["unfreeze"] = lift.row.get("changed_at")
    walk.accepted(lift, "the unfreeze is accepted: kill switch off, gates green, no open incident")
    walk.check(_state_of(lift) == ("canary_1", False, False, 7), "canary_1, not frozen, version 7")

    walk.step("Playbook §9 (GO) — promotion through the gate: canary_1 → canary_5")
    walk.say(
        "canary_1 was promoted seconds ago; for the demo an admin shortens its observation window to 0 "
        "(an audited configuration change, in chat_v11.config_change)."
    )
    settings = ops.run("select * from public.chat_set_v11_stage_settings('canary_1', null, '0');")
    walk.accepted(settings, "the stage setting is changed")
    audit = ops.run(
        "select changed_by, target, target_key, old_value, new_value\n"
        "  from chat_v11.config_change order by change_id desc limit 1;",
        expanded=True,
    )
    walk.check(
        (
            audit.row.get("target"),
            audit.row.get("target_key"),
            (audit.row.get("new_value") or {}).get("min_observation"),
        )
        == ("stage", "canary_1", "00:00:00"),
        "the change is audited: who, which stage, from 30 minutes to 0",
    )
    go = ops.run("select promotion_allowed, blockers from public.chat_get_v11_release_gates();")
    walk.check(go.row.get("promotion_allowed") is True, "the Go/No-Go holds: GO, no blockers")
    promote = ops.run("select * from public.chat_set_v11_rollout_state('canary_5', false, 'canary 5 %');")
    moments["promote"] = promote.row.get("changed_at")
    walk.accepted(promote, "the promotion to canary_5 is accepted")
    walk.check(
        _state_of(promote) == ("canary_5", False, False, 8) and promote.row.get("traffic_percent") == 5,
        "stage canary_5 (5 % of traffic), not frozen, version 8",
    )

    # --- the decision log, the postmortem --------------------------------------------------------------
    walk.step("Playbook §10.5 — the decision log: verify the hash chain, read the history (UTC)")
    verify = ops.run("select * from public.chat_verify_v11_history();")
    walk.check(
        (verify.row.get("ok"), verify.row.get("rows_checked"), verify.row.get("first_broken_version"))
        == (True, 8, None),
        "the chain of 8 rows is intact",
    )
    log = ops.run(
        "select version, to_char(changed_at at time zone 'UTC', 'HH24:MI:SS') as utc, action, actor,\n"
        "       to_stage as stage, to_kill_switch as kill, promotion_frozen as frozen, reason\n"
        "  from public.chat_get_v11_rollout_history(50);",
        expanded=True,
    )
    walk.check(
        [r["action"] for r in log.rows]
        == ["promote", "unfreeze", "resume", "kill", "auto_kill", "hold", "promote", "init"],
        "newest first: promote, unfreeze, resume, kill, auto_kill, hold, promote, init (refusals left no trace)",
    )

    postmortem = _postmortem(incident_id, spike_at, moments, log.rows[:-1], anchor.date())
    draft = json.loads(json.dumps(postmortem))
    draft["action_items"][1]["owner"] = ""
    walk.step("Playbook §10 — the postmortem (required): incomplete is refused (RO035), complete is stored")
    walk.say("The scribe's draft: the alert has no owner yet.")
    put_draft = ops.run(
        f"select * from public.chat_put_v11_postmortem({incident_id}, $1::jsonb);",
        [json.dumps(draft)],
        comment="$1: the draft, every section written, but action item 2 (the alert) has no owner",
    )
    walk.refused(put_draft, "RO035", "an action item without an owner: the postmortem is refused with RO035")
    detail = (put_draft.error.diag.message_detail or "") if put_draft.error is not None else ""
    walk.check(
        "action item 2: owner is missing" in detail,
        "its DETAIL names what is missing: action item 2: owner is missing",
    )
    walk.say("dave (SRE) takes the alert. The postmortem, complete:")
    console.print(JSON(json.dumps(postmortem, ensure_ascii=False)))
    put_final = ops.run(
        f"select * from public.chat_put_v11_postmortem({incident_id}, $1::jsonb);",
        [json.dumps(postmortem)],
        comment="$1: the postmortem above",
    )
    walk.accepted(put_final, "the complete postmortem is stored")
    walk.check(put_final.row.get("action_items") == 3, "3 action items: a test, an alert, a guardrail")
    checklist = ops.run(f"select * from public.chat_get_v11_incident_checklist({incident_id});")
    walk.check(
        _checklist(checklist) == {**{item: "done" for item in range(1, 11)}, 11: "n/a"},
        "the whole checklist is done (11, the decision cadence, is n/a once resolved)",
    )

    walk.step("Playbook §11.9–§11.10 — postmortem created, action items assigned: the IC closes the incident")
    closed = ops.run(f"select * from public.chat_close_v11_incident({incident_id}, 'postmortem reviewed');")
    walk.accepted(closed, "the incident is closed")
    final = ops.run("select * from public.chat_get_v11_incidents();")
    walk.check(
        (final.row.get("status"), final.row.get("has_postmortem"), final.row.get("closed_at") is not None)
        == ("closed", True, True),
        "closed, with its postmortem",
    )
    late = ops.run(f"select * from public.chat_log_v11_incident({incident_id}, 'fact', 'a late note');")
    walk.refused(late, "RO036", "a closed incident does not change: a late entry is refused with RO036")

    walk.step("Playbook §10.1 — the timeline with UTC marks: the incident, the rollout and the gates, in one")
    timeline = ops.run(f"select * from public.chat_get_v11_incident_timeline({incident_id});", expanded=True)
    sources = {r["source"] for r in timeline.rows}
    kinds = [r["kind"] for r in timeline.rows if r["source"] == "incident"]
    walk.check(sources == {"incident", "rollout", "gates"}, "one timeline from three sources: incident, rollout, gates")
    walk.check(
        bool(kinds) and kinds[0] == "opened" and kinds[-1] == "status"
        and {"role", "snapshot", "decision", "fact", "fallback_confirmed", "root_cause", "exit_criteria",
             "postmortem"} <= set(kinds),
        "the incident from its declaration to its close: roles, snapshot, decision, fact, fallback, root cause, "
        "exit criteria, postmortem",
    )  # fmt: skip
    walk.check(
        any("ROLLBACK" in (r["body"] or "") for r in timeline.rows if r["source"] == "gates")
        and [r["kind"] for r in timeline.rows if r["source"] == "rollout"][-5:]
        == ["auto_kill", "kill", "resume", "unfreeze", "promote"],
        "the gates turn ROLLBACK at the spike; the rollout: auto_kill, kill, resume, unfreeze, promote",
    )


# --- the demo database -----------------------------------------------------------------------------


def prepare_database(server: Server, name: str = DEMO_DATABASE) -> str:
    """Drop and recreate ``name`` on ``server``, migrate it to head; returns its URL."""
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = server.url_for(name)
    migrate.upgrade(url)
    return url
