"""Topic names of the design. One ordered stream of truth, one inbound, one for rejects."""

TICKET_EVENTS = "support.ticket-events"
TICKET_COMMANDS = "support.ticket-commands"
DEAD_LETTER = "support.dead-letter"

ALL = (TICKET_EVENTS, TICKET_COMMANDS, DEAD_LETTER)
