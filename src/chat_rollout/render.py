"""Rows and errors as an operator reads them in psql, for the CLI and the demo alike."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import psycopg
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text


def format_value(value: Any) -> Text:
    """One value as psql would show it, a little friendlier: null, true/false, JSON, arrays one per line."""
    if value is None:
        return Text("null", style="dim")
    if isinstance(value, bool):
        return Text("true" if value else "false", style="green" if value else "red")
    if isinstance(value, dict):
        return Text(json.dumps(value, ensure_ascii=False, default=str))
    if isinstance(value, list | tuple):
        return Text("\n".join(str(item) for item in value)) if value else Text("{}", style="dim")
    if isinstance(value, dt.datetime | dt.date | dt.timedelta | Decimal):
        return Text(str(value))
    return Text(str(value))


def print_pg_error(console: Console, exc: psycopg.Error) -> None:
    """A refusal or failure as ``ERROR <SQLSTATE>: message`` with DETAIL and HINT, no traceback."""
    diag = exc.diag
    message = diag.message_primary or str(exc).strip()
    head = f"ERROR {exc.sqlstate}: " if exc.sqlstate else "ERROR: "
    console.print(Text(head, style="bold red") + Text(message))
    if diag.message_detail:
        console.print(Text("DETAIL: ", style="bold") + Text(diag.message_detail))
    if diag.message_hint:
        console.print(Text("HINT: ", style="bold") + Text(diag.message_hint))


def print_rows(console: Console, columns: Sequence[str], rows: Sequence[dict], *, expanded: bool | None = None) -> None:
    """Rows as a table; as psql's expanded display (``\\x``) when a table would not fit the console."""
    if expanded is None:
        expanded = _natural_width(columns, rows) > console.width and len(columns) > 4
    if not expanded:
        console.print(_grid(columns, rows))
    else:
        for number, row in enumerate(rows, 1):
            console.print(Text(f"-[ RECORD {number} ]", style="dim"))
            record = Table.grid(padding=(0, 2))
            record.add_column(style="bold", no_wrap=True)
            record.add_column(overflow="fold")
            for column in columns:
                record.add_row(column, format_value(row[column]))
            console.print(record)
    console.print(Text(f"({len(rows)} row{'' if len(rows) == 1 else 's'})", style="dim"))


def _natural_width(columns: Sequence[str], rows: Sequence[dict]) -> int:
    """The width a table needs with no cell wrapped."""
    widths = [
        max([len(column)] + [max(map(len, format_value(row[column]).plain.split("\n"))) for row in rows])
        for column in columns
    ]
    return sum(widths) + 2 * len(widths)


def _grid(columns: Sequence[str], rows: Sequence[dict]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(format_value(row[column]) for column in columns))
    return table


