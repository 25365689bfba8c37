"""Three kinds of failure, each with its own answer (docs/architecture/delivery.md, "Failures").

* *Transient* (broker or database unreachable, a lock conflict PostgreSQL asks us to
  retry): heals by waiting. The work is retried with exponential pauses, then the batch is
  handed back to Kafka (nack) and redelivered.
* *Systemic*: the service cannot make progress at all (permission denied, a missing table,
  column or schema, a read-only database, failed authentication; or any error that every
  record of a batch fails with alike, such as a bug after a deploy). Retrying a record
  cannot help and dead-lettering would lose the service's state: the part stalls (pauses,
  commits nothing, backs off up to a cap, reports not ready naming the cause, logs once per
  step) and resumes by itself once healed. `Outage` is that answer's bookkeeping.
* *Poison*: one record fails and its neighbours do not: it is isolated and dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TypeVar

import asyncpg
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    TopicAuthorizationFailedError,
)
from prometheus_client import Gauge

log = logging.getLogger(__name__)
T = TypeVar("T")

# SQLSTATE classes that heal by waiting: connection exceptions, transaction rollback
# (serialization failure, deadlock), insufficient resources, operator intervention
# (admin shutdown, cannot connect now), system errors.
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
# SQLSTATEs no record can get past: invalid authorization (28), read-only transaction (25006),
# unknown database (3D) or schema (3F), syntax error or access rule violation (42: permission
# denied, undefined table, column or function: the service's SQL, never client data, which
# only ever travels as parameters).
_SYSTEMIC_SQLSTATE_CLASSES = frozenset({"28", "3D", "3F", "42"})
_SYSTEMIC_SQLSTATES = frozenset({"25006"})
_SYSTEMIC_KAFKA_ERRORS = (
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    ClusterAuthorizationFailedError,
)


class Kind(StrEnum):
    TRANSIENT = "transient"
    SYSTEMIC = "systemic"
    POISON = "poison"


class Systemic(Exception):
    """Raised where every record of a batch failed alike: the error is the service's, not a
    record's (`cause` is the safe description of what they failed with)."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


def classify(error: BaseException) -> Kind:
    """What a failure is by its type alone (a record-level failure is `POISON` until its
    batch-mates show otherwise: see `BatchConsumer`)."""
    if isinstance(error, (Systemic, *_SYSTEMIC_KAFKA_ERRORS)):
        return Kind.SYSTEMIC
    if is_transient(error):
        return Kind.TRANSIENT
    sqlstate = str(getattr(error, "sqlstate", "") or "")
    if isinstance(error, asyncpg.PostgresError) and (
        sqlstate in _SYSTEMIC_SQLSTATES or sqlstate[:2] in _SYSTEMIC_SQLSTATE_CLASSES
    ):
        return Kind.SYSTEMIC
    return Kind.POISON


def is_transient(error: BaseException) -> bool:
    if isinstance(
        error,
        (
            OSError,
            asyncio.TimeoutError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,  # the driver's own state broke, e.g. a connection lost mid-protocol
            KafkaConnectionError,
            KafkaTimeoutError,
        ),
    ):
        return True
    if isinstance(error, asyncpg.PostgresError):
        return str(getattr(error, "sqlstate", "") or "")[:2] in _TRANSIENT_SQLSTATE_CLASSES
    if isinstance(error, KafkaError):
        return bool(getattr(error, "retriable", False))
    return False


def describe(error: BaseException) -> str:
    """A failure as a reason safe to log and dead-letter: its class and SQLSTATE, never its
    message (PostgreSQL's messages quote the offending values, i.e. client data)."""
    if isinstance(error, Systemic):
        return error.cause
    sqlstate = getattr(error, "sqlstate", None)
    return f"{type(error).__name__} ({sqlstate})" if sqlstate else type(error).__name__


async def retrying(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    attempts: int = 6,
    first_pause: float = 0.2,
    max_pause: float = 5.0,
) -> T:
    """Run `operation`, retrying transient failures with exponential pauses; re-raise the
    last one (and any other failure at once)."""
    pause = first_pause
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except Exception as error:
            if attempt == attempts or not is_transient(error):
                raise
            log.warning(
                "transient failure, retrying",
                extra={"operation": what, "attempt": attempt, "error": describe(error), "pause_s": pause},
            )
            await asyncio.sleep(pause)
            pause = min(pause * 2, max_pause)
    raise AssertionError("unreachable")


class Outage:
    """One part of a service (a consumer, a periodic loop) that cannot make progress.

    Invariants (tests: tests/unit/kit/test_pure_parts.py, tests/integration/kit/test_faults.py):
    1. Each failure after the current pause elapsed is one backoff step: the pause doubles
       from `first_pause_s` up to `max_pause_s`, and the step is logged once (a failure
       within the pause, e.g. another consumer-group member's, shares the step, unlogged).
    2. `ready()` names the cause at once for a systemic failure, and after
       `unready_after_s` of failing for a transient one (a blip is not an outage).
    3. `healed()` ends it: one log line, the gauge back to 0, ready again.
    """

    def __init__(
        self,
        part: str,
        stalled: Gauge,
        *,
        first_pause_s: float = 1.0,
        max_pause_s: float = 60.0,
        unready_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.part = part
        self._gauge = stalled.labels(part)
        self._gauge.set(0)
        self._first, self._max, self._unready_after = first_pause_s, max_pause_s, unready_after_s
        self._clock = clock
        self.cause: str | None = None
        self.kind: Kind | None = None
        self.steps = 0
        self._since = 0.0
        self._pause = 0.0
        self._until = 0.0

    def failed(self, error: BaseException, kind: Kind | None = None) -> float:
        """Record a failure; the pause to wait before trying again."""
        now = self._clock()
        kind = kind or classify(error)
        if self.cause is None:
            self._since, self._pause = now, 0.0
        self.cause, self.kind = describe(error), kind
        if now < self._until:  # within the current step
            return self._until - now
        self.steps += 1
        self._pause = min(self._max, self._first if self._pause == 0 else self._pause * 2)
        self._until = now + self._pause
        self._gauge.set(1)
        log.warning(
            f"{self.part} cannot make progress, pausing",
            extra={
                "part": self.part,
                "kind": kind.value,
                "error": self.cause,
                "step": self.steps,
                "pause_s": self._pause,
                "failing_s": round(now - self._since, 1),
            },
        )
        return self._pause

    def pause_left(self) -> float:
        return max(self._until - self._clock(), 0.0)

    def healed(self) -> None:
        if self.cause is None:
            return
        log.warning(
            f"{self.part} resumed",
            extra={"part": self.part, "steps": self.steps, "failing_s": round(self._clock() - self._since, 1)},
        )
        self.cause = self.kind = None
        self.steps, self._pause, self._until = 0, 0.0, 0.0
        self._gauge.set(0)

    def ready(self) -> bool | str:
        """True, or why not."""
        if self.cause is None:
            return True
        if self.kind is Kind.SYSTEMIC or self._clock() - self._since >= self._unready_after:
            return f"{self.kind}: {self.cause}"
        return True
