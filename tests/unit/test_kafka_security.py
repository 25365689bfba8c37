"""Kafka client security from the environment: every rule, the client options it gives
aiokafka and FastStream, and the password kept out of reprs and errors."""

from __future__ import annotations

import ssl
import subprocess

import pytest
from faststream.kafka.security import parse_security

from shared.kafka import broker_security, client_options
from shared.settings import ConfigError, KafkaSecurity, LadderSettings, load

SECRET = "s3cr3t-do-not-print"
VARIABLES = (
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SASL_PASSWORD_FILE",
    "KAFKA_SSL_CA_FILE",
    "KAFKA_SSL_CERT_FILE",
    "KAFKA_SSL_KEY_FILE",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A self-signed CA and a client certificate signed by it (openssl, as the scripts use)."""
    where = tmp_path_factory.mktemp("pki")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=where, check=True, capture_output=True)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=ca",
        "-keyout", "ca.key", "-out", "ca.crt",
    )  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=client", "-keyout", "client.key", "-out", "c.csr")
    openssl(
        "x509", "-req", "-in", "c.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
        "-out", "client.crt",
    )  # fmt: skip
    return where


def env(monkeypatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def refused(monkeypatch, **values: str) -> str:
    env(monkeypatch, **values)
    with pytest.raises(ConfigError) as caught:
        load(LadderSettings)
    message = str(caught.value)
    assert "\n" not in message
    assert SECRET not in message
    return message


def test_plaintext_is_the_default_and_adds_nothing():
    security = load(KafkaSecurity)
    assert security.kafka_security_protocol == "PLAINTEXT"
    assert client_options(security) == {}
    assert broker_security(security) is None


def test_sasl_ssl_with_scram_gives_every_client_the_same_login(monkeypatch, pki):
    env(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="sasl_ssl",
        KAFKA_SASL_MECHANISM="scram-sha-512",
        KAFKA_SASL_USERNAME="router",
        KAFKA_SASL_PASSWORD=SECRET,
        KAFKA_SSL_CA_FILE=str(pki / "ca.crt"),
    )
    security = load(LadderSettings)
    options = client_options(security)
    assert {k: v for k, v in options.items() if k != "ssl_context"} == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "router",
        "sasl_plain_password": SECRET,
    }
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert [ca["subject"] for ca in context.get_ca_certs()] == [((("commonName", "ca"),),)]
    assert same_options(parse_security(broker_security(security)), options)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_faststream_gets_what_aiokafka_gets(monkeypatch, mechanism):
    env(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM=mechanism,
        KAFKA_SASL_USERNAME="intake",
        KAFKA_SASL_PASSWORD=SECRET,
    )
    security = load(KafkaSecurity)
    assert same_options(parse_security(broker_security(security)), client_options(security))
    assert client_options(security)["sasl_mechanism"] == mechanism


def test_scram_without_tls_is_allowed(monkeypatch):
    env(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
        KAFKA_SASL_USERNAME="u",
        KAFKA_SASL_PASSWORD=SECRET,
    )
    security = load(KafkaSecurity)
    options = client_options(security)
    assert options["security_protocol"] == "SASL_PLAINTEXT" and "ssl_context" not in options
    assert same_options(parse_security(broker_security(security)), options)


def test_mutual_tls_loads_the_client_certificate(monkeypatch, pki):
    env(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_CA_FILE=str(pki / "ca.crt"),
        KAFKA_SSL_CERT_FILE=str(pki / "client.crt"),
        KAFKA_SSL_KEY_FILE=str(pki / "client.key"),
    )
    security = load(KafkaSecurity)
    options = client_options(security)
    assert options["security_protocol"] == "SSL" and "sasl_mechanism" not in options
    assert same_options(parse_security(broker_security(security)), options)


def test_ssl_without_a_ca_file_trusts_the_system_store(monkeypatch):
    env(monkeypatch, KAFKA_SECURITY_PROTOCOL="SSL")
    context = client_options(load(KafkaSecurity))["ssl_context"]
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_password_file_is_read_and_its_newline_dropped(monkeypatch, tmp_path):
    (tmp_path / "password").write_text(SECRET + "\n")
    env(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME="metrics",
        KAFKA_SASL_PASSWORD_FILE=str(tmp_path / "password"),
    )
    assert client_options(load(KafkaSecurity))["sasl_plain_password"] == SECRET


def test_the_password_never_shows_in_a_repr(monkeypatch):
    env(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME="u",
        KAFKA_SASL_PASSWORD=SECRET,
    )
    settings = load(LadderSettings)
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert SECRET not in settings.model_dump_json()


SASL_SSL = {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}
SASL_PLAINTEXT = {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}
LOGIN = {"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": SECRET}


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({**SASL_SSL, **LOGIN, "KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
        ({**SASL_SSL, "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": SECRET}, "KAFKA_SASL_MECHANISM"),
        ({**SASL_SSL, "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_PASSWORD": SECRET}, "KAFKA_SASL_USERNAME"),
        ({**SASL_SSL, "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "u"}, "KAFKA_SASL_PASSWORD"),
        ({**SASL_PLAINTEXT, **LOGIN, "KAFKA_SASL_MECHANISM": "PLAIN"}, "KAFKA_SASL_MECHANISM"),
        ({"KAFKA_SASL_PASSWORD": SECRET}, "KAFKA_SASL_PASSWORD"),
        ({"KAFKA_SASL_USERNAME": "u"}, "KAFKA_SASL_USERNAME"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SASL_MECHANISM": "PLAIN"}, "KAFKA_SASL_MECHANISM"),
        ({"KAFKA_SSL_CA_FILE": "{pki}/ca.crt"}, "KAFKA_SSL_CA_FILE"),
        ({**SASL_PLAINTEXT, **LOGIN, "KAFKA_SSL_CA_FILE": "{pki}/ca.crt"}, "KAFKA_SSL_CA_FILE"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": "{pki}/missing.crt"}, "KAFKA_SSL_CA_FILE"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEY_FILE": "{pki}/client.key"}, "KAFKA_SSL_KEY_FILE"),
        ({**SASL_SSL, **LOGIN, "KAFKA_SASL_PASSWORD_FILE": "{pki}/ca.key"}, "KAFKA_SASL_PASSWORD_FILE"),
        (
            {**SASL_SSL, **LOGIN, "KAFKA_SASL_PASSWORD": "", "KAFKA_SASL_PASSWORD_FILE": "{pki}/none"},
            "KAFKA_SASL_PASSWORD_FILE",
        ),
        (
            {**SASL_SSL, **LOGIN, "KAFKA_SASL_PASSWORD": "", "KAFKA_SASL_PASSWORD_FILE": "{pki}/empty"},
            "KAFKA_SASL_PASSWORD_FILE",
        ),
    ],
)
def test_an_impossible_combination_names_the_variable(monkeypatch, pki, values, variable):
    (pki / "empty").write_text("\n")
    values = {name: value.format(pki=pki) for name, value in values.items() if value}
    message = refused(monkeypatch, **values)
    assert message.startswith(f"invalid environment variable {variable}: "), message


def test_an_empty_password_counts_as_none(monkeypatch):
    message = refused(monkeypatch, **SASL_SSL, **{**LOGIN, "KAFKA_SASL_PASSWORD": ""})
    assert message.startswith("invalid environment variable KAFKA_SASL_PASSWORD: required")


def same_options(faststream: dict, aiokafka: dict) -> bool:
    """The same options, but for the TLS context's identity (each call makes its own), and
    FastStream's explicit `ssl_context=None` without TLS."""

    def plain(options: dict) -> dict:
        return {k: type(v) if k == "ssl_context" else v for k, v in options.items() if v is not None}

    return plain(faststream) == plain(aiokafka)
