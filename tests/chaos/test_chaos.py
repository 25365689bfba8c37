"""The chaos suite, sized down for `make test`: a few hundred tickets on the three-node
cluster while every kind of fault is injected at least once (each service SIGKILLed and
restarted, PostgreSQL restarted, a broker SIGKILLed and brought back, connections to the
brokers and to the database cut); then the ledger must hold. `make chaos` runs the same
with 100,000 tickets. Starts and stops its own cluster and PostgreSQL (cluster.sh,
postgres.sh on port 15432); never touches the shared broker or database."""

from __future__ import annotations

import json

import pytest

from tests.chaos.faults import CYCLE
from tests.chaos.run import Options, run

pytestmark = pytest.mark.chaos


async def test_nothing_is_lost_doubled_or_stalled_under_every_kind_of_fault():
    report = await run(Options(tickets=300, seed=3, fault_interval_s=4.0, broker_down_s=8.0))
    summary = json.dumps(report.as_dict(), indent=2)[:6000]
    assert set(report.faults) == set(CYCLE), summary  # every kind of fault happened
    ledger = report.ledger
    assert report.finished == report.tickets == ledger.tickets, summary
    assert ledger.accepted > report.tickets, summary  # follow-up commands too, not only creates
    assert not ledger.lost, ledger.lost[:10]
    assert not ledger.doubled, ledger.doubled[:10]
    assert not ledger.unprojected, ledger.unprojected[:10]
    assert not ledger.kpi_differences, ledger.kpi_differences[:20]
    assert not ledger.stalls, ledger.stalls
    assert not ledger.unexpected_dead_letters, ledger.unexpected_dead_letters[:10]
    assert sum(ledger.dead_letters.values()) == 5  # exactly the bad commands sent on purpose
