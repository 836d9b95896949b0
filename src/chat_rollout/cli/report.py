"""``chat-rollout report ID``: the postmortem skeleton (Markdown) and a chart (PNG) of an incident."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from .. import report as incident_report
from .common import DatabaseOption, connection, err, guard, out
from .incident import IncidentId

app = typer.Typer()  # commands of the root


@app.command(rich_help_panel="Scenarios and incidents")
@guard
def report(
    incident_id: IncidentId,
    database: DatabaseOption = None,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", metavar="DIR", help="Where to write incident-ID.md and incident-ID.png.")
    ] = Path("reports"),
) -> None:
    """Write the postmortem skeleton (Markdown) and a chart (PNG) of the P0/P1 metrics over the incident.

    Reads the metric samples from the chat_v11 tables: run it as their owner (the migration role) or a superuser.
    """
    try:
        with connection(database, "chat-rollout report") as conn:
            markdown, image = incident_report.write_report(conn, incident_id, out_dir)
    except incident_report.ReportError as exc:
        err().print(Text("report: ", style="bold red") + Text(str(exc)))
        raise typer.Exit(1) from None
    console = out()
    console.print(Text("postmortem skeleton: ", style="bold") + Text(str(markdown)), soft_wrap=True)
    console.print(Text("chart:               ", style="bold") + Text(str(image)), soft_wrap=True)
