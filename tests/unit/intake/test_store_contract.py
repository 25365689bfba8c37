"""The intake store contract against the in-memory fake."""

import pytest

from tests.contract.intake_store import IntakeStoreContract
from tests.unit.intake.fakes import InMemoryStore


class Probe:
    def __init__(self):
        self.store = InMemoryStore()

    def id(self, name):
        return name

    async def outbox(self):
        return self.store.outbox

    async def remembered(self, command):
        return self.store.commands.get(command)


@pytest.fixture
def probe():
    return Probe()


class TestInMemoryStore(IntakeStoreContract):
    pass
