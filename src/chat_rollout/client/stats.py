"""The client's counters and its reconnect delays (1, 2, 4 … capped, each plus a random jitter)."""

from __future__ import annotations

import random
import threading
from typing import Any

RELOAD_REASONS = ("initial", "gap", "salt", "reconnect", "poll")


class Stats:
    """Counters written by the client's thread, read as a snapshot from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = {
            k: 0 for k in ("notifications", "applied", "ignored", "reloads", "polls", "reconnects", "errors")
        }
        self._reasons = {k: 0 for k in RELOAD_REASONS}

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def reload(self, reason: str) -> None:
        with self._lock:
            self._counts["reloads"] += 1
            self._reasons[reason] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {**self._counts, "reload_reasons": dict(self._reasons)}


class Backoff:
    """Delays initial, 2×, 4× … capped at ``maximum``, each plus ``uniform(0, jitter × delay)``; reset after success."""

    def __init__(self, initial: float, maximum: float, jitter: float, rng: random.Random | None = None) -> None:
        if initial <= 0 or maximum < initial or jitter < 0:
            raise ValueError("backoff needs 0 < initial <= maximum and jitter >= 0")
        self.initial, self.maximum, self.jitter = initial, maximum, jitter
        self._rng = rng or random.Random()
        self._next = initial

    def next_delay(self) -> float:
        base = self._next
        self._next = min(self.maximum, base * 2)
        return base + self._rng.uniform(0, self.jitter * base)

    def reset(self) -> None:
        self._next = self.initial
