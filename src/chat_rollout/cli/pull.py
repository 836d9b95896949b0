"""``chat-rollout pull --prometheus URL``: read the metric sources from Prometheus into the gates (SPEC 7).

Run it as an ingest login (a member of ``chat_rollout_ingest``: put the login in ``DATABASE_URL``). Every
``--interval`` seconds, ``--settle`` seconds after a bucket ends, it queries the last complete 10-second bucket at
an explicit ``time=`` (the end of the bucket), backfills the buckets it missed up to ``--horizon``, writes through
``chat_put_v11_metric_samples`` with the provenance of each bucket, then runs the guardrails
(``chat_rollout.puller``; docs/prometheus-in.md). With ``--alertmanager URL`` every cycle also reads Alertmanager's
active P0/P1 alerts into the database (``chat_put_v11_active_alerts``), where they block the Go/No-Go.
``--once`` runs one cycle: exit 0 when it saw no error, 1 otherwise.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer

from .. import puller as pulling
from .common import DatabaseOption, Refusal, environment_server, err, guard, target

app = typer.Typer()  # pull: a command of the root

PANEL = "Feed the gates"


@app.command(rich_help_panel=PANEL)
@guard
def pull(
    prometheus: Annotated[
        str, typer.Option("--prometheus", metavar="URL", help="The Prometheus to query, e.g. http://prometheus:9090.")
    ],
    alertmanager: Annotated[
        str | None,
        typer.Option("--alertmanager", metavar="URL", help="Also read the active P0/P1 alerts of this Alertmanager "
                     "each cycle (e.g. http://alertmanager:9093); they block the Go/No-Go."),
    ] = None,
    alert_severity_label: Annotated[
        str, typer.Option("--alert-severity-label", help="The alert label holding the severity (P0, P1, ...).")
    ] = "severity",
    interval: Annotated[float, typer.Option("--interval", min=1, help="Seconds between cycles.")] = 10.0,
    horizon: Annotated[
        str, typer.Option("--horizon", help="How far back missed buckets are backfilled (90s, 10m, 1h).")
    ] = "10m",
    settle: Annotated[
        float,
        typer.Option("--settle", min=0, help="Seconds after a bucket's end before it counts as complete (at least "
                     "the scrape interval of the sources' targets)."),
    ] = 5.0,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds one query may take.")] = 5.0,
    max_consecutive_errors: Annotated[
        int, typer.Option("--max-consecutive-errors", min=1, help="Give up (exit 1) after this many failed cycles "
                          "in a row.")
    ] = 30,
    once: Annotated[bool, typer.Option("--once", help="One cycle, then exit (1 when it saw an error).")] = False,
    listen: Annotated[
        str | None,
        typer.Option("--listen", metavar="HOST:PORT", help="Serve the puller's own /metrics here (errors, "
                     "consecutive errors, last success, buckets written)."),
    ] = None,
    database: DatabaseOption = None,
) -> None:
    """Pull the metric sources from Prometheus into the gates, bucket by bucket (as an ingest login)."""
    try:
        span = pulling.parse_duration(horizon)
        where = pulling.parse_listen(listen) if listen else None
    except ValueError as exc:
        raise Refusal(str(exc), hint="For example: --horizon 10m --listen 127.0.0.1:9465.") from None
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    pulling.log.addHandler(handler)
    pulling.log.setLevel(logging.INFO)
    srv = environment_server()
    worker = None
    try:
        url, _ = target(srv, database)
        worker = pulling.Puller(url, prometheus, horizon=span, settle=settle, timeout=timeout,
                                max_consecutive_errors=max_consecutive_errors, alertmanager_url=alertmanager,
                                alert_severity_label=alert_severity_label)
        if where is not None:
            try:
                worker.serve_metrics(*where)
            except OSError as exc:
                raise Refusal(f"cannot listen on {listen}: {exc.strerror or exc}",
                              hint="Choose a free port (or another address) with --listen HOST:PORT.") from None
        if once:
            report = worker.pull_once()
            err().print(f"pulled up to the bucket {pulling.iso(report.last_complete)}: "
                        f"{len(report.buckets_written)} buckets, {len(report.samples)} samples, "
                        f"{len(report.errors)} errors", markup=False, soft_wrap=True)
            if report.errors:
                raise typer.Exit(1)
            return
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            worker.run(stop, interval)
        except pulling.TooManyErrors as exc:
            raise Refusal(str(exc), hint="Check that Prometheus answers at --prometheus and the sources "
                          "(chat_get_v11_metric_sources()); the log names every failed query.") from None
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        if worker is not None:
            worker.close()
        pulling.log.removeHandler(handler)
        srv.release()
