"""Waiting for a real condition instead of sleeping a guessed while: poll it until it holds or
a deadline passes. A test that waits this way is as fast as the machine allows and, on a busy
machine, still waits long enough."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T], *, timeout: float, interval: float = 0.1, what: str = "condition"
) -> T:
    """The predicate's first truthy value; AssertionError if none came within ``timeout``
    seconds. The predicate is asked once more at the deadline, so a slow poll is not lost."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
