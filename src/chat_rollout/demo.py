"""The demo: the on-call playbook's SQL calls, walked through like a psql session (and a smoke test).

``run_demo(url, console)`` takes a freshly migrated database and walks the playbook (sections 4, 5, 8,
9, 10): the SQL snapshot, gates that fail closed without metric data, a refused promotion, a hold, the
kill switch, a refused resume, the NOTIFY an application server receives, and the verified history.
Every call is printed with its result (or its refusal, as ``ERROR <SQLSTATE>``) and checked against
what the playbook expects; it returns True only when every step behaved as expected.

The rendering helpers here (``print_pg_error``, ``print_rows``) are shared with the CLI.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from rich import box
from rich.console import Console
from rich.json import JSON
from rich.table import Table
from rich.text import Text

from . import migrate
from .server import Server

DEMO_DATABASE = "chat_rollout_demo"
CHANNEL = "chat_v11_rollout"
NOTIFY_TIMEOUT_S = 5.0


# --- rendering, psql style -------------------------------------------------------------------------


def format_value(value: Any) -> Text:
    """One value as psql would show it, a little friendlier: null, true/false, JSON, arrays one per line."""
    if value is None:
        return Text("null", style="dim")
    if isinstance(value, bool):
        return Text("true" if value else "false", style="green" if value else "red")
    if isinstance(value, dict):
        return Text(json.dumps(value, ensure_ascii=False, default=str))
    if isinstance(value, list | tuple):
        return Text("\n".join(str(item) for item in value)) if value else Text("{}", style="dim")
    if isinstance(value, dt.datetime | dt.date | dt.timedelta | Decimal):
        return Text(str(value))
    return Text(str(value))


def print_pg_error(console: Console, exc: psycopg.Error) -> None:
    """A refusal or failure as ``ERROR <SQLSTATE>: message`` with DETAIL and HINT, no traceback."""
    diag = exc.diag
    message = diag.message_primary or str(exc).strip()
    head = f"ERROR {exc.sqlstate}: " if exc.sqlstate else "ERROR: "
    console.print(Text(head, style="bold red") + Text(message))
    if diag.message_detail:
        console.print(Text("DETAIL: ", style="bold") + Text(diag.message_detail))
    if diag.message_hint:
        console.print(Text("HINT: ", style="bold") + Text(diag.message_hint))


def print_rows(console: Console, columns: Sequence[str], rows: Sequence[dict], *, expanded: bool | None = None) -> None:
    """Rows as a table; as psql's expanded display (``\\x``) when a table would not fit the console."""
    if expanded is None:
        expanded = _natural_width(columns, rows) > console.width and len(columns) > 4
    if not expanded:
        console.print(_grid(columns, rows))
    else:
        for number, row in enumerate(rows, 1):
            console.print(Text(f"-[ RECORD {number} ]", style="dim"))
            record = Table.grid(padding=(0, 2))
            record.add_column(style="bold", no_wrap=True)
            record.add_column(overflow="fold")
            for column in columns:
                record.add_row(column, format_value(row[column]))
            console.print(record)
    console.print(Text(f"({len(rows)} row{'' if len(rows) == 1 else 's'})", style="dim"))


def _natural_width(columns: Sequence[str], rows: Sequence[dict]) -> int:
    """The width a table needs with no cell wrapped."""
    widths = [
        max([len(column)] + [max(map(len, format_value(row[column]).plain.split("\n"))) for row in rows])
        for column in columns
    ]
    return sum(widths) + 2 * len(widths)


def _grid(columns: Sequence[str], rows: Sequence[dict]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(format_value(row[column]) for column in columns))
    return table


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
            Text(f"{diag.severity or 'NOTICE'}: ", style="bold yellow") + Text(diag.message_primary or "")
        )

    def run(self, statement: str) -> Result:
        self.console.print(Text(self.prompt, style="dim") + Text(statement, style="bold cyan"))
        result = Result(sql=statement)
        try:
            with self.conn.cursor(row_factory=dict_row) as cur:
                cur.execute(statement)
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
            print_rows(self.console, result.columns, result.rows)
        return result


