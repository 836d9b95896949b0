"""``chat-rollout incident …``: the playbook's incident calls (sections 2-11) from the command line.

Each sub-command is one call of the SQL API in its own transaction; the server's NOTICEs go to stderr, a refusal is
one paragraph (``ERROR <SQLSTATE>: message``, DETAIL, HINT; exit code 1). Moments are written in UTC.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from psycopg.types.json import Jsonb
from rich import box
from rich.table import Table
from rich.text import Text

from ..render import print_record, yes_no
from ..utc import utc
from . import common
from .common import DatabaseOption, call, guard, out

app = typer.Typer(
    help="Incidents, as the playbook runs them (sections 2-11): declare, log, roles, severity, status, SQL snapshot, "
    "checklist, timeline, postmortem, close.",
    no_args_is_help=True,
)

IncidentId = Annotated[int, typer.Argument(metavar="ID", help="The incident's id (chat-rollout incident list).")]

_SEVERITY_STYLE = {"P0": "bold white on red", "P1": "bold yellow", "P2": "cyan"}
_INCIDENT_STATUS_STYLE = {"open": "bold red", "mitigated": "yellow", "resolved": "green", "closed": "dim"}
_CHECK_STYLE = {"done": "bold green", "not done": "bold red", "n/a": "dim", "overdue": "bold yellow"}
_SOURCE_STYLE = {"incident": "cyan", "rollout": "magenta", "gates": "yellow"}
_KIND_STYLE = {"auto_kill": "bold red", "kill": "bold red", "resume": "bold green", "escalation": "bold red"}


def _call(database: str | None, statement: str, params: tuple = ()) -> list[dict]:
    """Run one incident call in its own transaction and return its rows (a refusal raises, guard prints it)."""
    return call(database, statement, params, "chat-rollout incident")


def _severity(value: str) -> Text:
    return Text(value, style=_SEVERITY_STYLE.get(value, ""))


def _cadence(row: dict) -> Text:
    """The IC's 10-minute decision cadence: only an active incident has one."""
    if row["status"] not in ("open", "mitigated"):
        return Text("–", style="dim")
    return Text("OVERDUE", style="bold yellow") if row["decision_overdue"] else Text("ok", style="green")


@app.command("list")
@guard
def incident_list(database: DatabaseOption = None) -> None:
    """Every incident, newest first (chat_get_v11_incidents()): severity, status, roles, decision cadence."""
    rows = _call(database, "select * from public.chat_get_v11_incidents()")
    out = common.out()
    if not rows:
        out.print("No incidents. Declare one with chat-rollout incident open SEVERITY SUMMARY.")
        return
    table = Table(title="Incidents (newest first)", box=box.ROUNDED, title_justify="left")
    for column in (
        "id",
        "severity",
        "status",
        "summary",
        "declared (UTC)",
        "roles",
        "last decision",
        "cadence",
        "postmortem",
        "entries",
    ):
        table.add_column(column, overflow="fold", justify="right" if column in ("id", "entries") else "left")
    for row in rows:
        table.add_row(
            str(row["incident_id"]),
            _severity(row["severity"]),
            Text(row["status"], style=_INCIDENT_STATUS_STYLE.get(row["status"], "")),
            row["summary"],
            utc(row["opened_at"], "plain"),
            row["roles"] or Text("none named", style="dim"),
            utc(row["last_decision_at"], "plain"),
            _cadence(row),
            yes_no(row["has_postmortem"]),
            str(row["entries"]),
        )
    out.print(table)


