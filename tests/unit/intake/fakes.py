"""An in-memory store with the same contract as the PostgreSQL adapter (see the contract tests)."""

import dataclasses
from contextlib import asynccontextmanager


class InMemoryStore:
    def __init__(self):
        self.tickets, self.commands, self.outbox = {}, {}, []
        self.waiting, self.seq = {}, 0  # seq -> Waiting

    @asynccontextmanager
    async def transaction(self):
        tx = _Tx(self)
        yield tx
        # commit only when the block finished without error
        self.tickets.update(tx.tickets)
        self.commands.update(tx.commands)
        self.outbox.extend(tx.outbox)
        for seq in tx.parking.done if tx.parking else ():
            self.waiting.pop(seq, None)
        for parked in tx.parking.add if tx.parking else ():
            if all(w.command_id != parked.command_id for w in self.waiting.values()):
                self.seq += 1
                self.waiting[self.seq] = dataclasses.replace(parked, seq=self.seq)


class _Tx:
    def __init__(self, store):
        self.store, self.tickets, self.commands, self.outbox = store, {}, {}, []
        self.parking = None

    async def lock(self, ticket_ids, command_ids):
        pass

    async def load(self, ticket_ids, command_ids):
        return (
            {t: self.store.tickets[t] for t in ticket_ids if t in self.store.tickets},
            {c: self.store.commands[c] for c in command_ids if c in self.store.commands},
        )

    async def waiting(self, ticket_ids):
        return [w for _, w in sorted(self.store.waiting.items()) if w.ticket_id in ticket_ids]

    async def save(self, tickets, commands, outbox, parking=None):
        self.parking = parking
        # only a redriven dead letter may replace a remembered outcome (service.process invariant 4)
        duplicate = {
            c for c in set(commands) & set(self.store.commands) if self.store.commands[c].event_type != "dead_letter"
        }
        assert not duplicate, f"command stored twice: {duplicate}"
        self.tickets.update({t.ticket_id: t for t in tickets})
        self.commands.update(commands)
        self.outbox.extend(outbox)