# --- the walk --------------------------------------------------------------------------------------


class Walk:
    """Numbered steps with a heading each, and checks that record every deviation."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.steps = 0
        self.deviations: list[str] = []

    def step(self, heading: str) -> None:
        self.steps += 1
        self.console.print()
        self.console.print(Text(f"── Step {self.steps}. ", style="bold magenta") + Text(heading, style="bold"))

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


def run_demo(url: str, console: Console) -> bool:
    """Walk the playbook on the freshly migrated database at ``url``; True when every step is as expected."""
    walk = Walk(console)
    with (
        psycopg.connect(url, autocommit=True, application_name="chat-rollout demo") as conn,
        psycopg.connect(url, autocommit=True, application_name="chat-rollout demo (listener)") as listener_conn,
    ):
        ops = Session(conn, console)
        app_server = Session(listener_conn, console, label="(session 2: an application server)")
        _walk(walk, ops, app_server)

    console.print()
    if walk.deviations:
        console.rule(Text("The demo deviated from the playbook", style="bold red"), align="left")
        for deviation in walk.deviations:
            console.print(Text(f"  ✗ {deviation}", style="red"))
        return False
    console.rule(Text(f"All {walk.steps} steps behaved as the playbook expects", style="bold green"), align="left")
    return True


def _walk(walk: Walk, ops: Session, app_server: Session) -> None:
    console = walk.console

    walk.step("Playbook §4.2 — take the SQL snapshot: the three sources of truth")
    gates = ops.run("select * from public.chat_get_v11_release_gates();")
    state = ops.run("select * from public.chat_get_v11_rollout_state();")
    history = ops.run("select * from public.chat_get_v11_rollout_history(50);")
    walk.accepted(gates, "the release gates answer with one row")
    walk.check(
        (
            state.row.get("stage"),
            state.row.get("kill_switch"),
            state.row.get("promotion_frozen"),
            state.row.get("version"),
        )
        == ("off", False, False, 1),
        "a fresh rollout starts at stage off, kill switch off, not frozen, version 1",
    )
    walk.check([r["action"] for r in history.rows] == ["init"], "the history holds the single init row")

    walk.step("Playbook §9 (NO-GO) — the gates fail closed: no metric data yet, so gate_p0_ok is false and HOLD")
    verdict = ops.run(
        "select gate_p0_ok, gate_p1_ok, rollout_decision, promotion_allowed, blockers\n"
        "  from public.chat_get_v11_release_gates();"
    )
    checks = ops.run("select metric, severity, status, explanation from public.chat_get_v11_gate_checks();")
    walk.check(
        (verdict.row.get("gate_p0_ok"), verdict.row.get("rollout_decision"), verdict.row.get("promotion_allowed"))
        == (False, "HOLD", False),
        "gate_p0_ok is false, rollout_decision is HOLD, promotion is not allowed",
    )
    walk.check(bool(verdict.row.get("blockers")), "the blockers say, in words, why it is not GO")
    p0 = [r for r in checks.rows if r["severity"] == "P0"]
    walk.check(
        bool(p0) and all(r["status"] != "pass" for r in p0),
        "no P0 check passes without data (missing data never passes)",
    )

    walk.step("Playbook §9 — promoting off → canary_1 while the Go/No-Go does not hold is refused (RO005)")
    promote = ops.run("select * from public.chat_set_v11_rollout_state('canary_1', false, 'promote to canary_1');")
    walk.refused(promote, "RO005", "the promotion is refused with RO005, the blockers in DETAIL")

    walk.step("Playbook §9 — skipping a stage (off → canary_5) is refused (RO003), whatever the gates say")
    skip = ops.run("select * from public.chat_set_v11_rollout_state('canary_5', false, 'promote to canary_5');")
    walk.refused(skip, "RO003", "the promotion that skips canary_1 is refused with RO003")

    walk.step(
        "Playbook §4.3 / §8 — freeze without kill: hold at the current stage "
        "(the playbook's example says 'canary_1'; this rollout is still at 'off')"
    )
    hold = ops.run("select * from public.chat_set_v11_rollout_state('off', false, 'hold');")
    walk.accepted(hold, "the hold is accepted")
    walk.check(
        (hold.row.get("stage"), hold.row.get("kill_switch"), hold.row.get("promotion_frozen"), hold.row.get("version"))
        == ("off", False, True, 2),
        "stage stays off, promotion is frozen, version 2",
    )

    walk.step("Playbook §8 — a frozen rollout refuses every promotion (RO004) until chat_lift_v11_freeze()")
    frozen = ops.run("select * from public.chat_set_v11_rollout_state('canary_1', false, 'promote to canary_1');")
    walk.refused(frozen, "RO004", "the promotion is refused with RO004 while promotion is frozen")

    walk.step("Application servers LISTEN on chat_v11_rollout to react to the kill switch at once")
    listen = app_server.run(f"LISTEN {CHANNEL};")
    walk.accepted(listen, "session 2 listens on chat_v11_rollout")

    walk.step("Playbook §4.4 / §8 — emergency stop, verbatim: the kill switch is accepted although the gates are red")
    kill = ops.run("select * from public.chat_set_v11_rollout_state('canary_1', true, 'kill switch');")
    walk.accepted(kill, "the kill switch is accepted with red gates")
    walk.check(
        (kill.row.get("stage"), kill.row.get("kill_switch"), kill.row.get("promotion_frozen"), kill.row.get("version"))
        == ("off", True, True, 3),
        "kill switch on at stage off, promotion frozen, version 3",
    )
    walk.check(
        "not applied" in (kill.row.get("note") or ""),
        "its note says the higher stage canary_1 was not applied (an emergency stop never fails on the stage)",
    )

    walk.step("…and session 2 holds the NOTIFY payload of the kill (SPEC 4.6: version, action, stage, kill switch)")
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
            (p.get("action"), p.get("version"), p.get("stage"), p.get("kill_switch")) == ("kill", 3, "off", True)
            for p in payloads
        ),
        "the payload announces the kill: action kill, version 3, stage off, kill_switch true",
    )

    walk.step(
        "Playbook §8 — return after stabilisation, verbatim: refused, canary_1 is above the current stage (RO008)"
    )
    resume_up = ops.run("select * from public.chat_set_v11_rollout_state('canary_1', false, 'resume controlled');")
    walk.refused(resume_up, "RO008", "a resume never goes up a stage: refused with RO008")

    walk.step("Playbook §5.6 — resume at the current stage is refused too: the P0 exit criteria do not hold (RO007)")
    resume = ops.run("select * from public.chat_set_v11_rollout_state('off', false, 'resume controlled');")
    walk.refused(resume, "RO007", "resume is refused with RO007 until every P0 check passes over the exit window")

    walk.step("SPEC 4.3 — the history is an append-only hash chain: verify it")
    verify = ops.run("select * from public.chat_verify_v11_history();")
    walk.check(
        (verify.row.get("ok"), verify.row.get("rows_checked"), verify.row.get("first_broken_version"))
        == (True, 3, None),
        "the chain of 3 rows is intact",
    )

    walk.step("Playbook §10 — the decision log: the final state and history (refused calls left no trace)")
    final = ops.run("select * from public.chat_get_v11_rollout_state();")
    log = ops.run("select * from public.chat_get_v11_rollout_history(50);")
    walk.check(
        (
            final.row.get("stage"),
            final.row.get("kill_switch"),
            final.row.get("promotion_frozen"),
            final.row.get("version"),
        )
        == ("off", True, True, 3),
        "the rollout is stopped: stage off, kill switch on, frozen, version 3",
    )
    walk.check(
        [(r["version"], r["action"], r["reason"]) for r in log.rows]
        == [(3, "kill", "kill switch"), (2, "hold", "hold"), (1, "init", "init")],
        "the history reads kill, hold, init (newest first), each with its reason",
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
