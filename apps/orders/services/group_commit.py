"""Group commit: the holds of purchases waiting at the same moment become orders in ONE
PostgreSQL transaction, each with its own outcome.

PostgreSQL reaches its insert rate only with many transactions in flight; a web process has
a few threads and a small pool. So the purchases of a process queue here, and one arriving
while fewer than ``ORDER_GROUP_COMMIT_LEADERS`` groups are committing leads: it takes every
hold waiting (one per shopper, up to
``ORDER_GROUP_COMMIT_MAX``), records them with one statement in one transaction on its own
connection, then hands the next waiting purchase the lead and tells each of its followers its
outcome. No thread of ours, no connection of ours: the leader is a request thread. By default
one group commits at a time per process: the purchases arriving meanwhile form the next group,
and the fixed cost of a transaction (checkout, planning, commit, the Redis confirm) is shared by
all of them; more leaders overlap WAL flushes when fsync is slow, at the price of smaller
groups.

Only what was committed is answered 201: when any hold of the group is refused (its units
taken meanwhile, its shopper over the limit) or the transaction fails, the whole group rolls
back and every purchase of it is recorded alone (``HoldVerdict.ALONE``), as without grouping,
where its own refusal or error is decided. ``synchronous_commit`` is untouched.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from enum import Enum

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from redis.exceptions import NoScriptError

from apps.core.redis import RedisError, script_pipeline
from apps.inventory import redis_scripts
from apps.inventory.keys import sale_keys
from apps.waiting_room import redis_scripts as room_scripts
from apps.waiting_room.keys import room_keys

from .reservations import Hold, HoldRecorded, hold_recorded_whole, orders_insert_holding_units

logger = logging.getLogger(__name__)


class HoldVerdict(Enum):
    RECORDED = "recorded"  # committed: the order exists
    ALONE = "alone"  # not committed: record it alone, where its own outcome is decided
    UNAVAILABLE = "unavailable"  # not committed: PostgreSQL cannot be reached (no retry alone)
    LEAD = "lead"  # (internal) this purchase leads the next group


@dataclass
class _Waiting:
    hold: Hold
    done: threading.Event
    verdict: HoldVerdict | None = None
    recorded: HoldRecorded | None = None


class _GroupRefused(Exception):
    """A hold of the group was refused: roll the group back."""


class GroupCommit:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []  # holds waiting for a leader
        self._leaders = 0  # groups being committed; the queue fills only at the most

    def hold_commit(self, hold: Hold) -> tuple[HoldVerdict, HoldRecorded | None]:
        """Wait until ``hold`` is committed with its group (RECORDED) or must be recorded
        alone (ALONE)."""
        me = _Waiting(hold, threading.Event())
        with self._lock:
            lead = self._leaders < max(1, getattr(settings, "ORDER_GROUP_COMMIT_LEADERS", 1))
            if lead:
                self._leaders += 1
            else:
                self._queue.append(me)
        if not lead:
            if not me.done.wait(getattr(settings, "DB_POOL_TIMEOUT", 1.0)):
                # Waited as long as for a connection: unless a group has taken this hold (its
                # outcome is on its way), leave the queue; the purchase answers 503.
                with self._lock:
                    queued = any(waiting is me for waiting in self._queue)
                    if queued:
                        self._queue = [waiting for waiting in self._queue if waiting is not me]
                if queued:
                    return HoldVerdict.UNAVAILABLE, None
                me.done.wait()
            if me.verdict is not HoldVerdict.LEAD:
                return me.verdict, me.recorded
        self._lead(me)
        return me.verdict, me.recorded

    def _group_take(self, leader: _Waiting) -> list[_Waiting]:
        """The leader's hold and the waiting ones, one per shopper, in the order of their
        shoppers (groups committing side by side lock the shoppers' tally rows in one
        order). Never raises: a leader that failed here would leave its followers waiting."""
        limit = max(1, getattr(settings, "ORDER_GROUP_COMMIT_MAX", 64))
        group, rest, shoppers = [leader], [], {leader.hold.user_id}
        with self._lock:
            for waiting in self._queue:
                if len(group) < limit and waiting.hold.user_id not in shoppers:
                    shoppers.add(waiting.hold.user_id)
                    group.append(waiting)
                else:
                    rest.append(waiting)
            self._queue = rest
        group.sort(key=lambda waiting: (waiting.hold.sale.id, waiting.hold.user_id))
        return group

    def _lead(self, leader: _Waiting) -> None:
        group = self._group_take(leader)
        recorded: list[HoldRecorded] | HoldVerdict = HoldVerdict.ALONE
        try:
            recorded = _group_record([waiting.hold for waiting in group])
        finally:
            self._lead_hand_on()  # the next group's commit overlaps this one's answers
            if isinstance(recorded, HoldVerdict):
                for waiting in group:
                    waiting.verdict = recorded
            else:
                for waiting, outcome in zip(group, recorded, strict=True):
                    waiting.verdict, waiting.recorded = HoldVerdict.RECORDED, outcome
                holds_confirm([waiting.hold for waiting in group])
            for waiting in group:
                waiting.done.set()

    def _lead_hand_on(self) -> None:
        with self._lock:
            if self._queue:
                successor = self._queue.pop(0)
                successor.verdict = HoldVerdict.LEAD
                successor.done.set()
            else:
                self._leaders -= 1


def _group_record(holds: list[Hold]) -> list[HoldRecorded] | HoldVerdict:
    """Commit the group's orders; or, rolled back, ALONE when a hold was refused or the
    transaction failed, UNAVAILABLE when PostgreSQL could not be reached (each purchase
    trying again alone would only double the time its shopper waits for the 503)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            recorded = orders_insert_holding_units(cursor, holds)
            if not all(map(hold_recorded_whole, holds, recorded)):
                raise _GroupRefused
    except _GroupRefused:
        return HoldVerdict.ALONE
    except Exception as exc:
        if _unreachable(exc):
            logger.warning("a group of %d holds: PostgreSQL unreachable: %s", len(holds), exc)
            return HoldVerdict.UNAVAILABLE
        logger.info("a group of %d holds failed; each is recorded alone: %s", len(holds), exc)
        return HoldVerdict.ALONE
    return recorded


