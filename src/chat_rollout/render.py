"""Rows and errors as an operator reads them in psql, for the CLI and the demo alike; and the CLI's tables of the
rollout (state, gate verdict, checks, history, what each section 8 call does now)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import psycopg
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .utc import utc


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
    print_refusal(
        console, diag.message_primary or str(exc).strip(), diag.message_detail, diag.message_hint, exc.sqlstate
    )


def print_refusal(
    console: Console, message: str, detail: str | None = None, hint: str | None = None, sqlstate: str | None = None
) -> None:
    """One paragraph: ``ERROR <SQLSTATE>: message`` (``ERROR: message`` without one), DETAIL and HINT lines."""
    head = f"ERROR {sqlstate}: " if sqlstate else "ERROR: "
    console.print(Text(head, style="bold red") + Text(message))
    if detail:
        console.print(Text("DETAIL: ", style="bold") + Text(detail))
    if hint:
        console.print(Text("HINT: ", style="bold") + Text(hint))


def print_notice(console: Console, diag: Any) -> None:
    """A server NOTICE or WARNING as psql shows it, ``NOTICE: message`` (a Diagnostic, or anything with its
    severity and message_primary)."""
    console.print(Text(f"{diag.severity or 'NOTICE'}: ", style="bold yellow") + Text(diag.message_primary or ""))


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


# --- the CLI's words for flags, records and the rollout ---------------------------------------------------------

DECISION_STYLE = {"PROCEED": "bold green", "HOLD": "bold yellow", "ROLLBACK": "bold red"}
_CHECK_STATUS_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow", "not_applicable": "dim"}


def yes_no(value: Any) -> Text:
    if value is None:
        return Text("null", style="dim")
    return Text("yes" if value else "no", style="green" if value else "red")


def on_off(value: Any) -> Text:
    """A kill switch: ON (red) or off."""
    if value is None:
        return Text("-", style="dim")
    return Text("ON" if value else "off", style="bold red" if value else "green")


def print_record(console: Console, title: str, row: dict) -> None:
    """One returned row as a two-column table (psql's ``\\x``), moments in UTC."""
    table = Table(title=title, box=box.ROUNDED, show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in row.items():
        if isinstance(value, dt.datetime):
            shown: Text | str = utc(value)
        elif value is None:
            shown = Text("null", style="dim")
        else:
            shown = str(value)
        table.add_row(key, shown)
    console.print(table)


def state_line(action: str, row: dict) -> Text:
    """What a state call recorded, in one line: action, stage, kill switch, freeze, version."""
    return (
        Text("recorded: ", style="bold")
        + Text(action, style="bold red" if action in ("kill", "rollback") else "bold")
        + Text(f" │ stage {row['stage']} ({row['traffic_percent']} %) │ kill switch ")
        + on_off(row["kill_switch"])
        + Text(" │ promotion ")
        + (Text("frozen", style="yellow") if row["promotion_frozen"] else Text("not frozen", style="green"))
        + Text(f" │ version {row['version']}")
    )


def state_table(state: dict, head: dict | None) -> Table:
    """The rollout state now, with the head of the history as an anchor to keep outside the database."""
    table = Table(title="Rollout state", box=box.ROUNDED, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("stage", Text(f"{state['stage']} ({state['traffic_percent']} %)", style="bold"))
    table.add_row("kill switch", on_off(state["kill_switch"]))
    table.add_row("promotion frozen", yes_no(state["promotion_frozen"]))
    table.add_row("reason", str(state["reason"]))
    table.add_row("changed by", str(state["changed_by"]) + (f" (actor {state['actor']})" if state["actor"] else ""))
    table.add_row("changed at", str(state["changed_at"]))
    table.add_row("version", str(state["version"]))
    table.add_row(
        "head anchor",
        Text(f"version {head['version']} hash {head['hash']}") if head else Text("no history", style="red"),
    )
    return table


def print_verdict(console: Console, gates: dict) -> None:
    """The Go/No-Go and, when it does not hold, every blocker."""
    verdict = Table(title="Gate verdict", box=box.ROUNDED, title_justify="left")
    for column in ("gate_p0_ok", "gate_p1_ok", "rollout_decision", "promotion_allowed"):
        verdict.add_column(column)
    decision = gates["rollout_decision"]
    allowed = gates["promotion_allowed"]
    verdict.add_row(
        yes_no(gates["gate_p0_ok"]),
        yes_no(gates["gate_p1_ok"]),
        Text(str(decision), style=DECISION_STYLE.get(decision, "")),
        Text("GO" if allowed else "NO-GO", style="bold green" if allowed else "bold red"),
    )
    console.print(verdict)
    blockers = gates.get("blockers") or []
    if not blockers:
        console.print(Text("No blockers: the Go/No-Go holds.", style="green"))
        return
    listing = Table.grid(padding=(0, 1))
    listing.add_column(no_wrap=True)
    listing.add_column(overflow="fold")
    for blocker in blockers:
        listing.add_row("  •", blocker)
    console.print(Text("Blockers (why not GO):", style="bold"))
    console.print(listing)


def checks_table(checks: Sequence[dict]) -> Table:
    table = Table(title="Gate checks", box=box.ROUNDED, title_justify="left")
    table.add_column("metric", no_wrap=True)
    table.add_column("severity")
    table.add_column("status", no_wrap=True)
    table.add_column("explanation", overflow="fold")
    for check in checks:
        table.add_row(
            check["metric"],
            check["severity"],
            Text(check["status"], style=_CHECK_STATUS_STYLE.get(check["status"], "")),
            check["explanation"] or "",
        )
    return table


def history_table(rows: Sequence[dict], title: str) -> Table:
    table = Table(title=title, box=box.ROUNDED, title_justify="left")
    for column in ("version", "changed_at", "changed_by", "action", "stage", "kill switch", "frozen", "reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["version"]),
            str(row["changed_at"]),
            str(row["changed_by"]),
            Text(row["action"], style="bold"),
            f"{row['from_stage'] or '∅'} → {row['to_stage']}",
            on_off(row["to_kill_switch"]),
            yes_no(row["promotion_frozen"]),
            row["reason"] or "",
        )
    return table


def calls_table(calls: Sequence[tuple[str, str]]) -> Table:
    """What each of the playbook's section 8 call shapes does from the state now (section8.calls_now)."""
    table = Table(title="Playbook section 8 calls: what each does now", box=box.ROUNDED, title_justify="left")
    table.add_column("chat_set_v11_rollout_state", no_wrap=True)
    table.add_column("does now", overflow="fold")
    for call, effect in calls:
        table.add_row(call, effect)
    return table
