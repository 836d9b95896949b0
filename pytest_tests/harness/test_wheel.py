"""Issue 14, step 1: the wheel is the product. A wheel built from the checkout, installed into a fresh venv in a
temporary folder outside the clone, gives a working `chat-rollout` that migrates a database from any directory and
lists every shipped scenario: the wheel carries sql/, migrations/, scenarios/ and alembic.ini (setup.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import psycopg
import pytest

from chat_rollout import PROJECT_ROOT
from pytest_tests.conftest import drop_database

SCENARIOS = sorted(p.stem for p in (PROJECT_ROOT / "scenarios").glob("*.toml") if not p.stem.startswith("_"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The chat-rollout command of a fresh venv holding only the wheel and its declared dependencies."""
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q", "-w", str(dist),
         str(PROJECT_ROOT)],
        capture_output=True, text=True, timeout=600, cwd=work,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("chat_rollout-*.whl")
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    install = subprocess.run(
        [env_dir / "bin" / "pip", "install", "--disable-pip-version-check", "-q", str(wheel)],
        capture_output=True, text=True, timeout=900, cwd=work,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    return env_dir / "bin" / "chat-rollout"


def run(command: Path, *args: str, url: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(DATABASE_URL=url, COLUMNS="200", NO_COLOR="1")
    return subprocess.run([command, *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def test_the_installed_wheel_migrates_a_database_from_any_directory_and_lists_every_scenario(
    installed, pg_server, tmp_path
):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    name = f"chat_rollout_wheel_{os.getpid()}"
    drop_database(pg_server, name)
    try:
        assert run(installed, "--help", url=pg_server.url, cwd=outside).returncode == 0
        migrated = run(installed, "migrate", "-d", name, url=pg_server.url, cwd=outside)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        assert f"created database {name}" in migrated.stdout
        with psycopg.connect(pg_server.url_for(name), autocommit=True) as conn:
            (revision,) = conn.execute("select version_num from alembic_version").fetchone()
            row = conn.execute(
                "select stage, kill_switch, action from chat_set_v11_rollout_state('off', true, 'wheel kill')"
            ).fetchone()
        assert revision == sorted(p.name[:4] for p in (PROJECT_ROOT / "migrations" / "versions").glob("[0-9]*.py"))[-1]
        assert row == ("off", True, "kill")
        listing = run(installed, "seed", "--list", url=pg_server.url_for(name), cwd=outside)
        assert listing.returncode == 0, listing.stderr
        for scenario in SCENARIOS:
            assert scenario in listing.stdout
    finally:
        drop_database(pg_server, name)


def test_the_wheel_carries_the_sql_migrations_and_scenarios(installed):
    site = next(installed.parent.parent.glob("lib/python*/site-packages"))
    shipped = site / "chat_rollout" / "_project"
    for folder in ("sql", "migrations/versions", "migrations/frozen", "scenarios"):
        assert any((shipped / folder).iterdir()), folder
    assert (shipped / "alembic.ini").is_file()
    shipped_revisions = sorted(p.name for p in (shipped / "migrations" / "versions").glob("[0-9]*.py"))
    assert shipped_revisions == sorted(p.name for p in (PROJECT_ROOT / "migrations" / "versions").glob("[0-9]*.py"))
