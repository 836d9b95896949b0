"""``chat-rollout simulate --listen HOST:PORT``: a simulated chat service for the end-to-end story (deploy/story/).

Serves ``/metrics`` (prometheus-client counters per cohort: sends, ACKs, receipts, resyncs, …;
``chat_rollout.simulate``)
healthy by default; ``--p0-at SECONDS`` or ``POST /inject?metric=NAME`` injects an event into the canary. It needs no
database. Stopped by SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Annotated

import typer

from .. import simulate as simulation
from ..listen import parse_listen
from .common import Refusal, err, guard

app = typer.Typer()  # simulate: a command of the root

PANEL = "Feed the gates"


@app.command(rich_help_panel=PANEL)
@guard
def simulate(
    listen: Annotated[
        str, typer.Option("--listen", metavar="HOST:PORT", help="Where to serve /metrics and POST /inject.")
    ] = simulation.DEFAULT_LISTEN,
    rate: Annotated[
        float, typer.Option("--rate", min=1, help="Sends per second per cohort (the other counters follow it).")
    ] = simulation.DEFAULT_RATE,
    p0_at: Annotated[
        float | None,
        typer.Option("--p0-at", metavar="SECONDS", min=0,
                     help="Inject a P0 event into the canary this many seconds after the start."),
    ] = None,
    p0_metric: Annotated[
        str, typer.Option("--p0-metric", help="The metric --p0-at injects (any metric of the catalog).")
    ] = "ack_without_receipt_10s_rate",
) -> None:
    """Serve a simulated chat service's counters for both cohorts (no database; POST /inject?metric=NAME)."""
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise Refusal(str(exc), hint="Give --listen as HOST:PORT, e.g. --listen 127.0.0.1:9466.") from None
    if p0_metric not in simulation.SOURCES:
        raise Refusal(f"unknown metric {p0_metric!r}", hint=f"One of: {', '.join(simulation.SOURCES)}.")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    simulation.log.addHandler(handler)
    simulation.log.setLevel(logging.INFO)
    service = simulation.ChatService(rate)
    try:
        try:
            service.serve(host, port)
        except OSError as exc:
            raise Refusal(f"cannot listen on {listen}: {exc.strerror or exc}",
                          hint="Choose a free port (or another address) with --listen HOST:PORT.") from None
        service.start()
        err().print(f"serving http://{listen}/metrics (cohorts canary and control, {rate:g} sends/s each); "
                    f"inject: curl -X POST '{listen}/inject?metric={p0_metric}'"
                    + (f"; a P0 event ({p0_metric}) in {p0_at:g} s" if p0_at is not None else ""),
                    soft_wrap=True, markup=False, style="dim")
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        due = None if p0_at is None else time.monotonic() + p0_at
        try:
            while not stop.wait(0.05):
                if due is not None and time.monotonic() >= due:
                    service.inject(p0_metric)
                    due = None
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        service.stop()
        simulation.log.removeHandler(handler)
