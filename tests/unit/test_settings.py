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


def test_database_password_file_fills_the_url(monkeypatch, tmp_path):
    secret = tmp_path / "postgres-router.password"
    secret.write_text("s3cr/t@pw\n")
    monkeypatch.setenv("DATABASE_URL", "postgresql://ladder_router@db.example:5432/ladder?sslmode=verify-full")
    monkeypatch.setenv("DATABASE_PASSWORD_FILE", str(secret))
    settings = load(LadderSettings)
    assert (
        settings.database_url == "postgresql://ladder_router:s3cr%2Ft%40pw@db.example:5432/ladder?sslmode=verify-full"
    )
    assert "s3cr" not in redact_url(settings.database_url)


@pytest.mark.parametrize(
    ("url", "content", "expected"),
    [
        ("postgresql://u:pw@db/ladder", "other", "DATABASE_URL has a password too"),
        ("postgresql://u@db/ladder", "", "the file is empty"),
        ("postgresql://db/ladder", "pw", "names no user"),
    ],
)
def test_database_password_file_problems_name_the_variable(monkeypatch, tmp_path, url, content, expected):
    secret = tmp_path / "password"
    secret.write_text(content)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATABASE_PASSWORD_FILE", str(secret))
    with pytest.raises(ConfigError) as caught:
        load(LadderSettings)
    assert str(caught.value).startswith("invalid environment variable DATABASE_PASSWORD_FILE: ")
    assert expected in str(caught.value)
    assert "other" not in str(caught.value)


def test_an_unknown_sslmode_names_database_url(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret@db/ladder?sslmode=verify")
    with pytest.raises(ConfigError) as caught:
        load(LadderSettings)
    assert str(caught.value).startswith("invalid environment variable DATABASE_URL: sslmode must be one of")
    assert "secret" not in str(caught.value)


def test_production_refuses_the_development_database_password(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("LADDER_ENV", "production")
    with pytest.raises(ConfigError) as caught:
        load(LadderSettings)
    assert str(caught.value).startswith("invalid environment variable DATABASE_URL: the development password")
    monkeypatch.setenv("DATABASE_URL", "postgresql://ladder_router:a-real-one@db/ladder?sslmode=verify-full")
    assert load(LadderSettings).ladder_env == "production"
    monkeypatch.setenv("LADDER_ENV", "development")
    monkeypatch.delenv("DATABASE_URL")
    assert load(LadderSettings).database_url.endswith("@localhost:5432/ladder")
