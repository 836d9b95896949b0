"""Progression and approvals (SPEC 9): ``chat-rollout approve STAGE --reason ...`` and ``chat-rollout approvals``,
and the progression lines ``status`` prints.

``approve`` is one call of ``chat_approve_v11_promotion`` (operator): the database checks that the stage is the next
one and records who approved (the login, never a name typed here), when and why. ``approvals`` lists the approvals
that count now (``chat_get_v11_approvals``) and what the next promotion still needs (``chat_get_v11_progression``).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..render import yes_no
from ..utc import utc
from .common import DatabaseOption, call, guard, out

app = typer.Typer()  # commands of the root

_PANEL = "Change the rollout (one SQL call each)"
_READ = "Read the rollout"


@app.command(rich_help_panel=_PANEL)
@guard
def approve(
    stage: Annotated[str, typer.Argument(metavar="STAGE", help="The next stage (chat-rollout status names it).")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why, in a few words (recorded with the approval).")],
    database: DatabaseOption = None,
) -> None:
    """Approve promoting into the next stage (four eyes): chat_approve_v11_promotion(STAGE, REASON).

    The approval counts until the stage or the kill switch changes (at most the policy approval_ttl), and never
    for a promotion by the login that approved.
    """
    row = call(database, "select * from public.chat_approve_v11_promotion(%s, %s)", (stage, reason),
               application_name="chat-rollout approve")[0]
    console = out()
    if row["recorded"]:
        console.print(
            Text(f"approval {row['approval_id']} recorded: ", style="bold")
            + Text(f"{row['approved_by']} approves promoting {row['from_stage']} → {row['stage']} "
                   f"(seen at version {row['state_version']}), valid until {utc(row['expires_at'])} "
                   "unless the stage or the kill switch changes first")
        )
    else:
        console.print(
            Text(f"already approved: approval {row['approval_id']} by {row['approved_by']} at "
                 f"{utc(row['approved_at'])} still counts; nothing recorded", style="yellow")
        )
    progression = call(database, "select * from public.chat_get_v11_progression()",
                       application_name="chat-rollout approve")[0]
    console.print(progression_line(progression), soft_wrap=True)


@app.command(rich_help_panel=_READ)
@guard
def approvals(database: DatabaseOption = None) -> None:
    """The approvals that count now (chat_get_v11_approvals) and what the next promotion still needs."""
    rows = call(database, "select * from public.chat_get_v11_approvals()", application_name="chat-rollout approvals")
    progression = call(database, "select * from public.chat_get_v11_progression()",
                       application_name="chat-rollout approvals")[0]
    console = out()
    table = Table(title="Valid approvals", box=box.ROUNDED, title_justify="left")
    for column in ("id", "stage", "approved by", "actor", "approved at", "expires at", "counts for you", "reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["approval_id"]), row["stage"], row["approved_by"], row["actor"] or Text("none", style="dim"),
            utc(row["approved_at"], "plain"), utc(row["expires_at"], "plain"), yes_no(row["counts_for_you"]),
            row["reason"],
        )
    if rows:
        console.print(table)
    else:
        console.print(Text("No valid approvals.", style="dim"))
    console.print(progression_line(progression), soft_wrap=True)
    if not progression["approvals_chain_ok"]:
        console.print(Text("the approval hash chain is BROKEN: an approval row was changed outside the API",
                           style="bold red"))


def progression_line(p: dict) -> Text:
    """One line: the next stage, approvals valid/required, auto-promote and the next automatic promotion."""
    if p["next_stage"] is None:
        return Text(f"progression: {p['stage']} is the last stage; nothing to promote to", style="dim")
    text = Text("progression: ", style="bold") + Text(f"{p['stage']} → {p['next_stage']}: ")
    missing = p["approvals_missing"]
    text += Text(
        f"approvals {p['approvals_valid']}/{p['approvals_required']}",
        style="green" if missing == 0 else "bold red",
    )
    text += Text(f", auto-promote {'on' if p['auto_promote'] else 'off'}")
    if p["next_promotion_at"] is not None:
        text += Text(f", next automatic promotion at {utc(p['next_promotion_at'])}", style="bold")
    elif p["auto_promote"]:
        text += Text(", no automatic promotion while the blockers stand", style="dim")
    return text


def print_progression(console: Console, progression: dict | None) -> None:
    """The progression line of ``status`` (nothing on a database without the progression API)."""
    if progression is not None:
        console.print(progression_line(progression), soft_wrap=True)
