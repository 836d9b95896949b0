"""Alembic, driven from Python: the same migrations the DBA runs with ``alembic upgrade head``."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

from alembic import command
from alembic.config import Config

from . import PROJECT_ROOT


def alembic_config(url: str | None = None, *, x: dict[str, str] | None = None) -> Config:
    """An Alembic config for this project; ``url`` overrides DATABASE_URL, ``x`` are ``-x`` arguments."""
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    if url is not None:
        cfg.attributes["dsn"] = url
    if x:
        cfg.cmd_opts = _XArgs([f"{k}={v}" for k, v in x.items()])
    return cfg


class _XArgs:
    def __init__(self, x: list[str]) -> None:
        self.x = x


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base", *, drop_data: bool = False) -> None:
    command.downgrade(alembic_config(url, x={"drop_data": "yes"} if drop_data else None), revision)


def offline_sql(revision_range: str = "head", *, downgrade_to: bool = False, drop_data: bool = False) -> str:
    """The script ``alembic upgrade <range> --sql`` (or ``downgrade``) prints, as text."""
    cfg = alembic_config(x={"drop_data": "yes"} if drop_data else None)
    out = io.StringIO()
    cfg.output_buffer = out
    with redirect_stdout(io.StringIO()):
        if downgrade_to:
            command.downgrade(cfg, revision_range, sql=True)
        else:
            command.upgrade(cfg, revision_range, sql=True)
    return out.getvalue()
