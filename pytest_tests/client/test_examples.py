"""docs/examples/wsgi_app.py and asgi_app.py run as documented, in-process, against a real database.

The WSGI app is called with a ``wsgiref`` test environ and served once over real HTTP by ``wsgiref``; the ASGI app is
driven through its lifespan and HTTP messages by a tiny in-process ASGI caller (no framework, no server needed).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
import time
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.util import setup_testing_defaults

from psycopg.conninfo import make_conninfo

from chat_rollout import PROJECT_ROOT
from chat_rollout.client import DEFAULT_SALT, RolloutClient, bucket
from pytest_tests.support.calls import arrange_state, login, set_state

EXAMPLES = PROJECT_ROOT / "docs" / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"chat_rollout_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def canary_user() -> str:
    return next(f"user-{i}" for i in range(10_000) if bucket(DEFAULT_SALT, f"user-{i}") < 5000)


def call_wsgi(app, path: str, query: str = "") -> tuple[str, dict]:
    environ: dict = {"PATH_INFO": path, "QUERY_STRING": query}
    setup_testing_defaults(environ)
    got: dict = {}
    body = b"".join(app(environ, lambda status, headers: got.update(status=status)))
    return got["status"], json.loads(body)


def kill(db_url: str) -> int:
    with login(db_url, "chat_test_operator") as operator:
        return set_state(operator, "canary_50", True, "example kill")["version"]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_the_wsgi_example(db_url, conn):
    arrange_state(conn, "promote", "canary_50", False, False)
    user = canary_user()
    wsgi = load("wsgi_app")
    with RolloutClient(make_conninfo(db_url, user="chat_test_reader"), poll_interval=30) as client:
        app = wsgi.make_app(client)
        assert client.wait_ready(10)
        assert call_wsgi(app, "/chat", f"user={user}") == ("200 OK", {"user": user, "chat": "v11"})
        assert call_wsgi(app, "/chat")[0] == "400 Bad Request"
        status, health = call_wsgi(app, "/healthz")
        assert status == "200 OK" and health["ready"] and health["connected"] and health["stale_seconds"] == 0.0
        version = kill(db_url)
        assert client.wait_for_version(version, 10)
        assert call_wsgi(app, "/chat", f"user={user}")[1]["chat"] == "v10"
        with make_server("127.0.0.1", 0, app, handler_class=QuietHandler) as server:  # once over real HTTP
            thread = threading.Thread(target=server.handle_request)
            thread.start()
            url = f"http://127.0.0.1:{server.server_port}/chat?user={user}"
            with urllib.request.urlopen(url, timeout=10) as answer:
                assert json.load(answer) == {"user": user, "chat": "v10"}
            thread.join(10)


def test_the_wsgi_example_without_a_state_serves_the_old_chat():
    wsgi = load("wsgi_app")
    client = RolloutClient("postgresql://postgres@127.0.0.1:1/none", connect_timeout=1)  # never started
    app = wsgi.make_app(client)
    assert call_wsgi(app, "/chat", "user=alice") == ("200 OK", {"user": "alice", "chat": "v10"})
    status, health = call_wsgi(app, "/healthz")
    assert status == "503 Service Unavailable" and health["stale_seconds"] is None
    client.close()


async def call_asgi(app, scope: dict, messages: list[dict]) -> list[dict]:
    inbox: asyncio.Queue = asyncio.Queue()
    for m in messages:
        inbox.put_nowait(m)
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, inbox.get, send)
    return sent


async def get(app, path: str, query: str = "") -> tuple[int, dict]:
    scope = {"type": "http", "method": "GET", "path": path, "query_string": query.encode(), "headers": []}
    start, body = await call_asgi(app, scope, [{"type": "http.request", "body": b"", "more_body": False}])
    return start["status"], json.loads(body["body"])


def test_the_asgi_example(db_url, conn):
    arrange_state(conn, "promote", "canary_50", False, False)
    user = canary_user()
    asgi = load("asgi_app")
    app = asgi.make_app(lambda: RolloutClient(make_conninfo(db_url, user="chat_test_reader"), poll_interval=30))

    async def scenario() -> None:
        inbox: asyncio.Queue = asyncio.Queue()
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        lifespan = asyncio.create_task(app({"type": "lifespan"}, inbox.get, send))
        await inbox.put({"type": "lifespan.startup"})
        deadline = time.monotonic() + 10
        while (await get(app, "/healthz"))[0] != 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert sent == [{"type": "lifespan.startup.complete"}]
        assert await get(app, "/chat", f"user={user}") == (200, {"user": user, "chat": "v11"})
        assert (await get(app, "/nowhere"))[0] == 404
        version = await asyncio.to_thread(kill, db_url)
        while (await get(app, "/healthz"))[1]["version"] != version and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        status, health = await get(app, "/healthz")
        assert status == 200 and health["version"] == version
        assert await get(app, "/chat", f"user={user}") == (200, {"user": user, "chat": "v10"})
        # the kill's callback hops onto the loop after the state is published; an earlier change (the first load)
        # may already be in the record, so wait for this version, not for any entry
        while version not in [s.version for s in app.changes] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert [s.version for s in app.changes][-1] == version
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(lifespan, 10)
        assert sent[-1] == {"type": "lifespan.shutdown.complete"}

    before = threading.active_count()
    asyncio.run(scenario())
    assert threading.active_count() <= before  # the client's thread ended with the lifespan