@app.command("open")
@guard
def incident_open(
    severity: Annotated[str, typer.Argument(help="P0, P1 or P2 (playbook section 2).")],
    summary: Annotated[str, typer.Argument(help="What is happening, in a few words.")],
    database: DatabaseOption = None,
) -> None:
    """Declare an incident: P0 and P1 freeze promotion at once, P0 also engages the kill switch."""
    row = _call(database, "select * from public.chat_open_v11_incident(%s, %s)", (severity.upper(), summary))[0]
    out = common.out()
    out.print(
        Text(f"incident {row['incident_id']} declared: ", style="bold")
        + _severity(row["severity"])
        + Text(f" {row['summary']}")
    )
    if row["rollout_version"] is not None:
        effect = "kill switch ON, promotion frozen" if row["severity"] == "P0" else "promotion frozen"
        out.print(Text(f"the rollout: {effect} (version {row['rollout_version']})", style="bold red"))
    print_record(out, "chat_open_v11_incident", row)
    out.print(f"next: chat-rollout incident snapshot {row['incident_id']}; name the roles; log decisions", style="dim")


@app.command("log")
@guard
def incident_log(
    incident_id: IncidentId,
    kind: Annotated[
        str, typer.Argument(help="fact, decision, action, fallback_confirmed or root_cause ('layer: cause').")
    ],
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The entry.")],
    database: DatabaseOption = None,
) -> None:
    """Append to the incident's UTC timeline (chat_log_v11_incident)."""
    row = _call(database, "select * from public.chat_log_v11_incident(%s, %s, %s)", (incident_id, kind, text))[0]
    out().print(
        f"{utc(row['at'])}  incident {row['incident_id']}  {row['kind']} by {row['recorded_by']}: {row['body']}"
    )


@app.command("role")
@guard
def incident_role(
    incident_id: IncidentId,
    role: Annotated[str, typer.Argument(help="IC, backend, SRE, frontend or scribe.")],
    person: Annotated[str, typer.Argument(help="Who fills it.")],
    database: DatabaseOption = None,
) -> None:
    """Name who fills a role of the incident (chat_set_v11_incident_role)."""
    row = _call(database, "select * from public.chat_set_v11_incident_role(%s, %s, %s)", (incident_id, role, person))[0]
    out().print(f"incident {row['incident_id']}: {row['role']} is {row['person']} (since {utc(row['at'])})")


@app.command("severity")
@guard
def incident_severity(
    incident_id: IncidentId,
    severity: Annotated[str, typer.Argument(help="P0, P1 or P2.")],
    reason: Annotated[str, typer.Argument(help="Why.")],
    database: DatabaseOption = None,
) -> None:
    """Change the severity (raising it to P1 freezes promotion, to P0 also engages the kill switch)."""
    row = _call(
        database,
        "select * from public.chat_set_v11_incident_severity(%s, %s, %s)",
        (incident_id, severity.upper(), reason),
    )[0]
    out = common.out()
    out.print(
        Text(f"incident {row['incident_id']}: severity {row['previous_severity']} → ", style="bold")
        + _severity(row["severity"])
    )
    if row["rollout_version"] is not None:
        out.print(Text(f"the rollout changed: version {row['rollout_version']}", style="bold red"))


@app.command("status")
@guard
def incident_status(
    incident_id: IncidentId,
    status_: Annotated[str, typer.Argument(metavar="STATUS", help="mitigated, resolved or open (reopen).")],
    reason: Annotated[str, typer.Argument(help="Why.")],
    database: DatabaseOption = None,
) -> None:
    """Move the incident: open → mitigated → resolved (only when its exit criteria hold), or reopen it."""
    row = _call(
        database, "select * from public.chat_set_v11_incident_status(%s, %s, %s)", (incident_id, status_, reason)
    )[0]
    out().print(
        Text(f"incident {row['incident_id']} ({row['severity']}): {row['previous_status']} → ", style="bold")
        + Text(row["status"], style=_INCIDENT_STATUS_STYLE.get(row["status"], ""))
        + Text(f" at {utc(row['changed_at'])}")
    )


@app.command("snapshot")
@guard
def incident_snapshot(incident_id: IncidentId, database: DatabaseOption = None) -> None:
    """Take the SQL snapshot of playbook section 4 (gates, checks, state, history 50) into the timeline."""
    row = _call(database, "select * from public.chat_snapshot_v11_incident(%s)", (incident_id,))[0]
    out().print(f"{utc(row['at'])}  incident {row['incident_id']}  {row['body']}")


