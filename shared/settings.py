"""Configuration from the environment. A bad value stops the service with one line naming
the variable (`ConfigError`), never a traceback."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.topics import Topics

_HOST_PORT = re.compile(r"^[A-Za-z0-9._-]+:\d{1,5}$")
# A service's PostgreSQL schema (<S>_SCHEMA_NAME): an unquoted identifier, so SQL may name it as is.
SchemaName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]


class StartupError(SystemExit):
    """Raised at start-up; its text is the one line an operator sees (and names the variable)."""


class ConfigError(StartupError):
    """An environment variable has a bad value."""


class LadderSettings(BaseSettings):
    """Settings every service shares, under their plain names (services subclass
    `ServiceSettings`, whose own fields take the service's prefix)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    kafka_bootstrap_servers: str = Field("localhost:9092", validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    database_url: str = Field("postgresql://ladder:ladder@localhost:5432/ladder", validation_alias="DATABASE_URL")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    startup_timeout_s: float = Field(15.0, validation_alias="STARTUP_TIMEOUT_S", gt=0)
    topic_prefix: str = Field("", validation_alias="LADDER_TOPIC_PREFIX", max_length=100, pattern=r"^[A-Za-z0-9._-]*$")
    # How long dedup rows (inbox, idempotency keys, settled timers, ...) are kept: longer than
    # the commands and dead-letter topics keep records (7 d, 14 d), with a margin.
    default_retention_days: float = Field(30.0, validation_alias="LADDER_RETENTION_DAYS", ge=1, le=36500)

    @property
    def topics(self) -> Topics:
        return Topics.prefixed(self.topic_prefix)

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _servers(cls, value: str) -> str:
        servers = [part.strip() for part in value.split(",") if part.strip()]
        bad = [server for server in servers if not _HOST_PORT.match(server)]
        if not servers or bad:
            raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return ",".join(servers)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        parts = urlsplit(value)
        try:
            _ = parts.port  # raises on a port that is not a number
        except ValueError as error:
            raise ValueError(f"bad port ({error})") from error
        if parts.scheme not in {"postgresql", "postgres"} or not parts.hostname or not parts.path.strip("/"):
            raise ValueError("expected postgresql://user:password@host:port/database")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
        return value.upper()


class ServiceSettings(LadderSettings):
    """What every service process has: its own fields are read from `<PREFIX><FIELD>`
    (a subclass sets `env_prefix`, e.g. "ROUTER_": ROUTER_PORT, ROUTER_CONSUMERS, ...)."""

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    consumer_group: str = Field(min_length=1, max_length=200)
    consumers: int = Field(2, ge=1, le=32)  # consumer-group members per process
    batch_size: int = Field(2000, ge=1, le=10_000)  # records per transaction (bench: 500 -> 2000, +24% lifecycles/s)
    relay: bool = True  # the outbox relay; one per service publishes, other replicas stand by
    db_pool_size: int = Field(8, ge=2, le=100)
    shutdown_timeout_s: float = Field(20.0, gt=0, le=120)  # SIGTERM to exit, at most
    retention_days: float | None = Field(None, ge=1, le=36500)  # this service's; default LADDER_RETENTION_DAYS
    prune_interval_s: float = Field(3600.0, ge=1, le=86400)  # how often old rows are pruned

    @property
    def retention(self) -> timedelta:
        return timedelta(days=self.retention_days or self.default_retention_days)


S = TypeVar("S", bound=LadderSettings)


def load(cls: type[S], **overrides: Any) -> S:
    """Read `cls` from the environment or raise `ConfigError` naming the first bad variable."""
    try:
        return cls(**overrides)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        raise ConfigError(
            f"invalid environment variable {variable_name(cls, str(first['loc'][0]))}: "
            f"{first['msg'].removeprefix('Value error, ')}"
        ) from None


def variable_name(cls: type[LadderSettings], field: str) -> str:
    """The environment variable behind `field` of `cls` (errors name aliased fields by
    their alias, the others by name: those take the prefix)."""
    if field not in cls.model_fields:
        return field.upper()
    return f"{cls.model_config.get('env_prefix', '')}{field}".upper()


def redact_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
