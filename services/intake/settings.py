"""intake's configuration (environment variables, safe local defaults)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from shared.settings import ConfigError, LadderSettings
from services.intake.core.auth import KeyRing, KeyRingConfig


class IntakeSettings(LadderSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    intake_host: str = "127.0.0.1"
    intake_port: int = 8001
    intake_api_keys_file: Path | None = None  # JSON {"keys": [{"name", "sha256", "actions"}]}
    intake_api_keys: str | None = None  # the same JSON inline (takes precedence over the file)
    intake_max_body_bytes: int = 64 * 1024
    intake_max_command_bytes: int = 64 * 1024
    intake_consumer_group: str = "ladder-intake"
    intake_commands_batch: int = 500
    intake_command_consumers: int = 3  # group members per process (the topic has 6 partitions)
    intake_http_batch: int = 256
    intake_relay: bool = True  # off on replicas that only accept commands; one relay per database suffices
    intake_db_pool_size: int = 8
    intake_shutdown_drain_s: float = 10.0


def load_key_ring(settings: IntakeSettings) -> KeyRing:
    if settings.intake_api_keys:
        variable, text = "INTAKE_API_KEYS", settings.intake_api_keys
    elif settings.intake_api_keys_file:
        variable = "INTAKE_API_KEYS_FILE"
        try:
            text = settings.intake_api_keys_file.read_text()
        except OSError as error:
            raise ConfigError(f"invalid environment variable {variable}: cannot read ({error.strerror})") from None
    else:
        raise ConfigError("invalid environment variable INTAKE_API_KEYS_FILE: not set (and no INTAKE_API_KEYS); "
                          "intake refuses to run without API keys")
    try:
        return KeyRing(KeyRingConfig.model_validate_json(text))
    except (ValidationError, ValueError) as error:
        detail = error.errors(include_url=False, include_input=False)[0] if isinstance(error, ValidationError) else None
        reason = f"{'.'.join(map(str, detail['loc']))}: {detail['msg']}" if detail else str(error)
        raise ConfigError(f"invalid environment variable {variable}: {reason}") from None
