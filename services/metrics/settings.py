"""metrics' configuration (environment variables, safe local defaults)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from shared.settings import SchemaName, ServiceSettings


class MetricsSettings(ServiceSettings):
    """`METRICS_*` variables (and the shared ones: KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL, ...)."""

    model_config = SettingsConfigDict(env_prefix="METRICS_", case_sensitive=False, extra="ignore")

    port: int = Field(8004, ge=1, le=65535)
    consumer_group: str = Field("ladder-metrics", min_length=1, max_length=200)
    schema_name: SchemaName = "metrics"
    # KPIs are recomputed from PostgreSQL at start, soon after each committed batch, and at
    # least this often (windows move with time); scrapes read the result.
    refresh_interval_s: float = Field(5.0, gt=0, le=300)
    # The shortest time between two refreshes driven by change; longer while refreshes are
    # slow, so that at most a tenth of the time goes to refreshing (services/metrics/main.py).
    refresh_gap_s: float = Field(0.2, ge=0, le=300)
    # The read API's keys (action `read`): the same key file as intake's unless told otherwise.
    # Without keys, every per-ticket read is refused (401); aggregates stay public.
    api_keys_file: Path | None = Field(
        None, validation_alias=AliasChoices("METRICS_API_KEYS_FILE", "INTAKE_API_KEYS_FILE")
    )
    api_keys: str | None = Field(None, validation_alias=AliasChoices("METRICS_API_KEYS", "INTAKE_API_KEYS"))
    charter: Path | None = Field(None, validation_alias="LADDER_CHARTER")  # default: deploy/charter/default.yaml
