"""The end-of-session search for secrets in logs (tests/log_secrets.py) finds a planted one."""

import os

from tests.log_secrets import configured_secrets, leaks, session_logs

KEY_LINE = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"


def secrets_dir(tmp_path):
    secrets = tmp_path / "secrets"
    (secrets / "compose").mkdir(parents=True)
    (secrets / "kafka-router.password").write_text("0f1e2d3c4b5a69788796a5b4c3d2e1f0\n")
    (secrets / "compose" / "postgres.password").write_text("abcdef0123456789\n")
    (secrets / "postgres.key").write_text(f"-----BEGIN PRIVATE KEY-----\n{KEY_LINE}\n-----END PRIVATE KEY-----\n")
    (secrets / "helpdesks.env").write_text(
        "# development only\nLADDER_ZENDESK_SECRET=5e1ec7ed5e1ec7ed5e1ec7ed\n"
        "KAFKA_SASL_PASSWORD_FILE=/x/y.password\nLADDER_KAFKA_SECRETS=/x/secrets\n"
    )
    (secrets / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nPUBLICPUBLICPUBLIC\n-----END CERTIFICATE-----\n")
    return secrets


def test_every_configured_secret_is_searched_for(tmp_path):
    environ = {"DATABASE_URL": "postgresql://ladder_router:pw-from-the-url@db/ladder", "KAFKA_SASL_PASSWORD": "short"}
    found = configured_secrets(secrets_dir(tmp_path), environ, ["it-helpdesk-key"])
    assert set(found.values()) == {
        "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "abcdef0123456789",
        KEY_LINE,
        "5e1ec7ed5e1ec7ed5e1ec7ed",
        "pw-from-the-url",
        "it-helpdesk-key",
    }  # not the certificate (public), nor a secret too short to search for


def test_a_secret_in_a_log_is_found_and_named_by_origin(tmp_path):
    secrets = configured_secrets(secrets_dir(tmp_path), {}, ["it-helpdesk-key"])
    clean, leaky = tmp_path / "intake.log", tmp_path / "router-x.log"
    clean.write_text('{"message": "ready", "password": "***"}\n')
    leaky.write_text('{"message": "login", "detail": "Bearer it-helpdesk-key"}\n' + KEY_LINE)
    assert leaks(secrets, [clean, leaky]) == [f"{leaky}: postgres.key:1", f"{leaky}: API key 1"]
    assert not any("it-helpdesk-key" in leak for leak in leaks(secrets, [leaky]))


def test_only_logs_written_during_the_session_are_searched(tmp_path):
    old, new, process = tmp_path / "old.log", tmp_path / "kafka.log", tmp_path / "p.log"
    for path in (old, new, process):
        path.write_text("x")
    os.utime(old, (1000, 1000))
    assert set(session_logs(tmp_path, since=2000, process_logs=[process])) == {new, process}
