"""The rollout, read and changed: ``chat-rollout status``, ``watch``, and the operator's state commands ``hold``,
``kill``, ``resume``, ``promote STAGE`` and ``unfreeze``.

Each state command is one call of the SQL API (``chat_set_v11_rollout_state`` or ``chat_lift_v11_freeze``): the
database decides and records; the command prints the action it recorded with the new state in one line, the
server's NOTICEs, and a refusal as one paragraph (exit code 1).
"""

from __future__ import annotations

import json
from typing import Annotated

import psycopg
import typer
from psycopg import sql
from psycopg.rows import dict_row
from rich.text import Text

from .. import section8
from ..connect import connect
from ..demo import CHANNEL
from ..render import (
    calls_table,
    checks_table,
    history_table,
    print_notice,
    print_verdict,
    state_line,
    state_table,
)
from .common import DatabaseOption, Notice, Refusal, connection, environment_server, err, guard, out, target
from .notifications import check_notification, history_rows
from .progression import print_progression

app = typer.Typer()  # commands of the root

Reason = Annotated[str, typer.Argument(metavar="REASON", help="Why, in a few words (recorded in the history).")]

_READ = "Read the rollout"
_PANEL = "Change the rollout (one SQL call each)"


@app.command(rich_help_panel=_READ)
@guard
def status(database: DatabaseOption = None) -> None:
    """The rollout state, the gate verdict with its blockers, the progression (approvals valid/required,
    auto-promote, the next automatic promotion), the gate checks and the last 10 history rows."""
    console = out()
    srv = environment_server()
    try:
        url, _ = target(srv, database)
        with connect(url, autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
            state = cur.execute("select * from public.chat_get_v11_rollout_state()").fetchone()
            gates = cur.execute("select * from public.chat_get_v11_release_gates()").fetchone()
            checks = cur.execute("select * from public.chat_get_v11_gate_checks()").fetchall()
            history = cur.execute("select * from public.chat_get_v11_rollout_history(10)").fetchall()
            progression = cur.execute("select * from public.chat_get_v11_progression()").fetchone()
            open_p0 = cur.execute(
                "select incident_id, status from public.chat_get_v11_incidents() "
                "where severity = 'P0' and status in ('open', 'mitigated') order by incident_id limit 1"
            ).fetchone()
    finally:
        srv.release()

    console.print(state_table(state, history[0] if history else None))
    console.print(
        Text(
            "keep the head anchor outside the database; check it later with "
            "select * from chat_verify_v11_history(p_anchor_version => V, p_anchor_hash => 'H')",
            style="dim",
        )
    )
    print_verdict(console, gates)
    print_progression(console, progression)
    console.print(checks_table(checks))
    console.print(history_table(history, "History (last 10, newest first)"))
    console.print(calls_table(section8.calls_now(state, gates, open_p0)))


@app.command(rich_help_panel=_READ)
@guard
def watch(
    database: DatabaseOption = None,
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, help="Stop after N verified changes.")] = None,
) -> None:
    """LISTEN chat_v11_rollout and print each change the database confirms (Ctrl-C to stop).

    A notification is only a hint: any login can send one. Each is checked against the state and the history
    (the version only grows, the hash chain links to the head seen before, the payload matches the history row);
    one that does not match is printed as "unverified notification ignored" and changes nothing.

    LISTEN needs a direct (or session-pooled) connection: behind a transaction pool (--pooler transaction, or a
    probe notification that never arrives) watch refuses with exit code 1 instead of listening to nothing.
    """
    console = out()
    srv = environment_server()
    try:
        url, _ = target(srv, database)
        # the listening connection only waits (psycopg holds it while it yields notifications); a second one reads.
        # The listening one is proven to hear a notification first (refused through a transaction pool).
        with (
            connect(url, listen=True, what="watch", autocommit=True, application_name="chat-rollout watch") as conn,
            connect(url, autocommit=True, application_name="chat-rollout watch (reads)") as reader,
        ):
            reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # each check reads one snapshot
            with reader.transaction():
                state = reader.execute(
                    "select stage, kill_switch, version from public.chat_get_v11_rollout_state()"
                ).fetchone()
                head = history_rows(reader, state[2] - 1, state[2])
            # a change committed before LISTEN arrives as part of the chain of the next notification checked
            conn.execute(sql.SQL("listen {}").format(sql.Identifier(CHANNEL)))
            last = {"version": state[2], "hash": head[0]["hash"] if head else None}
            console.print(
                f"listening on {CHANNEL} (now: version {state[2]}, stage {state[0]}, "
                f"kill switch {'ON' if state[1] else 'off'}); Ctrl-C to stop",
                style="dim",
            )
            console.print(f"head anchor: version {last['version']} hash {last['hash']}", style="dim")
            shown = 0
            try:
                for notification in conn.notifies():
                    change, why, _ = check_notification(reader, notification.payload, last)
                    if change is None:
                        console.print(
                            Text(f"unverified notification ignored ({why}): {notification.payload}", style="yellow"),
                            soft_wrap=True,
                            highlight=False,
                        )
                        continue
                    last = {"version": change["version"], "hash": change["hash"]}
                    console.print(Text(json.dumps(change), style="default"), soft_wrap=True, highlight=True)
                    shown += 1
                    if count is not None and shown >= count:
                        break
            except KeyboardInterrupt:
                console.print("stopped", style="dim")
    finally:
        srv.release()


