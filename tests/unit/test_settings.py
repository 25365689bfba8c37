"""Settings errors are one line naming the variable."""

import pytest

from shared.settings import ConfigError, LadderSettings, load, redact_url


def test_defaults_are_local(monkeypatch):
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = load(LadderSettings)
    assert settings.kafka_bootstrap_servers == "localhost:9092"
    assert settings.database_url == "postgresql://ladder:ladder@localhost:5432/ladder"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost"),
        ("KAFKA_BOOTSTRAP_SERVERS", ""),
        ("DATABASE_URL", "mysql://x@y/z"),
        ("DATABASE_URL", "postgresql://ladder:secret@localhost:notaport/ladder"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_value_names_the_variable_in_one_line(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load(LadderSettings)
    message = str(caught.value)
    assert message.startswith(f"invalid environment variable {variable}: ")
    assert "\n" not in message
    assert "secret" not in message


def test_redact_url_hides_the_password():
    assert redact_url("postgresql://ladder:pw@db:5432/ladder") == "postgresql://ladder:***@db:5432/ladder"
    assert redact_url("postgresql://db/ladder") == "postgresql://db/ladder"
