"""Issue 14, step 1: the wheel is the product. A wheel built from the checkout, installed into a fresh venv in a
temporary folder outside the clone, gives a working `chat-rollout` that, from there and with only that venv, migrates
a database, prints the offline upgrade that psql applies to the same revision, runs the playbook's calls, lists every
shipped scenario and answers a refused downgrade with one clean RO013 paragraph: the wheel carries sql/,
migrations/, scenarios/ and alembic.ini (setup.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import psycopg
import pytest

from chat_rollout import PROJECT_ROOT
from pytest_tests.support.databases import create_database, drop_database

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
        assert revision == sorted(p.name[:4] for p in (PROJECT_ROOT / "migrations" / "versions").glob("[0-9]*_*"))[-1]
        assert row == ("off", True, "kill")
        listing = run(installed, "seed", "--list", url=pg_server.url_for(name), cwd=outside)
        assert listing.returncode == 0, listing.stderr
        for scenario in SCENARIOS:
            assert scenario in listing.stdout
        # history beyond init is operator data: the installed CLI refuses the downgrade in one paragraph
        refused = run(installed, "downgrade", "base", url=pg_server.url_for(name), cwd=outside)
        assert refused.returncode == 1
        assert "ERROR RO013: " in refused.stderr and "HINT: " in refused.stderr
        assert "chat-rollout downgrade base --drop-data" in " ".join(refused.stderr.split())
        assert "Traceback" not in refused.stderr + refused.stdout
    finally:
        drop_database(pg_server, name)


def test_the_installed_offline_upgrade_applies_with_psql_and_the_playbook_calls_answer(installed, pg_server, tmp_path):
    name = f"chat_rollout_wheel_sql_{os.getpid()}"
    drop_database(pg_server, name)
    create_database(pg_server, name)
    try:
        script = run(installed, "sql", "upgrade", "head", url=pg_server.url_for(name), cwd=tmp_path)
        assert script.returncode == 0, script.stderr
        (tmp_path / "upgrade.sql").write_text(script.stdout)
        applied = subprocess.run(
            [pg_server.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg_server.url_for(name),
             "-f", str(tmp_path / "upgrade.sql")],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert applied.returncode == 0, applied.stderr
        with psycopg.connect(pg_server.url_for(name), autocommit=True) as conn:
            gates = conn.execute("select gate_p0_ok, rollout_decision from chat_get_v11_release_gates()").fetchone()
            state = conn.execute("select stage, version from chat_get_v11_rollout_state()").fetchone()
            hold = conn.execute("select action from chat_set_v11_rollout_state('off', false, 'hold')").fetchone()
            kill = conn.execute("select action from chat_set_v11_rollout_state('off', true, 'kill switch')").fetchone()
            verify = conn.execute("select bool_and(ok) from chat_verify_v11_history()").fetchone()
        assert gates == (False, "HOLD") and state == ("off", 1)
        assert (hold, kill, verify) == (("hold",), ("kill",), (True,))
    finally:
        drop_database(pg_server, name)


def test_the_wheel_carries_the_sql_migrations_and_scenarios(installed):
    site = next(installed.parent.parent.glob("lib/python*/site-packages"))
    shipped = site / "chat_rollout" / "_project"
    for folder in ("sql", "migrations/versions", "migrations/versions/0001_foundation", "scenarios"):
        assert any((shipped / folder).iterdir()), folder
    assert (shipped / "alembic.ini").is_file()

    def files(root):  # every revision's folder, byte for byte
        base = root / "migrations" / "versions"
        return {p.relative_to(base).as_posix(): p.read_bytes() for p in base.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}  # fmt: skip

    assert files(shipped) == files(PROJECT_ROOT)
