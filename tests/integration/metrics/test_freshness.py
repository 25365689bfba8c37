"""KPIs are refreshed by change (services/metrics/main.py, shared.periodic invariant 3): a
committed batch shows in `/v1/kpis` soon, although the refresh interval is five minutes."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from tests.integration.metrics.conftest import fresh_kpis, running_metrics
from tests.integration.metrics.test_oracle import scripted


async def test_committed_events_show_in_the_kpis_without_waiting_for_the_interval(private, producer, unique):
    events, tickets = scripted(datetime.now(UTC), unique)
    async with running_metrics(private.env(METRICS_REFRESH_INTERVAL_S="300")) as (app, client):
        started = (await client.get("/v1/kpis")).json()  # the refresh at start: nothing yet
        assert started["windows"]["all"]["resolved_tickets"] == 0
        await private.publish(producer, events)
        await private.consumed()
        deadline = time.monotonic() + 30  # the interval would be 300 s
        while (served := (await client.get("/v1/kpis")).json())["windows"]["all"]["resolved_tickets"] == 0:
            assert time.monotonic() < deadline, "the KPIs were not refreshed after the batches committed"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)  # batches committed after the one seen: at most one refresh gap behind
        served = (await client.get("/v1/kpis")).json()
        assert served["windows"]["all"] == (await fresh_kpis(app, client))["windows"]["all"]
        assert tickets > 0