# --- the operator's state commands ----------------------------------------------------------------------------

# What (stage, false) means when the state moved under the command: why not, and what to do instead.
_INSTEAD = {
    ("hold", "resume"): "To hold, do nothing: promotion is already frozen while the kill switch is on. "
    "To resume v1.1 traffic: chat-rollout resume REASON.",
    ("resume", "hold"): "The kill switch is off: nothing to resume. To freeze promotion: chat-rollout hold REASON.",
    ("promote", "hold"): "{stage} is the current stage: name the next stage to promote (chat-rollout status), "
    "or freeze promotion with chat-rollout hold REASON.",
    ("promote", "rollback"): "{stage} is below the current stage: to roll back, call "
    "select * from chat_set_v11_rollout_state('{stage}', false, reason); to promote, name the next stage.",
    ("promote", "resume"): "The kill switch is on: resume first (chat-rollout resume REASON), lift the freeze "
    "(chat-rollout unfreeze REASON), then promote.",
}


def _set_state(database: str | None, command: str, stage: str | None, kill_switch: bool, reason: str) -> None:
    """Read the state, call chat_set_v11_rollout_state(stage or the current one, kill_switch, reason), and commit
    only when the database recorded the action the command names.

    One call shape, (stage, false), holds, rolls back, promotes or resumes depending on the state: read and call
    share one transaction, and a call that means something else than the command rolls back (the state moved under
    it, or the stage named is not the next one), with its NOTICEs, so nothing changes that the operator did not ask.
    """
    notices: list[Notice] = []
    with connection(database, f"chat-rollout {command}", notices) as conn:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute("select set_config('lock_timeout', '2s', true)")  # the read never hangs behind DDL
            before = cur.execute("select * from public.chat_get_v11_rollout_state()").fetchone()
            # the call itself waits as the database's own lock budget says (transaction-local: no session state
            # is left on a pooled server connection)
            cur.execute("set local lock_timeout to default")
            seen = (
                f"The rollout is at stage {before['stage']}, kill switch {'ON' if before['kill_switch'] else 'off'}, "
                f"promotion {'frozen' if before['promotion_frozen'] else 'not frozen'} (version {before['version']})"
            )
            if command == "hold" and before["kill_switch"]:
                raise Refusal(
                    f"hold refused: the kill switch is on, so ({before['stage']}, false) would ask to resume v1.1 "
                    "traffic",
                    f"{seen}; nothing was written.",
                    _INSTEAD["hold", "resume"],
                )
            if command == "resume" and not before["kill_switch"]:
                raise Refusal(
                    "resume refused: the kill switch is off",
                    f"{seen}; nothing was written.",
                    _INSTEAD["resume", "hold"],
                )
            row = cur.execute(
                "select * from public.chat_set_v11_rollout_state(%s, %s, %s)",
                (stage or before["stage"], kill_switch, reason),
            ).fetchone()
            if row["action"] != command:
                raise Refusal(
                    f"{command} not recorded: ({stage or before['stage']}, {str(kill_switch).lower()}) would be a "
                    f"{row['action']} now, not a {command}",
                    f"{seen} when the call ran; it was rolled back: nothing changed.",
                    _INSTEAD.get(
                        (command, row["action"]),
                        "Read the state (chat-rollout status) and repeat the command if it still makes sense.",
                    ).format(stage=stage),
                )
    _print_result(row["action"], row, notices)


def _print_result(action: str, row: dict, notices: list[Notice]) -> None:
    for diag in notices:
        print_notice(err(), diag)
    out().print(state_line(action, row))


@app.command(rich_help_panel=_PANEL)
@guard
def hold(reason: Reason, database: DatabaseOption = None) -> None:
    """Freeze promotion at the current stage: chat_set_v11_rollout_state(current stage, false, REASON)."""
    _set_state(database, "hold", None, False, reason)


@app.command(rich_help_panel=_PANEL)
@guard
def kill(reason: Reason, database: DatabaseOption = None) -> None:
    """Engage the kill switch at the current stage (never refused): chat_set_v11_rollout_state(stage, true, REASON)."""
    _set_state(database, "kill", None, True, reason)


@app.command(rich_help_panel=_PANEL)
@guard
def resume(reason: Reason, database: DatabaseOption = None) -> None:
    """Turn the kill switch off at the current stage, only through the P0 exit criteria (else RO007/RO018)."""
    _set_state(database, "resume", None, False, reason)


@app.command(rich_help_panel=_PANEL)
@guard
def promote(
    stage: Annotated[str, typer.Argument(metavar="STAGE", help="The next stage (chat-rollout status names it).")],
    reason: Reason,
    database: DatabaseOption = None,
) -> None:
    """Promote to the next stage through the Go/No-Go and the observation window (else RO003-RO006)."""
    _set_state(database, "promote", stage, False, reason)


@app.command(rich_help_panel=_PANEL)
@guard
def unfreeze(reason: Reason, database: DatabaseOption = None) -> None:
    """Lift the promotion freeze through the gate (kill switch off, gates green; else RO009): chat_lift_v11_freeze."""
    notices: list[Notice] = []
    with connection(database, "chat-rollout unfreeze", notices) as conn, conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("select * from public.chat_lift_v11_freeze(%s)", (reason,)).fetchone()
    _print_result("unfreeze", row, notices)
