"""Transient or not: the one question every retry, nack and dead letter depends on.

A *transient* failure (broker or database unreachable, a lock conflict PostgreSQL asks us
to retry) heals by waiting: the work is retried with exponential pauses, then the batch is
handed back to Kafka (nack) and redelivered. Anything else (a constraint violation, data
PostgreSQL cannot store, a bug) fails again on every try: such a batch is split until the
record that fails is isolated and dead-lettered, so it can never loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

log = logging.getLogger(__name__)
T = TypeVar("T")

# SQLSTATE classes that heal by waiting: connection exceptions, transaction rollback
# (serialization failure, deadlock), insufficient resources, operator intervention
# (admin shutdown, cannot connect now), system errors.
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})


def is_transient(error: BaseException) -> bool:
    if isinstance(
        error, (OSError, asyncio.TimeoutError, asyncpg.InterfaceError, KafkaConnectionError, KafkaTimeoutError)
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
