"""Bot screening hooks called by the waiting room (filled in by the protection work)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class JoinVerdict:
    """What the screen decided about a waiting-room join."""

    allowed: bool = True
    back_of_queue: bool = False
    score: int = 0
    reasons: list[str] = field(default_factory=list)


def join_screen(*, request, sale, user_id: int, body: dict) -> JoinVerdict:
    """Screen a waiting-room join (proof of work, bot signals, block list).

    Raises an ApplicationError (403/400) to refuse outright; returns a verdict otherwise.
    """
    return JoinVerdict()
