"""Topic names of the design. One ordered stream of truth, one inbound, one for rejects.

A deployment may prefix all three (`LADDER_TOPIC_PREFIX`, e.g. for an isolated test or
demo run on a shared broker); services take their names from `Topics`, never hard-coded."""

from __future__ import annotations

from dataclasses import dataclass

TICKET_EVENTS = "support.ticket-events"
TICKET_COMMANDS = "support.ticket-commands"
DEAD_LETTER = "support.dead-letter"

ALL = (TICKET_EVENTS, TICKET_COMMANDS, DEAD_LETTER)


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
