"""The store contract on the in-memory fake (the PostgreSQL run: tests/integration/router/)."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest

from tests.unit.router.fakes import FakeDatabase, FakeStore
from tests.unit.router.store_contract import StoreContract


class FakeEnv:
    def __init__(self) -> None:
        self.db = FakeDatabase()

    @asynccontextmanager
    async def transaction(self):
        yield FakeStore(self.db)

    async def sync_roster(self, charter) -> None:
        self.db.sync_roster(charter)


@pytest.fixture
def env():
    return FakeEnv()


class TestFakeStore(StoreContract):
    pass
