"""A psql-like session that echoes each call and its result, and the walk: chapters, steps, checks, the standing.

By default a call shows its SQL and, where the story needs it, a compact table; a refusal shows its SQLSTATE, its
message and the first line of its DETAIL. ``verbose`` shows every comment, every result in full and every HINT.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import psycopg
from psycopg.rows import dict_row
from rich.console import Console
from rich.text import Text

from ..render import print_notice, print_pg_error, print_refusal, print_rows

BRIEF = 190  # characters of a NOTICE shown by default: two lines at 100 columns (a DETAIL gets one line)


def brief(text: str, width: int = BRIEF) -> str:
    """``text`` cut at a word boundary to at most ``width`` characters."""
    return text if len(text) <= width else text[: width - 2].rsplit(" ", 1)[0] + " …"


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

    @property
    def detail(self) -> str:
        return (self.error.diag.message_detail or "") if self.error is not None else ""


class Session:
    """An autocommit connection that echoes each statement, its notices and its result."""

    def __init__(self, conn: psycopg.Connection, console: Console, label: str, *, verbose: bool = False) -> None:
        self.conn = conn
        self.console = console
        self.verbose = verbose
        self.prompt = f"{label}=# "
        conn.add_notice_handler(self._notice)

    def _notice(self, diag: psycopg.errors.Diagnostic) -> None:
        if self.verbose:
            print_notice(self.console, diag)
        else:
            print_notice(
                self.console,
                SimpleNamespace(severity=diag.severity, message_primary=brief(diag.message_primary or "", BRIEF - 10)),
            )

    def run(
        self,
        statement: str,
        params: Sequence[Any] | None = None,
        *,
        comment: str | None = None,
        table: bool | Sequence[str] = False,
        expanded: bool | None = None,
    ) -> Result:
        """Echo ``statement``, run it with ``params``; print its rows (all when verbose, else the ``table``
        columns, if any) or its refusal."""
        self.console.print(Text(self.prompt, style="dim") + Text(statement, style="bold cyan"))
        if comment and self.verbose:
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
            if self.verbose:
                print_pg_error(self.console, exc)
            else:
                diag = exc.diag
                detail = brief(diag.message_detail or "", self.console.width - len("DETAIL: ") - 1)
                print_refusal(self.console, diag.message_primary or str(exc), detail, None, exc.sqlstate)
            return result
        if self.verbose:
            if result.columns:
                print_rows(self.console, result.columns, result.rows, expanded=expanded)
            else:
                self.console.print(result.status or "")
        elif table:
            columns = result.columns if table is True else list(table)
            print_rows(self.console, columns, result.rows, expanded=False)
        return result


class Walk:
    """Chapters of numbered steps, checks that record every deviation, and where the rollout stands."""

    def __init__(self, console: Console, conn: psycopg.Connection | None = None, *, verbose: bool = False) -> None:
        self.console = console
        self.conn = conn
        self.verbose = verbose
        self.chapters = 0
        self.steps = 0
        self.deviations: list[str] = []
        self._shown: dict[int, str] = {}

    def chapter(self, title: str, clock: str) -> None:
        self.standing()
        self.chapters += 1
        self.console.print()
        self.console.rule(Text(f"Chapter {self.chapters}. {title}", style="bold magenta"), align="left")
        self.console.print(Text(clock, style="dim"))

    def step(self, heading: str) -> None:
        self.standing()
        self.steps += 1
        self.console.print(Text(f"── Step {self.steps}. ", style="bold magenta") + Text(heading, style="bold"))

    def say(self, text: str) -> None:
        """A line of narration (who acts, and why), between the calls."""
        self.console.print(Text(text, style="italic"))

    def detail(self, text: str) -> None:
        """Narration shown with ``verbose`` only."""
        if self.verbose:
            self.say(text)

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
        """Where the rollout stands (the kill first, then the gates), and the incident if any: each line printed
        when it changed since it was last printed."""
        if self.conn is None or self.steps == 0:
            return
        try:
            lines = _standing(self.conn)
        except psycopg.Error as exc:
            lines = [Text(f"  ⎿ (the standing could not be read: {exc.sqlstate})", style="dim")]
        for number, line in enumerate(lines):
            if self._shown.get(number) != line.plain:
                self._shown[number] = line.plain
                self.console.print(line)


_INCIDENT_STYLE = {"open": "bold red", "mitigated": "bold yellow", "resolved": "green", "closed": "dim"}
_CHECKLIST_STATUSES = ("done", "n/a", "not done", "overdue")
_SAID = {"not done": "to do"}


def _standing(conn: psycopg.Connection) -> list[Text]:
    with conn.cursor(row_factory=dict_row) as cur:
        g = cur.execute("select * from public.chat_get_v11_release_gates()").fetchone()
        s = cur.execute("select * from public.chat_get_v11_rollout_state()").fetchone()
        h = cur.execute("select action, actor from public.chat_get_v11_rollout_history(1)").fetchone()
        i = cur.execute("select * from public.chat_get_v11_incidents() limit 1").fetchone()
        items = (
            cur.execute(
                "select status, count(*) as n from public.chat_get_v11_incident_checklist(%s) group by status",
                (i["incident_id"],),
            ).fetchall()
            if i is not None
            else []
        )
    percent = s["traffic_percent"]
    percent = percent.normalize() if isinstance(percent, Decimal) else percent
    line = Text("  ⎿ ", style="dim") + Text(f"{s['stage']} ({percent:f} %)", style="bold")
    if s["kill_switch"]:
        line += Text(", ") + Text("kill switch ON", style="bold red")
    else:
        line += Text(", kill switch ") + Text("off", style="green")
    line += Text(", frozen" if s["promotion_frozen"] else ", not frozen") + Text(f", v{s['version']}")
    last = h["action"] + (f" by {h['actor']}" if h["actor"] else "")
    line += Text(" │ last: ", style="dim") + Text(last, style="bold")
    line += Text(" │ ", style="dim") + _flag("p0", g["gate_p0_ok"]) + Text(" ") + _flag("p1", g["gate_p1_ok"])
    if s["kill_switch"]:  # never PROCEED beside a kill: while it is on, the only way on is a controlled resume
        line += Text(" NO-GO", style="bold red")
    else:
        line += Text(f" {g['rollout_decision']}, ") + Text(
            "GO" if g["promotion_allowed"] else "NO-GO", style="green" if g["promotion_allowed"] else "red"
        )
    lines = [line]
    if i is not None:  # the incident, as data: its status, its checklist, its roles
        counts = {row["status"]: row["n"] for row in items}
        line = Text("  ⎿ ", style="dim") + Text(f"incident {i['incident_id']} {i['severity']} ", style="bold")
        line += Text(i["status"], style=_INCIDENT_STYLE.get(i["status"], "")) + Text(" │ checklist ", style="dim")
        line += Text(
            ", ".join(
                f"{counts[status]} {_SAID.get(status, status)}" for status in _CHECKLIST_STATUSES if counts.get(status)
            ),
            style="green" if set(counts) <= {"done", "n/a"} else "yellow",
        )
        line += Text(" │ ", style="dim") + Text(i["roles"] or "no roles named yet")
        lines.append(line)
    return lines


def _flag(name: str, ok: bool) -> Text:
    return Text(f"{name} {'✓' if ok else '✗'}", style="green" if ok else "red")
