"""``chat-rollout exporter --listen HOST:PORT``: serve the rollout as Prometheus metrics on ``/metrics``.

The database is the environment's, like every command's (``DATABASE_URL``, ``--database``); run it as a reader login
(a member of ``chat_rollout_reader``: put the login in ``DATABASE_URL``). Each scrape is one consistent read
(``chat_rollout.exporter``); a database that is down is served as ``chat_rollout_up 0`` with no rollout series, and
the exporter keeps serving until it is stopped (SIGTERM or Ctrl-C). The names and labels: README, "Prometheus".
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer
from psycopg.conninfo import conninfo_to_dict

from .. import exporter as metrics
from .common import DatabaseOption, Refusal, environment_server, err, guard, target

app = typer.Typer()  # exporter: a command of the root

PANEL = "Read the rollout"


@app.command(rich_help_panel=PANEL)
@guard
def exporter(
    listen: Annotated[
        str, typer.Option("--listen", metavar="HOST:PORT", help="Where to serve /metrics ([::1]:9464 for IPv6).")
    ] = "127.0.0.1:9464",
    database: DatabaseOption = None,
    statement_timeout: Annotated[
        float,
        typer.Option("--statement-timeout", min=0.1, help="Seconds one scrape's read may take (then up 0)."),
    ] = metrics.DEFAULT_STATEMENT_TIMEOUT_S,
) -> None:
    """Serve the rollout, gates, checks, incidents and chain verification as Prometheus metrics (as a reader login)."""
    try:
        host, port = metrics.parse_listen(listen)
    except ValueError as exc:
        raise Refusal(str(exc), hint="Give --listen as HOST:PORT, e.g. --listen 127.0.0.1:9464.") from None
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    metrics.log.addHandler(handler)
    metrics.log.setLevel(logging.INFO)
    srv = environment_server()
    stop = threading.Event()
    try:
        url, _ = target(srv, database)
        try:
            running = metrics.serve(url, host, port, statement_timeout=statement_timeout)
        except OSError as exc:
            raise Refusal(f"cannot listen on {listen}: {exc.strerror or exc}",
                          hint="Choose a free port (or another address) with --listen HOST:PORT.") from None
        info = conninfo_to_dict(url)
        err().print(
            f"serving {running.url} for database {info.get('dbname') or '?'} as login {info.get('user') or '?'} "
            "(each scrape one read; SIGTERM or Ctrl-C to stop)",
            soft_wrap=True, markup=False, style="dim",
        )
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            running.stop()
    finally:
        metrics.log.removeHandler(handler)
        srv.release()
