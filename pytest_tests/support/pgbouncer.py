"""A private pgbouncer in front of the suite's server, for the tests that prove the product behind a pooler.

:func:`private_pgbouncer` starts a pgbouncer process of our own (its own ini file, auth file, log and pid file in a
temporary folder; never the system's pgbouncer service) that listens on 127.0.0.1 at a free port and routes every
database name to the suite's server (``[databases] * = host=... port=...``), so it reaches each test's own database.
``pool_mode = transaction`` and a small ``default_pool_size`` make clients share server connections, as a
production pool does. pgbouncer refuses to run as root: when we are root it runs as the ``postgres`` OS user (as
``cluster.py`` runs a private PostgreSQL). :func:`unavailable_reason` says why it cannot run here (no binary), for
``pytest.skip``: a missing pgbouncer never fails the suite.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .cluster import free_port
from .roles import TEST_ROLES

#: Debian installs it in /usr/sbin, which a non-root PATH often lacks.
_CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer")
#: The OS user pgbouncer runs as when we are root (it refuses to run as root).
RUN_AS = "postgres"


def binary() -> str | None:
    """The pgbouncer program, or None when it is not installed."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((c for c in _CANDIDATES if os.access(c, os.X_OK)), None)


def unavailable_reason() -> str | None:
    """Why a private pgbouncer cannot run here, or None when it can."""
    if binary() is None:
        return "pgbouncer is not installed (apt-get install pgbouncer)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            return f"we run as root, pgbouncer refuses root, and the OS user {RUN_AS!r} to run it as does not exist"
    return None


@dataclass
class Pgbouncer:
    """A running private pgbouncer: where it listens, how it pools, its log."""

    host: str
    port: int
    pool_mode: str
    pool_size: int
    base: Path
    process: subprocess.Popen

    @property
    def log(self) -> Path:
        return self.base / "pgbouncer.log"

    def url(self, db_url: str, **params: str) -> str:
        """``db_url`` (a test database of the suite's server) as seen through this pgbouncer (``params`` added, e.g.
        user=chat_test_operator)."""
        return make_conninfo(db_url, host=self.host, port=str(self.port), **params)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _userlist(users: set[str]) -> str:
    # auth_type = trust: no password is checked, but pgbouncer knows only the logins listed here
    return "".join(f'"{user}" ""\n' for user in sorted(users))


def _ini(base: Path, server_host: str, server_port: int, port: int, pool_mode: str, pool_size: int) -> str:
    return f"""\
[databases]
* = host={server_host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {base / 'userlist.txt'}
admin_users = postgres
pool_mode = {pool_mode}
max_client_conn = 100
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_db_connections = 0
query_wait_timeout = 30
server_lifetime = 3600
server_idle_timeout = 600
ignore_startup_parameters = extra_float_digits,options
logfile = {base / 'pgbouncer.log'}
pidfile = {base / 'pgbouncer.pid'}
"""


def _wait_listening(host: str, port: int, process: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return True
        time.sleep(0.05)
    return False


@contextmanager
def private_pgbouncer(server_url: str, *, pool_mode: str = "transaction", pool_size: int = 2) -> Iterator[Pgbouncer]:
    """A pgbouncer of our own in front of the server of ``server_url`` (any of its databases), stopped after.

    ``pool_size`` server connections per (database, user) pair: clients share them. Raises RuntimeError when it does
    not start (with its log); call :func:`unavailable_reason` first to skip where it cannot run.
    """
    program = binary()
    if program is None:
        raise RuntimeError("pgbouncer is not installed")
    target = conninfo_to_dict(server_url)
    server_host = str(target.get("host") or "127.0.0.1")
    server_port = int(target.get("port") or 5432)
    users = set(TEST_ROLES) | {"postgres", str(target.get("user") or "postgres")}

    user = RUN_AS if os.geteuid() == 0 else None
    if user is not None and server_host.startswith("/"):
        # a unix socket (the embedded servers): run as the socket directory's owner, the one user sure to reach it
        user = pwd.getpwuid(os.stat(server_host).st_uid).pw_name
    base = Path(tempfile.mkdtemp(prefix="chat-rollout-pgbouncer-"))
    process: subprocess.Popen | None = None
    try:
        port = free_port()
        (base / "userlist.txt").write_text(_userlist(users))
        (base / "pgbouncer.ini").write_text(_ini(base, server_host, server_port, port, pool_mode, pool_size))
        kwargs: dict = {}
        env = dict(os.environ, LC_ALL="C", LANG="C")
        if user is not None:
            pw = pwd.getpwnam(user)
            for path in (base, base / "userlist.txt", base / "pgbouncer.ini"):
                os.chown(path, pw.pw_uid, pw.pw_gid)
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
            env.update(HOME=pw.pw_dir, USER=user, LOGNAME=user)
        # in the foreground (no -d): the Popen is the pgbouncer process, stopped by its own pid
        process = subprocess.Popen(
            [program, "-q", str(base / "pgbouncer.ini")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=str(base),
            env=env,
            **kwargs,
        )
        bouncer = Pgbouncer("127.0.0.1", port, pool_mode, pool_size, base, process)
        if not _wait_listening("127.0.0.1", port, process, timeout=15):
            raise RuntimeError(f"pgbouncer did not start (exit code {process.poll()}):\n{bouncer.log_tail()}")
        yield bouncer
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # immediate shutdown: the tests are done with it
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        shutil.rmtree(base, ignore_errors=True)
