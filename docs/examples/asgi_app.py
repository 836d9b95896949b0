"""A bare ASGI app (no framework) that decides per request who gets the new chat (v11).

The client is started at lifespan startup and closed at shutdown (in a worker thread: ``close()`` joins the client's
thread, which must not block the event loop). ``in_canary`` only reads memory, so calling it inside a coroutine is
fine. Callbacks run on the client's thread: to act on a change in the event loop, hand it over with
``loop.call_soon_threadsafe`` (as below).

    DATABASE_URL=postgresql://chat_reader@db/chat uvicorn --app-dir docs/examples asgi_app:app   # any ASGI server
    curl 'http://127.0.0.1:8000/chat?user=alice'
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
from collections.abc import Awaitable, Callable
from functools import partial
from urllib.parse import parse_qs

from chat_rollout.client import RolloutClient, RolloutState

log = logging.getLogger("chat-asgi-example")


def make_app(new_client: Callable[[], RolloutClient]) -> Callable[..., Awaitable[None]]:
    """The ASGI application; ``new_client()`` builds the (not yet started) client at lifespan startup."""
    holder: dict[str, RolloutClient] = {}
    changes: list[RolloutState] = []  # the event loop's own record of changes, appended on the loop's thread

    async def lifespan(receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                client = holder["client"] = new_client()
                client.on_change(partial(hand_over, asyncio.get_running_loop(), changes.append))
                client.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if "client" in holder:
                    await asyncio.to_thread(holder.pop("client").close)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            return await lifespan(receive, send)
        if scope["type"] != "http":
            return None
        client = holder.get("client")
        if scope["path"] == "/healthz":
            state = None if client is None else client.state
            staleness = math.inf if client is None else client.staleness
            body = {
                "ready": state is not None,
                "version": None if state is None else state.version,
                "stale_seconds": None if math.isinf(staleness) else round(staleness, 3),
                "changes_seen": len(changes),
            }
            return await respond(send, 200 if state is not None else 503, body)
        if scope["path"] == "/chat":
            user = parse_qs(scope.get("query_string", b"").decode()).get("user", [None])[0]
            if not user:
                return await respond(send, 400, {"error": "pass ?user=<user key>"})
            canary = client is not None and client.in_canary(user)
            return await respond(send, 200, {"user": user, "chat": "v11" if canary else "v10"})
        return await respond(send, 404, {"error": f"no route {scope['path']}"})

    app.changes = changes  # the example's record, read by its test
    return app


def hand_over(loop: asyncio.AbstractEventLoop, handler: Callable, old: RolloutState | None, new: RolloutState) -> None:
    """An on_change callback (the client's thread) that passes the new state to ``handler`` on the event loop."""
    loop.call_soon_threadsafe(handler, new)


async def respond(send: Callable, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


app = make_app(lambda: RolloutClient(os.environ["DATABASE_URL"], application_name="chat-asgi-example"))
