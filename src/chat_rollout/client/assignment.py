"""Who is in the canary (SPEC 8): the same function as SQL's ``chat_get_v11_assignment``, computed locally.

``bucket`` = the first 4 bytes of ``sha256(salt || ':' || user_key)`` (UTF-8) read as an unsigned big-endian integer,
mod 10000; a user is in the canary when the kill switch is off and ``bucket < traffic_percent × 100``. The bucket
does not depend on the stage, and the stages' percents never decrease along the stage order (the database refuses
one that would, RO015), so a user in the canary at one stage stays in it at every higher stage.

The key is hashed as given: no trimming, no case folding, no Unicode normalization ("é" precomposed and "e" +
combining accent are two users). A key that cannot be encoded as UTF-8 (a lone surrogate) is a ValueError, as
PostgreSQL could not hold it in a text value either.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

BUCKETS = 10_000
DEFAULT_SALT = "chat_v11"


def bucket(salt: str, user_key: str) -> int:
    """The user's bucket, 0..9999, for this salt."""
    if not isinstance(user_key, str):
        raise TypeError(f"user_key must be str, not {type(user_key).__name__}")
    try:
        data = f"{salt}:{user_key}".encode()
    except UnicodeEncodeError as exc:
        raise ValueError(f"user_key is not valid Unicode text: {exc.reason}") from None
    return int.from_bytes(hashlib.sha256(data).digest()[:4], "big") % BUCKETS


def in_canary(bucket_: int, traffic_percent: Decimal | float | int, kill_switch: bool) -> bool:
    """SQL's rule: kill switch off and bucket < traffic_percent × 100 (exact for the catalog's numeric(5,2))."""
    if kill_switch:
        return False
    return Decimal(bucket_) < Decimal(str(traffic_percent)) * 100
