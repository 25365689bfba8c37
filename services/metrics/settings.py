"""metrics' configuration (environment variables, safe local defaults)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import SchemaName, ServiceSettings


class MetricsSettings(ServiceSettings):
    """`METRICS_*` variables (and the shared ones: KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL, ...)."""

    model_config = SettingsConfigDict(env_prefix="METRICS_", case_sensitive=False, extra="ignore")

    port: int = Field(8004, ge=1, le=65535)
    consumer_group: str = Field("ladder-metrics", min_length=1, max_length=200)
    schema_name: SchemaName = "metrics"
    # KPIs are recomputed from PostgreSQL this often (and at start); scrapes read the result.
    refresh_interval_s: float = Field(5.0, gt=0, le=300)
