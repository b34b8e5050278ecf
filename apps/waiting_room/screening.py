"""Who may join a waiting room: the screens the apps above add (protection adds its block
list, proof of work and bot signals in ProtectionConfig.ready), run in the join API.

A screen may leave part of its decision to Redis: its verdict then carries a ``ScreenStep``,
a Lua script the join runs inside its own script (the screen's keys, all under the sale's
hash tag, first), so screening and placing the shopper take one round trip. The step's
script returns a table whose first element is ``ok`` (place the shopper), ``back`` (place
them at the back of the queue) or anything else (refused: the place is left untouched); the
join hands that reply to ``settle``, which raises the screen's refusal (or returns)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# A screen is called with request, sale, user_id and body (keywords); it raises an
# ApplicationError to refuse, or returns a verdict whose ``back_of_queue`` may be true and
# whose ``step`` may be a ScreenStep.
JoinScreen = Callable[..., object]
_screens: list[JoinScreen] = []


@dataclass(frozen=True)
class ScreenStep:
    script: Path  # a .lua file that reads its own KEYS and ARGV and returns its reply
    keys: list[str]
    args: list
    settle: Callable[[list], object]  # the script's reply -> raises a refusal, or returns


@dataclass(frozen=True)
class Screened:
    """What the screens decided before the join's round trip."""

    back_of_queue: bool = False
    step: ScreenStep | None = None


def join_screen_add(screen: JoinScreen) -> None:
    """Register one more screen (idempotent: each function counts once)."""
    if screen not in _screens:
        _screens.append(screen)


def join_screens_run(*, request, sale, user_id: int, body: dict) -> Screened:
    """Run every screen; at most one may leave a step for the join's script."""
    back_of_queue = False
    step = None
    for screen in _screens:
        verdict = screen(request=request, sale=sale, user_id=user_id, body=body)
        back_of_queue = back_of_queue or bool(getattr(verdict, "back_of_queue", False))
        verdict_step = getattr(verdict, "step", None)
        if verdict_step is not None:
            if step is not None:
                raise RuntimeError("only one join screen may run in the join's script")
            step = verdict_step
    return Screened(back_of_queue=back_of_queue, step=step)
