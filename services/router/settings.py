"""router's configuration (environment variables, safe local defaults)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import SchemaName, ServiceSettings


class RouterSettings(ServiceSettings):
    """`ROUTER_*` variables, `LADDER_CHARTER`, and the shared ones (KAFKA_BOOTSTRAP_SERVERS, ...)."""

    model_config = SettingsConfigDict(env_prefix="ROUTER_", case_sensitive=False, extra="ignore")

    port: int = Field(8002, ge=1, le=65535)
    consumer_group: str = Field("ladder-router", min_length=1, max_length=200)
    schema_name: SchemaName = "router"
    charter: Path | None = Field(None, validation_alias="LADDER_CHARTER")  # default: deploy/charter/default.yaml
    # How often waiting tickets are checked against the clock (shifts starting, office hours).
    assign_interval_s: float = Field(5.0, gt=0, le=3600)
