"""escalation: clean handoffs between tiers, the return path, and SLA timers that fire once.

`core/` decides (pure), `handlers/` reads a batch of ticket events and stores what the core
decided, `adapters/` holds PostgreSQL (ticket state, SLA timers) and the timer loop.
See docs/architecture/escalation.md.
"""
