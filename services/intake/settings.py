"""intake's configuration (environment variables, safe local defaults)."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import SettingsConfigDict

from services.intake.core.auth import KeyRing, KeyRingConfig
from services.intake.core.helpdesks.mapping import Connection, HelpdeskError, load_connections
from shared import signing
from shared.settings import ConfigError, SchemaName, ServiceSettings, StartupError


class IntakeSettings(ServiceSettings):
    """`INTAKE_*` variables (and the shared ones: KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL, ...)."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", case_sensitive=False, extra="ignore")

    port: int = Field(8001, ge=1, le=65535)
    consumer_group: str = Field("ladder-intake", min_length=1, max_length=200)
    schema_name: SchemaName = "intake"
    api_keys_file: Path | None = None  # JSON {"keys": [{"name", "sha256", "actions"}]}
    api_keys: str | None = None  # the same JSON inline (takes precedence over the file)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)  # above the largest valid body, escapes and all
    max_command_bytes: int = Field(64 * 1024, ge=1024)  # a topic record: key, value and headers
    http_batch: int = Field(256, ge=1, le=10_000)
    helpdesks_dir: Path | None = None  # one YAML mapping per connected help desk (docs/helpdesks)
    signature_window_s: float = Field(signing.WINDOW_S, gt=0, le=3600)  # a topic record's signature is this fresh
    rate_per_second: float = Field(1000, gt=0)  # per client, unless its key says otherwise
    burst: int = Field(2000, ge=1)
    http_queue: int = Field(4096, ge=1, le=1_000_000)  # HTTP commands waiting for a batch; more: 503
    unknown_ticket_wait_s: float = Field(60, ge=0, le=3600)  # how long a follow-up waits for its ticket's create


def load_helpdesks(settings: IntakeSettings) -> dict[str, Connection]:
    """The connected help desks, each mapping validated (a bad one stops start-up, naming it)."""
    if settings.helpdesks_dir is None:
        return {}
    if not settings.helpdesks_dir.is_dir():
        raise ConfigError("invalid environment variable INTAKE_HELPDESKS_DIR: not a directory")
    try:
        return load_connections(settings.helpdesks_dir)
    except HelpdeskError as error:
        raise StartupError(f"INTAKE_HELPDESKS_DIR={settings.helpdesks_dir}: {error}") from None


log = logging.getLogger(__name__)

# The SHA-256 of the development keys in deploy/local/api-keys.json (README: ladder-dev-*-key,
# published): refused with LADDER_ENV=production.
DEVELOPMENT_KEY_DIGESTS = frozenset(
    {
        "2a330a7e01b8680dbd6bbbb44890fa3756e583c831adbe24c3c1c8c3bd5fc533",
        "d826ca7af022cb04d6c8246630ab5cc76779fe52806a02f0374059385a026261",
        "2bd857dd889bcb521a6131ea4161f0aef5f298f508ff919051f432673fed1a88",
        "5ba6ce4e34bfcfa0ac0b0b6935c5538853e3f602a77872ec4ea43ebffe073ba4",
    }
)


class KeySource:
    """The key ring in force. `refresh` (every second) reloads the key file when it changed
    (mtime, size or inode: `ladder keys` renames a new file over the old), so keys change
    without a restart; the swap is one assignment, so no request sees half a ring. A file
    that does not load keeps the ring in force (and says why in the log)."""

    def __init__(self, settings: IntakeSettings) -> None:
        self._settings = settings
        self.ring = load_key_ring(settings)
        self._stamp = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        path = self._settings.api_keys_file
        if self._settings.api_keys or path is None:
            return None
        try:
            stat = path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def refresh(self) -> bool:
        stamp = self._stat()
        if stamp is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            ring = load_key_ring(self._settings)
        except ConfigError as error:
            log.error("API key file not reloaded; the keys in force stay", extra={"error": str(error)})
            return False
        self.ring = ring
        log.info("API key file reloaded", extra={"keys": len(ring.keys)})
        return True


def load_key_ring(settings: IntakeSettings) -> KeyRing:
    if settings.api_keys:
        variable, text = "INTAKE_API_KEYS", settings.api_keys
    elif settings.api_keys_file:
        variable = "INTAKE_API_KEYS_FILE"
        try:
            text = settings.api_keys_file.read_text()
        except OSError as error:
            raise ConfigError(f"invalid environment variable {variable}: cannot read ({error.strerror})") from None
    else:
        raise ConfigError(
            "invalid environment variable INTAKE_API_KEYS_FILE: not set (and no INTAKE_API_KEYS); "
            "intake refuses to run without API keys"
        )
    try:
        config = KeyRingConfig.model_validate_json(text)
        if settings.ladder_env == "production" and any(key.sha256 in DEVELOPMENT_KEY_DIGESTS for key in config.keys):
            raise ValueError("a development key (deploy/local/api-keys.json) is refused with LADDER_ENV=production")
        return KeyRing(config, window_s=settings.signature_window_s)
    except (ValidationError, ValueError) as error:
        detail = error.errors(include_url=False, include_input=False)[0] if isinstance(error, ValidationError) else None
        reason = f"{'.'.join(map(str, detail['loc']))}: {detail['msg']}" if detail else str(error)
        raise ConfigError(f"invalid environment variable {variable}: {reason}") from None
