"""Topic names of the design. One ordered stream of truth, one inbound, one for rejects.

A deployment may prefix all three (`LADDER_TOPIC_PREFIX`, e.g. for an isolated test or
demo run on a shared broker); services take their names from `Topics`, never hard-coded."""

from __future__ import annotations

from dataclasses import dataclass

TICKET_EVENTS = "support.ticket-events"
TICKET_COMMANDS = "support.ticket-commands"
DEAD_LETTER = "support.dead-letter"

ALL = (TICKET_EVENTS, TICKET_COMMANDS, DEAD_LETTER)

DAY_MS = 24 * 3600 * 1000
# How long each topic keeps records (`retention.ms`; deploy/local/kafka.sh sets the same).
# The events topic is the truth: kept for ever, so any projection rebuilt from it, or a new
# consumer group, is exact (the cost is disk: about 1 KB per event). Commands and dead letters
# are inbound and operational: a week, and two weeks to redrive; both below the services'
# dedup retention (LADDER_RETENTION_DAYS, 30), so no record outlives the row that dedups it.
RETENTION_MS = {TICKET_EVENTS: -1, TICKET_COMMANDS: 7 * DAY_MS, DEAD_LETTER: 14 * DAY_MS}


def retention_ms(topic: str) -> int | None:
    """The retention of a (possibly prefixed) topic of the design; None for any other."""
    for name, retention in RETENTION_MS.items():
        if topic.endswith(name):
            return retention
    return None


@dataclass(frozen=True, slots=True)
class Topics:
    events: str = TICKET_EVENTS
    commands: str = TICKET_COMMANDS
    dead_letter: str = DEAD_LETTER

    @classmethod
    def prefixed(cls, prefix: str) -> Topics:
        return cls(prefix + TICKET_EVENTS, prefix + TICKET_COMMANDS, prefix + DEAD_LETTER)

    @property
    def all(self) -> tuple[str, str, str]:
        return self.events, self.commands, self.dead_letter
