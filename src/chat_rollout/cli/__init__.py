"""The operator CLI, ``chat-rollout`` (entry point ``chat_rollout.cli:app``): the root app and its sub-apps.

- ``rollout``     ``status``, ``watch``; the state commands ``hold``, ``kill``, ``resume``, ``promote``, ``unfreeze``
- ``progression`` ``approve STAGE --reason``, ``approvals`` (four eyes, SPEC 9)
- ``seed``        ``seed SCENARIO`` / ``seed --list``
- ``incident``    the group ``incident list|open|log|role|severity|status|snapshot|checklist|timeline|postmortem|close``
- ``report``      ``report ID`` (the postmortem skeleton and its chart)
- ``db``          the group ``db up|down|url`` (the persistent embedded PostgreSQL 18)
- ``migrations``  ``migrate``, ``downgrade REV`` and the group ``sql upgrade|downgrade RANGE``
- ``common``      the server and database a command talks to, and how errors reach the operator

``demo`` is defined here: it looks up ``DEMO_DATABASE`` and ``run_demo`` on this module (the tests replace them).
The server comes from the environment: ``DATABASE_URL`` when set, else the persistent embedded PostgreSQL 18.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.text import Text

from .. import __version__
from ..connect import POOLER_ENV, ListenRefused, declare_pooler, refuse_listen_if_declared
from ..demo import DEMO_DATABASE, prepare_database, run_demo
from ..demo import command as demo_command
from ..render import print_refusal
from . import db, exporter, incident, migrations, progression, pull, report, rollout, schedule, seed, simulate
from .common import environment_server, err, guard, out, psql_hint

__all__ = ["DEMO_DATABASE", "app", "run_demo"]

_SCENARIOS = "Scenarios and incidents"

app = typer.Typer(
    help="A Postgres-native control plane for the staged rollout of Chat protocol v1.1.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_demo_app = typer.Typer()  # demo, below: a command of the root


@_demo_app.command(rich_help_panel=_SCENARIOS)
@guard
def demo(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show every SQL call and its full result, HINTs included.")
    ] = False,
) -> None:
    """Walk the on-call playbook on a fresh database chat_rollout_demo (also a smoke test: exit 1 on a deviation)."""
    console = out()
    srv = environment_server()
    try:
        title = Text("chat-rollout demo: the Chat v1.1 on-call playbook, call by call", style="bold")
        console.rule(title, align="left")
        console.print(f"server ({srv.source}): {srv.version()}")
        console.print(f"recreating database {DEMO_DATABASE} and migrating it to head …")
        url = prepare_database(srv, DEMO_DATABASE)
        ok = run_demo(url, console, verbose=verbose)
        console.print()
        console.print(Text("Connect to the demo database with psql:", style="bold"))
        console.print(f"  {psql_hint(srv, url)}", soft_wrap=True)
        if srv.source == "embedded":
            console.print(Text("The embedded server keeps running; stop it with:", style="bold"))
            console.print(f"  {demo_command()} db down")
    finally:
        srv.release()
    if not ok:
        err().print(
            Text("demo FAILED: ", style="bold red")
            + Text("a step did not behave as the playbook expects (see the ✗ lines above)")
        )
        raise typer.Exit(1)


app.add_typer(rollout.app)
app.add_typer(progression.app)
app.add_typer(exporter.app)
app.add_typer(pull.app)
app.add_typer(simulate.app)
app.add_typer(seed.app)
app.add_typer(incident.app, name="incident", rich_help_panel=_SCENARIOS)
app.add_typer(report.app)
app.add_typer(_demo_app)
app.add_typer(db.app, name="db", rich_help_panel=migrations.PANEL)
app.add_typer(migrations.app)
app.add_typer(migrations.sql_app, name="sql", rich_help_panel=migrations.PANEL)
app.add_typer(schedule.app)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"chat-rollout {__version__}")
        raise typer.Exit(0)


class Pooler(StrEnum):
    none = "none"
    session = "session"
    transaction = "transaction"


@app.callback()
def _main(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    pooler: Annotated[
        Pooler,
        typer.Option(
            "--pooler",
            envvar=POOLER_ENV,
            case_sensitive=False,
            help="The pooler between this CLI and PostgreSQL: none (direct), session or transaction (pgbouncer "
            "pool_mode). Every command works through a transaction pool (prepared statements are always off); "
            "watch and demo LISTEN and are refused there: connect them directly or through a session pool.",
        ),
    ] = Pooler.none,
) -> None:
    """A Postgres-native control plane for the staged rollout of Chat protocol v1.1.

    The server: DATABASE_URL when set, else the persistent embedded PostgreSQL 18 (chat-rollout db up/down).
    Behind a pooler: --pooler / CHAT_ROLLOUT_POOLER (README, "Behind a pooler").
    """
    declare_pooler(pooler.value)
    ctx.call_on_close(lambda: declare_pooler(None))  # the declaration lasts this invocation only
    if ctx.invoked_subcommand == "demo":  # the demo's application server LISTENs: refused up front
        try:
            refuse_listen_if_declared("demo")
        except ListenRefused as exc:
            print_refusal(err(), exc.message, exc.detail, exc.hint)
            raise typer.Exit(1) from None
