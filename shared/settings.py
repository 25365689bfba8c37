"""Configuration from the environment. A bad value stops the service with one line naming
the variable (`ConfigError`), never a traceback."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.topics import Topics

_HOST_PORT = re.compile(r"^[A-Za-z0-9._-]+:\d{1,5}$")
# A service's PostgreSQL schema (<S>_SCHEMA_NAME): an unquoted identifier, so SQL may name it as is.
SchemaName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]


class StartupError(SystemExit):
    """Raised at start-up; its text is the one line an operator sees (and names the variable)."""


class ConfigError(StartupError):
    """An environment variable has a bad value."""


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


class KafkaSecurity(BaseSettings):
    """How every Kafka client of Ladder connects and logs in (`shared.kafka.client_options`
    turns it into client arguments). Rules, each failing with one line naming the variable:
    SASL_* needs a mechanism, a user and a password (or a password file); PLAINTEXT and SSL
    take none of them; PLAIN is refused without TLS (it sends the password as is); TLS files
    only with SSL or SASL_SSL, must be readable, and a key goes with a certificate. The
    password is a `SecretStr`: it never shows in a repr, a log line or an error."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    kafka_security_protocol: SecurityProtocol = Field("PLAINTEXT", validation_alias="KAFKA_SECURITY_PROTOCOL")
    kafka_sasl_mechanism: SaslMechanism | None = Field(None, validation_alias="KAFKA_SASL_MECHANISM")
    kafka_sasl_username: str | None = Field(None, validation_alias="KAFKA_SASL_USERNAME", min_length=1)
    kafka_sasl_password: SecretStr | None = Field(None, validation_alias="KAFKA_SASL_PASSWORD")
    kafka_sasl_password_file: Path | None = Field(None, validation_alias="KAFKA_SASL_PASSWORD_FILE")
    kafka_ssl_ca_file: Path | None = Field(None, validation_alias="KAFKA_SSL_CA_FILE")
    kafka_ssl_cert_file: Path | None = Field(None, validation_alias="KAFKA_SSL_CERT_FILE")
    kafka_ssl_key_file: Path | None = Field(None, validation_alias="KAFKA_SSL_KEY_FILE")

    @field_validator(
        "kafka_sasl_mechanism",
        "kafka_sasl_username",
        "kafka_sasl_password",
        "kafka_sasl_password_file",
        "kafka_ssl_ca_file",
        "kafka_ssl_cert_file",
        "kafka_ssl_key_file",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("kafka_sasl_password_file", "kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no readable file at {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecurity:
        problem = kafka_security_problem(self)
        if problem is not None:
            raise ValueError(problem)
        if self.kafka_sasl_password_file is not None:
            try:
                secret = self.kafka_sasl_password_file.read_text().rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as error:
                raise ValueError(f"KAFKA_SASL_PASSWORD_FILE: cannot read it ({type(error).__name__})") from None
            if not secret:
                raise ValueError("KAFKA_SASL_PASSWORD_FILE: the file is empty")
            self.kafka_sasl_password = SecretStr(secret)
        return self

    @property
    def kafka_tls(self) -> bool:
        return self.kafka_security_protocol in {"SSL", "SASL_SSL"}

    @property
    def kafka_sasl(self) -> bool:
        return self.kafka_security_protocol in {"SASL_PLAINTEXT", "SASL_SSL"}


def kafka_security_problem(security: KafkaSecurity) -> str | None:
    """The first impossible combination, as `VARIABLE: why`, or None. Pure."""
    protocol = security.kafka_security_protocol
    given = f"KAFKA_SECURITY_PROTOCOL={protocol}"
    if security.kafka_sasl_password is not None and security.kafka_sasl_password_file is not None:
        return "KAFKA_SASL_PASSWORD_FILE: set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both"
    if security.kafka_sasl:
        if security.kafka_sasl_mechanism is None:
            return f"KAFKA_SASL_MECHANISM: required with {given} (SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN)"
        if security.kafka_sasl_username is None:
            return f"KAFKA_SASL_USERNAME: required with {given}"
        if security.kafka_sasl_password is None and security.kafka_sasl_password_file is None:
            return f"KAFKA_SASL_PASSWORD: required with {given} (or KAFKA_SASL_PASSWORD_FILE)"
        if security.kafka_sasl_mechanism == "PLAIN" and not security.kafka_tls:
            return "KAFKA_SASL_MECHANISM: PLAIN sends the password in clear; use KAFKA_SECURITY_PROTOCOL=SASL_SSL"
    else:
        for variable, value in (
            ("KAFKA_SASL_MECHANISM", security.kafka_sasl_mechanism),
            ("KAFKA_SASL_USERNAME", security.kafka_sasl_username),
            ("KAFKA_SASL_PASSWORD", security.kafka_sasl_password),
            ("KAFKA_SASL_PASSWORD_FILE", security.kafka_sasl_password_file),
        ):
            if value is not None:
                return f"{variable}: set, but {given} does not log in (use SASL_SSL or SASL_PLAINTEXT)"
    if not security.kafka_tls:
        for variable, value in (
            ("KAFKA_SSL_CA_FILE", security.kafka_ssl_ca_file),
            ("KAFKA_SSL_CERT_FILE", security.kafka_ssl_cert_file),
            ("KAFKA_SSL_KEY_FILE", security.kafka_ssl_key_file),
        ):
            if value is not None:
                return f"{variable}: set, but {given} does not use TLS (use SSL or SASL_SSL)"
    if security.kafka_ssl_key_file is not None and security.kafka_ssl_cert_file is None:
        return "KAFKA_SSL_KEY_FILE: set without KAFKA_SSL_CERT_FILE (a client key goes with its certificate)"
    return None


# The local platform's development-only database login (deploy/local/postgres.sh, compose);
# refused when LADDER_ENV=production.
DEVELOPMENT_DATABASE_PASSWORD = "ladder"
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class LadderSettings(KafkaSecurity):
    """Settings every service shares, under their plain names (services subclass
    `ServiceSettings`, whose own fields take the service's prefix).

    `DATABASE_PASSWORD_FILE` (a mounted secret) supplies the password of a `DATABASE_URL`
    that has none; `sslmode` in the URL is passed to the driver as is (`shared.db`). With
    `LADDER_ENV=production` the development database password is refused."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    ladder_env: Literal["development", "production"] = Field("development", validation_alias="LADDER_ENV")
    kafka_bootstrap_servers: str = Field("localhost:9092", validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    database_url: str = Field("postgresql://ladder:ladder@localhost:5432/ladder", validation_alias="DATABASE_URL")
    database_password_file: Path | None = Field(None, validation_alias="DATABASE_PASSWORD_FILE")
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
        for mode in parse_qs(parts.query).get("sslmode", []):
            if mode not in SSL_MODES:
                raise ValueError(f"sslmode must be one of {', '.join(SSL_MODES)}, got {mode!r}")
        return value

    @field_validator("ladder_env", mode="before")
    @classmethod
    def _env_lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_password_file", mode="before")
    @classmethod
    def _password_file_empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_password_file")
    @classmethod
    def _password_file_readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no readable file at {value}")
        return value

    @model_validator(mode="after")
    def _database_login(self) -> LadderSettings:
        if self.database_password_file is not None:
            if urlsplit(self.database_url).password is not None:
                raise ValueError("DATABASE_PASSWORD_FILE: DATABASE_URL has a password too; give one of them")
            try:
                secret = self.database_password_file.read_text().rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as error:
                raise ValueError(f"DATABASE_PASSWORD_FILE: cannot read it ({type(error).__name__})") from None
            if not secret:
                raise ValueError("DATABASE_PASSWORD_FILE: the file is empty")
            self.database_url = with_password(self.database_url, secret)
        if self.ladder_env == "production" and urlsplit(self.database_url).password == DEVELOPMENT_DATABASE_PASSWORD:
            raise ValueError(
                "DATABASE_URL: the development password is refused with LADDER_ENV=production "
                "(give the role's own, e.g. in DATABASE_PASSWORD_FILE)"
            )
        return self

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
    # Consumer-group members per process. One: on a shared event loop more members meant
    # smaller batches, more transactions and fetches for the same records (bench, 500
    # lifecycles/s, three interleaved pairs against 2 (intake 3): create -> routed p50
    # 508/658/695 -> 365/525/348 ms, CPU 3.6-3.8 -> 3.4-3.5 ms per lifecycle).
    consumers: int = Field(1, ge=1, le=32)
    batch_size: int = Field(2000, ge=1, le=10_000)  # records per transaction (bench: 500 -> 2000, +24% lifecycles/s)
    # The broker holds a fetch up to fetch_wait_ms for fetch_min_bytes to gather, and answers
    # at the first byte by default: a long wait adds no latency, and an idle consumer costs
    # the broker one fetch per wait (measured: four idle services at 50 ms kept the broker at
    # 0.22 of a core, at 500 ms 0.04). Min bytes 64 KiB with a 20 ms wait made every hop wait
    # (bench, 20 lifecycles/s). The member itself looks for fetched records every poll_ms
    # when idle (FastStream waits as long again after an empty look).
    fetch_wait_ms: int = Field(500, ge=1, le=10_000)
    fetch_min_bytes: int = Field(1, ge=1, le=16 * 1024 * 1024)
    poll_ms: int = Field(50, ge=1, le=1000)
    relay: bool = True  # the outbox relay; one per service publishes, other replicas stand by
    db_pool_size: int = Field(8, ge=2, le=100)
    shutdown_timeout_s: float = Field(20.0, gt=0, le=120)  # SIGTERM to exit, at most
    retention_days: float | None = Field(None, ge=1, le=36500)  # this service's; default LADDER_RETENTION_DAYS
    prune_interval_s: float = Field(3600.0, ge=1, le=86400)  # how often old rows are pruned

    @property
    def retention(self) -> timedelta:
        return timedelta(days=self.retention_days or self.default_retention_days)


S = TypeVar("S", bound=KafkaSecurity)


def load(cls: type[S], **overrides: Any) -> S:
    """Read `cls` from the environment or raise `ConfigError` naming the first bad variable."""
    try:
        return cls(**overrides)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        message = first["msg"].removeprefix("Value error, ")
        if not first["loc"]:  # a rule across variables: its message starts with the variable
            raise ConfigError(f"invalid environment variable {message}") from None
        raise ConfigError(
            f"invalid environment variable {variable_name(cls, str(first['loc'][0]))}: {message}"
        ) from None


def variable_name(cls: type[KafkaSecurity], field: str) -> str:
    """The environment variable behind `field` of `cls` (errors name aliased fields by
    their alias, the others by name: those take the prefix)."""
    if field not in cls.model_fields:
        return field.upper()
    return f"{cls.model_config.get('env_prefix', '')}{field}".upper()


def with_password(url: str, password: str) -> str:
    """`url` (which has a user and no password) with `password`, quoted for the URL."""
    parts = urlsplit(url)
    user, host = parts.netloc.rsplit("@", 1) if "@" in parts.netloc else ("", parts.netloc)
    if not user:
        raise ValueError("DATABASE_PASSWORD_FILE: DATABASE_URL names no user to log in as")
    return parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}").geturl()


def redact_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
