"""``chat-rollout seed SCENARIO``: a scenario's metric rules and samples through the public API, then each
checkpoint's expected decisions next to the gates computed now; ``seed --list`` lists the scenarios."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .. import scenarios
from ..connect import connect
from ..render import DECISION_STYLE
from ..utc import utc
from . import common
from .common import DatabaseOption, environment_server, guard, target

app = typer.Typer()  # commands of the root

_EXPECTATION_KEYS = ("gate_p0_ok", "gate_p1_ok", "rollout_decision", "promotion_allowed", "exit_criteria_met")


def _scenario_names() -> list[str]:
    return scenarios.names()


def _load_scenario(name: str) -> scenarios.Scenario:
    """The scenario by name (or a .toml file); an unknown one is a clear error, exit code 1."""
    err = common.err()
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


@app.command(rich_help_panel="Scenarios and incidents")
@guard
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
    out = common.out()
    if list_scenarios:
        _list_scenarios(out)
        return
    if scenario_name is None:
        common.err().print(
            Text("missing scenario: ", style="bold red")
            + Text("name one (chat-rollout seed SCENARIO), or list them with chat-rollout seed --list")
        )
        raise typer.Exit(2)
    scenario = _load_scenario(scenario_name)
    anchor, anchor_note = _parse_anchor(anchor_text)
    samples = scenario.samples(anchor)

    srv = environment_server()
    try:
        url, _ = target(srv, database)
        with connect(url, autocommit=True, application_name="chat-rollout seed") as conn:
            out.print(Text(f"scenario {scenario.name}: ", style="bold") + Text(scenario.description))
            out.print(
                Text("anchor: ", style="bold")
                + Text(f"{utc(anchor)} (offsets count from it)" + (f"; {anchor_note}" if anchor_note else ""))
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
            + Text(f"({utc(at, 'clock')} UTC), ")
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
                Text(_shown(computed), style=DECISION_STYLE.get(str(computed), "")),
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
