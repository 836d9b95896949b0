"""chat-rollout: a Postgres-native control plane for the staged rollout of Chat protocol v1.1."""

from pathlib import Path

__version__ = "0.1.0"

#: The project root (the repository): where alembic.ini, migrations/ and sql/ live.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
