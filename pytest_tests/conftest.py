"""The harness: one server per run (SPEC section 3), one migrated template, a fresh clone per test.

Fixtures only; the helpers the tests share are in pytest_tests/support/ (see pytest_tests/README.md).
"""

from __future__ import annotations

import itertools
import json
import os

import psycopg
import pytest

from chat_rollout import PROJECT_ROOT, migrate
from chat_rollout.server import Server, from_environment
from pytest_tests.support.databases import create_database, drop_database
from pytest_tests.support.roles import TEST_ROLES

#: The complete example postmortem of the docs (playbook section 10): the one source of the tests' postmortem.
POSTMORTEM_EXAMPLE = PROJECT_ROOT / "docs" / "examples" / "postmortem.json"

_counter = itertools.count(1)
_server: Server | None = None


def _get_server() -> Server:
    global _server
    if _server is None:
        _server = from_environment()
    return _server


def pytest_report_header(config):
    server = _get_server()
    return [f"chat-rollout server ({server.source}): {server.version()}"]


def pytest_sessionfinish(session, exitstatus):
    if _server is not None:
        _server.release()


@pytest.fixture(scope="session")
def pg_server() -> Server:
    return _get_server()


@pytest.fixture(scope="session")
def template_db(pg_server: Server) -> str:
    """A database migrated to head once per run: every test clones it."""
    name = f"chat_rollout_tpl_{os.getpid()}"
    url = create_database(pg_server, name)
    migrate.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        for login, group in TEST_ROLES.items():
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (login,)).fetchone()
            if not exists:
                conn.execute(f"create role {login} login")
            if group:
                conn.execute(f"grant {group} to {login}")
    yield name
    drop_database(pg_server, name)


@pytest.fixture
def fresh_db(pg_server: Server, template_db: str):
    """(name, url) of a fresh clone of the migrated template, dropped after the test."""
    name = f"chat_rollout_t{os.getpid()}_{next(_counter)}"
    url = create_database(pg_server, name, template=template_db)
    yield name, url
    drop_database(pg_server, name)


@pytest.fixture
def db_url(fresh_db) -> str:
    return fresh_db[1]


@pytest.fixture
def conn(db_url: str):
    """An autocommit connection (as the owner, like a DBA in psql) to a fresh clone."""
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def empty_db(pg_server: Server):
    """(name, url) of an empty database, for migration tests."""
    name = f"chat_rollout_e{os.getpid()}_{next(_counter)}"
    url = create_database(pg_server, name)
    yield name, url
    drop_database(pg_server, name)


@pytest.fixture
def postmortem_example() -> dict:
    """The example postmortem of docs/examples/postmortem.json, complete; a fresh copy per test (change it freely)."""
    return json.loads(POSTMORTEM_EXAMPLE.read_text(encoding="utf-8"))
