"""escalation as a service: health, readiness with its timer loop, its metrics, and a
refusal to start on an invalid charter that names the offending entry."""

import os
import subprocess
import sys

from tests.processes import ROOT


async def test_health_readiness_and_metrics(escalation):
    assert (await escalation.client.get("/healthz")).json() == {"status": "alive"}
    ready = await escalation.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["sla_timers"] is True
    metrics = (await escalation.client.get("/metrics")).text
    for name in (
        "support_escalation_handoffs_total",
        "support_escalation_sla_timers_fired_total",
        "support_escalation_sla_timers_pending",
        "support_escalation_sla_timer_overdue_seconds",
        "support_escalation_sla_timer_lag_seconds",
        "support_outbox_relay_leader",
    ):
        assert f"# TYPE {name}" in metrics, name
    assert "ticket_id" not in metrics


def test_an_invalid_charter_stops_it_at_once_naming_the_entry(platform, tmp_path):
    charter = tmp_path / "charter.yaml"
    text = (ROOT / "deploy" / "charter" / "default.yaml").read_text()
    charter.write_text(text.replace("P1: {first_response: 15m, time_in_tier: 1h}", "P1: {first_response: soon}"))
    result = subprocess.run(
        [sys.executable, "-m", "services.escalation"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LADDER_CHARTER": str(charter), "ESCALATION_PORT": "1"},
    )
    assert result.returncode != 0
    assert "tiers.L1.sla.P1.first_response: expected a duration" in result.stderr
    assert "tiers.L1.sla.P1.time_in_tier: Field required" in result.stderr
