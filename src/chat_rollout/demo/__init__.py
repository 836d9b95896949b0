"""The demo: the playbook's P0 incident replayed on a fresh database, call by call (and a smoke test).

``run_demo(url, console)`` tells the story in seven chapters (:mod:`.story`, :mod:`.incident`, :mod:`.aftermath`,
:mod:`.progression`): before any data; the promotion to canary_1; the P0 spike; the first five minutes; the P0
runbook; decisions and postmortem; the canary walks itself to canary_25 with one approval. It runs on two clocks
(:mod:`.timeline`): the calls run now, so the history and the incident record their real times, seconds apart; the
metric samples carry the story's times, backfilled into the 70 minutes before the database's ``now()`` (the canary
from T0, the spike 15 minutes later, the exit window clean 30 minutes after it), so every window the SQL evaluates
holds the story. Where the two clocks meet, the narration says which one a time is on.

Every call is printed (its SQL; its result in full with ``verbose``) and checked against what the playbook
expects; where the rollout stands is printed whenever it changed, the kill first. ``run_demo`` returns True only
when every step behaved as expected, then prints the commands that look at the demo database.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import psycopg
from psycopg import sql
from rich.console import Console
from rich.text import Text

from .. import migrate
from ..connect import connect as open_connection
from ..server import Server
from ..utc import utc
from .aftermath import decisions_and_postmortem
from .incident import first_five_minutes, p0_runbook
from .progression import the_canary_walks_itself
from .session import Session, Walk
from .story import CHANNEL, Play, before_any_data, promote_to_canary_1, the_p0_spike
from .timeline import Clock

__all__ = ["CHANNEL", "DEMO_DATABASE", "prepare_database", "run_demo"]

DEMO_DATABASE = "chat_rollout_demo"
CHAPTERS = (
    before_any_data,
    promote_to_canary_1,
    the_p0_spike,
    first_five_minutes,
    p0_runbook,
    decisions_and_postmortem,
    the_canary_walks_itself,
)


def run_demo(url: str, console: Console, *, verbose: bool = False) -> bool:
    """Replay the P0 incident of the playbook on the freshly migrated database at ``url``.

    True when every step behaved as expected (the demo is also a smoke test). ``verbose`` shows every call's
    comment, its result in full and every HINT.
    """

    def connect(who: str) -> psycopg.Connection:
        # the app server LISTENs: its connection is proven to hear notifications (refused behind a transaction pool)
        return open_connection(url, listen=who == "app server", what="demo", autocommit=True,
                               application_name=f"chat-rollout demo ({who})")

    with connect("on-call") as conn, connect("exporter") as exporter, connect("app server") as app, \
            connect("standing") as standing:  # fmt: skip
        walk = Walk(console, standing, verbose=verbose)
        play = Play(
            walk=walk,
            ops=Session(conn, console, "on-call", verbose=verbose),
            exporter=Session(exporter, console, "exporter", verbose=verbose),
            app=Session(app, console, "app server", verbose=verbose),
            clock=Clock.of(conn.execute("select now()").fetchone()[0]),
            cli=command(),
            dbname=conn.info.dbname,
        )
        console.print(Text(f"Sessions on database {play.dbname}: on-call, exporter, app server.", style="dim"))
        for chapter in CHAPTERS:
            try:
                chapter(play)
            except Exception as exc:  # a smoke test reports what broke instead of a traceback
                walk.check(False, f"{chapter.__name__} stopped: {type(exc).__name__}: {exc}")
            if walk.deviations:
                break
        walk.standing()

    console.print()
    if walk.deviations:
        console.rule(Text("The demo deviated from the playbook", style="bold red"), align="left")
        for deviation in walk.deviations:
            console.print(Text(f"  ✗ {deviation}", style="red"))
        return False
    console.rule(
        Text(f"All {walk.steps} steps behaved as the playbook expects ({walk.chapters} chapters)", style="bold green"),
        align="left",
    )
    _follow_ups(console, play)
    return True


def command() -> str:
    """How to run chat-rollout from here: its name when PATH finds this environment's, else the path of it."""
    script = Path(sys.executable).parent / "chat-rollout"
    if not script.exists():
        return "chat-rollout"
    found = shutil.which("chat-rollout")
    if found and Path(found).resolve() == script.resolve():
        return "chat-rollout"
    try:
        return str(script.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(script.absolute())


def follow_ups(play: Play) -> list[str]:
    """The commands that look at the demo database: the state and gates, the checklist, the timeline, its URI."""
    cli, db, incident = play.cli, play.dbname, play.incident_id
    return [
        f"{cli} status -d {db}",
        f"{cli} incident checklist {incident} -d {db}",
        f"{cli} incident timeline {incident} -d {db}",
        f"{cli} db url -d {db}",
    ]


def _follow_ups(console: Console, play: Play) -> None:
    console.print(
        Text(f"The database {play.dbname} stays: its state, checklist, timeline and URI (for psql):", style="bold")
    )
    for command_line in follow_ups(play):
        console.print(f"  {command_line}", soft_wrap=True)
    console.print(
        Text(
            f"Its samples end at {utc(play.clock.now)}: two minutes later the gates call them stale (HOLD).",
            style="dim",
        )
    )


def prepare_database(server: Server, name: str = DEMO_DATABASE) -> str:
    """Drop and recreate ``name`` on ``server``, migrate it to head; returns its URL."""
    with open_connection(server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = server.url_for(name)
    migrate.upgrade(url)
    return url
