"""Configuration from the environment. A bad value stops the service with one line naming
the variable (`ConfigError`), never a traceback."""

from __future__ import annotations

import re
from typing import TypeVar
from urllib.parse import urlsplit

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_HOST_PORT = re.compile(r"^[A-Za-z0-9._-]+:\d{1,5}$")


class StartupError(SystemExit):
    """Raised at start-up; its text is the one line an operator sees (and names the variable)."""


class ConfigError(StartupError):
    """An environment variable has a bad value."""


class LadderSettings(BaseSettings):
    """Settings every service shares. Services subclass it with their own prefixed fields."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    kafka_bootstrap_servers: str = "localhost:9092"
    database_url: str = "postgresql://ladder:ladder@localhost:5432/ladder"
    log_level: str = "INFO"
    startup_timeout_s: float = 15.0

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
            parts.port
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


S = TypeVar("S", bound=LadderSettings)


def load(cls: type[S]) -> S:
    """Read `cls` from the environment or raise `ConfigError` naming the first bad variable."""
    try:
        return cls()
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        variable = "_".join(str(part) for part in first["loc"]).upper()
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"invalid environment variable {variable}: {message}") from None


def redact_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
