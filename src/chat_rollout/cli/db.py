"""``chat-rollout db up|down|url``: the persistent embedded PostgreSQL 18 (used when DATABASE_URL is not set)."""

from __future__ import annotations

import typer
from rich.text import Text

from .. import server
from ..demo import command
from .common import (
    DEFAULT_DATABASE,
    DatabaseOption,
    embedded_running,
    embedded_server,
    environment_server,
    guard,
    out,
    psql_hint,
    target,
)

app = typer.Typer(
    help="The persistent embedded PostgreSQL 18 (used when DATABASE_URL is not set).",
    no_args_is_help=True,
)


@app.command("up")
@guard
def db_up() -> None:
    """Start (or reuse) the persistent embedded PostgreSQL 18 and print how to connect."""
    console = out()
    was_running = embedded_running()
    srv = embedded_server()
    console.print(
        f"embedded PostgreSQL {'already running' if was_running else 'started'} (data in {server.DEFAULT_DATA_DIR})"
    )
    console.print(Text("uri:     ", style="bold") + Text(srv.url))
    console.print(Text("version: ", style="bold") + Text(srv.version()))
    console.print(Text("connect: ", style="bold") + Text(psql_hint(srv, srv.url_for(DEFAULT_DATABASE))), soft_wrap=True)
    console.print(f"stop it with `{command()} db down`", style="dim")


@app.command("down")
@guard
def db_down() -> None:
    """Stop the persistent embedded PostgreSQL, if it runs."""
    if server.stop_embedded(server.DEFAULT_DATA_DIR):
        out().print(f"embedded PostgreSQL stopped (data kept in {server.DEFAULT_DATA_DIR})")
    else:
        out().print("embedded PostgreSQL was not running")


@app.command("url")
@guard
def db_url(database: DatabaseOption = None) -> None:
    """Print the URI of the environment's server (DATABASE_URL, else the embedded one, started if needed)."""
    srv = environment_server()
    try:
        url, _ = target(srv, database)
        typer.echo(url)
    finally:
        srv.release()