def _unreachable(exc: Exception) -> bool:
    """No connection to be had (pool timeout, refused, cut): an OperationalError or
    InterfaceError without an SQLSTATE, or one of class 08 (connection exception)."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    sqlstate = getattr(getattr(exc.__cause__, "diag", None), "sqlstate", None)
    return sqlstate is None or sqlstate.startswith("08")


def holds_confirm(holds: list[Hold]) -> None:
    """After the commit, one round trip per sale: forget the holds as in flight and finish
    the admissions they spent. On a Redis error the orphan sweep forgets the holds, and an
    unfinished admission stops counting as active when its token expires."""
    by_sale: dict[str, list[Hold]] = {}
    for hold in holds:
        by_sale.setdefault(hold.sale.id, []).append(hold)
    for sale_id, sale_holds in by_sale.items():
        try:
            try:
                _confirm_pipeline(sale_id, sale_holds, scripts_known=True).execute()
            except NoScriptError:
                # A new or restarted Redis: nothing of the pipeline's scripts ran, and the rest
                # is idempotent, so send it again the usual way (the scripts loaded first).
                _confirm_pipeline(sale_id, sale_holds, scripts_known=False).execute()
        except RedisError as exc:
            logger.warning("could not confirm %d order(s) in Redis: %s", len(sale_holds), exc)


def _confirm_pipeline(sale_id: str, holds: list[Hold], *, scripts_known: bool):
    """The confirm as one pipeline. ``scripts_known``: call the scripts by SHA alone, without
    the SCRIPT EXISTS round trip redis-py makes first for a pipeline carrying scripts (the
    reservation script ran on this Redis a moment ago; a NOSCRIPT reply says otherwise)."""
    keys = sale_keys(sale_id)
    pipe = script_pipeline(keys.inflight)
    redis_scripts.holds_confirm(keys, [hold.order_id for hold in holds], client=pipe)
    for hold in holds:
        if hold.admission_key:
            room_scripts.finish(
                room_keys(sale_id), user_id=hold.user_id, order_id=hold.order_id, client=pipe
            )
    if scripts_known:
        pipe.scripts.clear()
    return pipe


group_commit = GroupCommit()
