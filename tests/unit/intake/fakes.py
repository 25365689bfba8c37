"""An in-memory store with the same contract as the PostgreSQL adapter (see the contract tests)."""

from contextlib import asynccontextmanager


class InMemoryStore:
    def __init__(self):
        self.tickets, self.commands, self.outbox = {}, {}, []

    @asynccontextmanager
    async def transaction(self):
        tx = _Tx(self)
        yield tx
        # commit only when the block finished without error
        self.tickets.update(tx.tickets)
        self.commands.update(tx.commands)
        self.outbox.extend(tx.outbox)


class _Tx:
    def __init__(self, store):
        self.store, self.tickets, self.commands, self.outbox = store, {}, {}, []

    async def lock(self, ticket_ids, command_ids):
        pass

    async def load(self, ticket_ids, command_ids):
        return (
            {t: self.store.tickets[t] for t in ticket_ids if t in self.store.tickets},
            {c: self.store.commands[c] for c in command_ids if c in self.store.commands},
        )

    async def save(self, tickets, commands, outbox):
        # only a redriven dead letter may replace a remembered outcome (service.process invariant 4)
        duplicate = {
            c for c in set(commands) & set(self.store.commands) if self.store.commands[c].event_type != "dead_letter"
        }
        assert not duplicate, f"command stored twice: {duplicate}"
        self.tickets.update({t.ticket_id: t for t in tickets})
        self.commands.update(commands)
        self.outbox.extend(outbox)
