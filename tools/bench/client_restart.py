"""The application client's recovery after a server restart (part of the ``client`` benchmark, tools/bench/client.py).

A private PostgreSQL cluster (the binaries of the bench server when they are on this machine), initdb'ed in a
temporary folder, migrated, one client connected; ``pg_ctl stop -m fast``, ``pg_ctl start``; from the moment the
server accepts connections again (polled every 5 ms) a state change is committed at once, and the time runs until
the client holds it: reconnected and reloaded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import psycopg

from chat_rollout import migrate
from chat_rollout.client import RolloutClient
from chat_rollout.server import (
    PG16_OS_USERS,
    ServerUnavailable,
    _free_port,
    _run_pg,
    closed_folder,
)

from .common import Context

RESET = (
    "select version from chat_v11.apply_transition('rollback', %s, false, false, 'benchmark reset', null, null, null)"
)
BACKOFFS = [1.0, 0.2]  # backoff_initial: the default, and a faster one


def reset(conn: psycopg.Connection, stage: str = "off") -> int:
    """The state to ``stage``, kill switch off, as the owner (the bench's own setting); the new version."""
    with conn.transaction():
        conn.execute("select chat_v11.lock_state()")
        return conn.execute(RESET, (stage,)).fetchone()[0]


# --- recovery after a restart ----------------------------------------------------------------------------------------


def server_bin_dir(ctx: Context) -> Path:
    """The bench server's binaries when they are on this machine: its own (embedded), else pg_config's BINDIR."""
    candidates = [ctx.server.bin_dir] if ctx.server.bin_dir is not None else []
    with contextlib.suppress(psycopg.Error):
        candidates.append(Path(ctx.conn.execute("select setting from pg_config where name = 'BINDIR'").fetchone()[0]))
    for path in candidates:
        if path is not None and all((Path(path) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(path)
    raise ServerUnavailable("the bench server's binaries (initdb, pg_ctl) are not on this machine")


def os_user(bin_dir: Path) -> str | None:
    """Who runs the private cluster: ourselves, unless root (PostgreSQL refuses): then a user who can reach bin_dir."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd

    for name in (*PG16_OS_USERS, "embedded_postgres"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            if closed_folder(bin_dir, name) is None:
                return name
    raise ServerUnavailable(f"we run as root and no OS user of {PG16_OS_USERS} can run the binaries of {bin_dir}")


class PrivateServer:
    """A throwaway cluster in a temporary folder on a free 127.0.0.1 port (trust auth), stopped and started at will."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir, self.user = bin_dir, os_user(bin_dir)
        self.base = Path(tempfile.mkdtemp(prefix="chat-rollout-bench-client-"))
        self.data, sockets, self.log = self.base / "data", self.base / "sock", self.base / "postgres.log"
        os.chmod(self.base, 0o755)
        sockets.mkdir(mode=0o700)
        if self.user is not None:
            import pwd

            pw = pwd.getpwnam(self.user)
            for path in (self.base, sockets):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        try:
            self.pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
            self.port = _free_port()
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.write(
                    f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = "
                    f"'{sockets}'\nfsync = off\n"
                )
            self.pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        except BaseException:
            self.release()
            raise
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pg(self, tool: str, *args: str) -> str:
        return _run_pg(self.bin_dir, self.user, self.base, tool, *args)

    def stop(self) -> None:
        self.pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def start_nowait(self) -> None:
        self.pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-W", "start")

    def wait_accepting(self, timeout: float = 60) -> int:
        """Poll a connection every 5 ms until one succeeds; the monotonic ns of that success."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=2):
                    return time.monotonic_ns()
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def release(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(ServerUnavailable):
                self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def recovery(ctx: Context, rounds: int) -> dict[float, dict[str, list[float]]]:
    """Per backoff_initial: seconds down (stop start -> accepting), and up -> client holds the change, stop -> holds."""
    server = PrivateServer(server_bin_dir(ctx))
    out: dict[float, dict[str, list[float]]] = {}
    try:
        ctx.log(f"  private cluster on port {server.port}: alembic upgrade head")
        migrate.upgrade(server.url)
        for initial in BACKOFFS:
            got = out.setdefault(initial, {"down": [], "up to held": [], "stop to held": [], "reconnects": []})
            with RolloutClient(server.url, backoff_initial=initial) as client:
                if not client.wait_ready(30):
                    raise RuntimeError("the client did not load the state on the private cluster")
                for _ in range(rounds):
                    before = client.stats["reconnects"]
                    t_stop = time.monotonic_ns()
                    server.stop()
                    server.start_nowait()
                    t_up = server.wait_accepting()
                    with psycopg.connect(server.url, autocommit=True) as conn:
                        version = reset(conn)
                    if not client.wait_for_version(version, 120):
                        raise RuntimeError(f"the client did not recover within 120 s (backoff {initial})")
                    t_held = time.monotonic_ns()
                    if not client.connected:
                        raise RuntimeError("the client holds the new version but says it is not connected")
                    got["down"].append((t_up - t_stop) / 1e9)
                    got["up to held"].append((t_held - t_up) / 1e9)
                    got["stop to held"].append((t_held - t_stop) / 1e9)
                    got["reconnects"].append(client.stats["reconnects"] - before)
    finally:
        server.release()
    return out


# --- the section ------------------------------------------------------------------------------------------------------
