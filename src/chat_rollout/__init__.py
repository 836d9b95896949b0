"""chat-rollout: a Postgres-native control plane for the staged rollout of Chat protocol v1.1."""

from pathlib import Path

__version__ = "0.1.0"


def _project_root() -> Path:
    """Where alembic.ini, migrations/, sql/ and scenarios/ live: the repository around an editable install or a
    checkout, else the copy an installed wheel carries (chat_rollout/_project, see setup.py)."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "migrations" / "env.py").is_file() and (checkout / "alembic.ini").is_file():
        return checkout
    return Path(__file__).resolve().parent / "_project"


#: The project root: where alembic.ini, migrations/, sql/ and scenarios/ live.
PROJECT_ROOT = _project_root()
