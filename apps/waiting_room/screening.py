"""Who may join a waiting room: the screens the apps above add (protection adds its block
list, proof of work and bot signals in ProtectionConfig.ready), run in the join API."""

from __future__ import annotations

from collections.abc import Callable

# A screen is called with request, sale, user_id and body (keywords); it raises an
# ApplicationError to refuse, or returns a verdict whose ``back_of_queue`` may be true.
JoinScreen = Callable[..., object]
_screens: list[JoinScreen] = []


def join_screen_add(screen: JoinScreen) -> None:
    """Register one more screen (idempotent: each function counts once)."""
    if screen not in _screens:
        _screens.append(screen)


def join_screens_run(*, request, sale, user_id: int, body: dict) -> bool:
    """Run every screen; True when one sends the shopper to the back of the queue."""
    back_of_queue = False
    for screen in _screens:
        verdict = screen(request=request, sale=sale, user_id=user_id, body=body)
        back_of_queue = back_of_queue or bool(getattr(verdict, "back_of_queue", False))
    return back_of_queue
