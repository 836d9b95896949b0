"""A plain WSGI app (standard library only) that decides per request who gets the new chat (v11).

The rollout client runs beside the app in one background thread; a request only reads memory (``in_canary`` never
touches the database), so the database being slow or gone never slows a request: the last state is kept and
``/healthz`` says how stale it is.

    DATABASE_URL=postgresql://chat_reader@db/chat python docs/examples/wsgi_app.py   # serves on 127.0.0.1:8000
    curl 'http://127.0.0.1:8000/chat?user=alice'
    curl 'http://127.0.0.1:8000/healthz'

Under a multi-process WSGI server (gunicorn, uWSGI) create the client in each worker after the fork (a post-fork
hook), never in the master: a thread and a connection do not survive ``fork()``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable
from urllib.parse import parse_qs
from wsgiref.simple_server import make_server

from chat_rollout.client import RolloutClient


def make_app(client: RolloutClient) -> Callable:
    """The WSGI application, answering from ``client``'s state in memory."""

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            state, staleness = client.state, client.staleness
            body = {
                "ready": state is not None,
                "connected": client.connected,
                "version": None if state is None else state.version,
                "stale_seconds": None if math.isinf(staleness) else round(staleness, 3),
            }
            return respond(start_response, "200 OK" if state is not None else "503 Service Unavailable", body)
        if path == "/chat":
            user = parse_qs(environ.get("QUERY_STRING", "")).get("user", [None])[0]
            if not user:
                return respond(start_response, "400 Bad Request", {"error": "pass ?user=<user key>"})
            canary = client.in_canary(user)  # memory only: False before the first state and whenever killed
            return respond(start_response, "200 OK", {"user": user, "chat": "v11" if canary else "v10"})
        return respond(start_response, "404 Not Found", {"error": f"no route {path}"})

    return app


def respond(start_response: Callable, status: str, body: dict) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    with RolloutClient(os.environ["DATABASE_URL"], application_name="chat-wsgi-example") as client:
        client.on_change(lambda old, new: logging.info("rollout now %s (version %s)", new.stage, new.version))
        client.wait_ready(5)  # optional: serve v10 to everyone until the first state arrives
        with make_server("127.0.0.1", int(os.environ.get("PORT", "8000")), make_app(client)) as server:
            server.serve_forever()


if __name__ == "__main__":
    main()
