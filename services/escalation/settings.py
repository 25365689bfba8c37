"""escalation's configuration (environment variables, safe local defaults)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import SchemaName, ServiceSettings


class EscalationSettings(ServiceSettings):
    """`ESCALATION_*` variables, plus `LADDER_CHARTER` and the shared ones."""

    model_config = SettingsConfigDict(env_prefix="ESCALATION_", case_sensitive=False, extra="ignore")

    port: int = Field(8003, ge=1, le=65535)
    consumer_group: str = Field("ladder-escalation", min_length=1, max_length=200)
    schema_name: SchemaName = "escalation"
    charter: Path | None = Field(None, validation_alias="LADDER_CHARTER")  # default: deploy/charter/default.yaml
    # The timer loop sleeps until the earliest deadline, at most this long (a replica's
    # notification lost while its listening connection was down is seen within it).
    timer_poll_s: float = Field(5.0, gt=0, le=60)
    timer_batch: int = Field(500, ge=1, le=10_000)  # timers settled per firing transaction
