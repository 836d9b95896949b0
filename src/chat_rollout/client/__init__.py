"""The application side of the rollout (SPEC 8): who is in the canary, from a state kept current in memory.

``RolloutClient(dsn)`` holds the rollout state (pushed by NOTIFY on a direct connection, polled as a fallback,
fail-static when the database is gone); ``in_canary(user_key)`` answers locally with the same function as SQL's
``chat_get_v11_assignment``. See docs/client.md.
"""

from chat_rollout.client.assignment import DEFAULT_SALT, bucket, in_canary
from chat_rollout.client.core import RolloutClient
from chat_rollout.client.state import RolloutState

__all__ = ["DEFAULT_SALT", "RolloutClient", "RolloutState", "bucket", "in_canary"]