@app.command("checklist")
@guard
def incident_checklist(incident_id: IncidentId, database: DatabaseOption = None) -> None:
    """The on-call checklist of playbook section 11, item by item, from facts in the database."""
    rows = _call(database, "select * from public.chat_get_v11_incident_checklist(%s) order by item", (incident_id,))
    table = Table(title=f"On-call checklist, incident {incident_id}", box=box.ROUNDED, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("item", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("evidence", overflow="fold")
    for row in rows:
        table.add_row(
            str(row["item"]),
            row["title"],
            Text(row["status"], style=_CHECK_STYLE.get(row["status"], "")),
            row["evidence"] or "",
        )
    out = common.out()
    out.print(table)
    counts = {status: sum(row["status"] == status for row in rows) for status in _CHECK_STYLE}
    summary = Text(f"{counts['done']} done, ", style="green") + Text(f"{counts['not done']} not done", style="red")
    if counts["overdue"]:
        summary += Text(f", {counts['overdue']} overdue", style="bold yellow")
    out.print(summary + Text(f", {counts['n/a']} n/a", style="dim"))


@app.command("timeline")
@guard
def incident_timeline(incident_id: IncidentId, database: DatabaseOption = None) -> None:
    """One UTC timeline: the incident's entries, the rollout history and each change of the gate verdict."""
    rows = _call(database, "select * from public.chat_get_v11_incident_timeline(%s)", (incident_id,))
    table = Table(title=f"Timeline of incident {incident_id} (UTC)", box=box.ROUNDED, title_justify="left")
    table.add_column("at (UTC)", no_wrap=True)
    table.add_column("source", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("who", overflow="fold")
    table.add_column("what", overflow="fold")
    for row in rows:
        table.add_row(
            utc(row["at"], "plain"),
            Text(row["source"], style=_SOURCE_STYLE.get(row["source"], "")),
            Text(row["kind"], style=_KIND_STYLE.get(row["kind"], "")),
            row["who"] or "",
            row["body"] or "",
        )
    out().print(table)


@app.command("postmortem")
@guard
def incident_postmortem(
    incident_id: IncidentId,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE.json",
            help="The postmortem as JSON ('-' reads stdin): timeline, root_cause {technical, process}, what_worked, "
            "what_did_not_work, action_items [{kind, title, owner, deadline}], decision_log.",
        ),
    ],
    database: DatabaseOption = None,
) -> None:
    """Store the incident's postmortem (refused with RO035 while anything required is missing)."""
    err = common.err()
    try:
        text = typer.get_text_stream("stdin").read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except OSError as exc:
        err.print(Text("cannot read the postmortem: ", style="bold red") + Text(f"{file}: {exc.strerror or exc}"))
        raise typer.Exit(1) from None
    try:
        postmortem = json.loads(text)
    except json.JSONDecodeError as exc:
        err.print(
            Text("invalid JSON: ", style="bold red")
            + Text(f"{file}: {exc.msg} (line {exc.lineno}, column {exc.colno})")
        )
        raise typer.Exit(1) from None
    row = _call(database, "select * from public.chat_put_v11_postmortem(%s, %s)", (incident_id, Jsonb(postmortem)))[0]
    out().print(
        f"incident {row['incident_id']} ({row['status']}): postmortem stored with {row['action_items']} action items "
        f"at {utc(row['stored_at'])}"
    )


@app.command("close")
@guard
def incident_close(
    incident_id: IncidentId,
    reason: Annotated[str, typer.Argument(help="Why.")],
    database: DatabaseOption = None,
) -> None:
    """Close a resolved incident that has its complete postmortem."""
    row = _call(database, "select * from public.chat_close_v11_incident(%s, %s)", (incident_id, reason))[0]
    out().print(
        Text(f"incident {row['incident_id']} ({row['severity']}) ", style="bold")
        + Text("closed", style="bold green")
        + Text(f" at {utc(row['closed_at'])}")
    )
