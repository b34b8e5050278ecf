"""Per-process memories: answers a process reuses for a moment instead of asking Redis or
PostgreSQL again (a sale's snapshot, a sold-out sale, the block list, a verified token, …).

Each is a ``ProcessMemory``: cachetools' time-aware LRU cache (``TLRUCache``) behind a
thread lock and bounded in size. An entry lives for the memory's period, read when the entry
is stored (a number, or the name of a setting so that an operator or a test may change it),
or for the ``seconds`` given to ``set``; 0 or less means "remember nothing". Tests start
from empty memories with one call, ``memories_reset()``.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any

from cachetools import TLRUCache
from django.conf import settings

_ABSENT = object()
_memories: weakref.WeakSet[ProcessMemory] = weakref.WeakSet()


class ProcessMemory:
    def __init__(
        self,
        name: str,
        *,
        seconds: float | str = 0.0,
        maxsize: int = 10_000,
        timer: Callable[[], float] = time.monotonic,
    ):
        self.name = name
        self._seconds = seconds
        # Each entry is (its lifetime, the value); it expires that long after it is stored.
        self._cache: TLRUCache = TLRUCache(
            maxsize, lambda key, entry, now: now + entry[0], timer=timer
        )
        self._lock = threading.Lock()
        _memories.add(self)

    def period(self) -> float:
        if isinstance(self._seconds, str):
            return float(getattr(settings, self._seconds))
        return self._seconds

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            entry = self._cache.get(key, _ABSENT)
        return default if entry is _ABSENT else entry[1]

    def set(self, key: Hashable, value: Any, *, seconds: float | None = None) -> None:
        """Remember ``value`` for ``seconds`` (by default the memory's period)."""
        lifetime = self.period() if seconds is None else seconds
        if lifetime <= 0:
            return
        with self._lock:
            self._cache[key] = (lifetime, value)

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._cache.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    def __repr__(self) -> str:
        return f"<ProcessMemory {self.name}>"


def memories_reset() -> None:
    """Empty every memory of this process (each test starts with nothing remembered)."""
    for memory in list(_memories):
        memory.clear()
