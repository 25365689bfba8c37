"""No configured secret in any log: at the end of a session, every log it wrote (var/log/*.log
changed since it began, and each service process's log, tests/processes.py) is searched for
every secret the run was configured with: the files under var/secrets (passwords, each
line of a private key, and the secrets of its `.env` files: the help desks' webhook
secrets), the passwords in the environment, and the API keys the tests and the
local platform use. A hit fails the run, naming the log and the secret's origin, never the
secret. Secrets shorter than MIN_LENGTH (the development database password `ladder`, which
LADDER_ENV=production refuses) would match ordinary words and are not searched for."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

MIN_LENGTH = 8
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|TOKEN|KEY)$", re.IGNORECASE)  # not *_FILE, nor a directory
DEVELOPMENT_API_KEYS = tuple(f"ladder-dev-{client}-key" for client in ("helpdesk", "chatbot", "survey", "lead"))


def configured_secrets(secrets_dir: Path, environ: Mapping[str, str], api_keys: Iterable[str]) -> dict[str, str]:
    """origin -> secret, for every secret the run was configured with."""
    found: dict[str, str] = {}
    if secrets_dir.is_dir():
        for path in sorted(secrets_dir.rglob("*")):
            if path.suffix == ".password" or path.name.endswith(".key"):
                lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
                body = [line for line in lines if line and not line.startswith("-----")]
                for number, line in enumerate(body if path.suffix == ".key" else body[:1]):
                    found[f"{path.name}:{number + 1}"] = line
            elif path.suffix == ".env":
                for line in path.read_text(errors="replace").splitlines():
                    name, sep, value = line.partition("=")
                    if sep and not name.startswith("#") and SECRET_NAME.search(name) and not name.endswith("_FILE"):
                        found[f"{path.name}:{name.strip()}"] = value.strip()
    for variable in ("KAFKA_SASL_PASSWORD", "LADDER_REDRIVE_API_KEY"):
        if environ.get(variable):
            found[variable] = environ[variable]
    for variable in ("DATABASE_URL",):
        password = urlsplit(environ.get(variable, "")).password
        if password:
            found[f"{variable} password"] = password
    for number, key in enumerate(api_keys):
        found[f"API key {number + 1}"] = key
    return {origin: secret for origin, secret in found.items() if len(secret) >= MIN_LENGTH}


def leaks(secrets: Mapping[str, str], logs: Iterable[Path]) -> list[str]:
    """`log: origin` for each secret found in a log. Pure but for reading the logs."""
    found = []
    for log in logs:
        try:
            text = log.read_text(errors="replace")
        except OSError:
            continue
        found += [f"{log}: {origin}" for origin, secret in secrets.items() if secret in text]
    return found


def session_logs(log_dir: Path, since: float, process_logs: Iterable[Path]) -> list[Path]:
    written = [path for path in log_dir.glob("*.log*") if path.is_file() and path.stat().st_mtime >= since]
    return [*written, *process_logs]


def suite_api_keys() -> list[str]:
    """The API keys the suite's clients send (and the local platform's development keys)."""
    keys = list(DEVELOPMENT_API_KEYS)
    try:
        from tests.integration.intake.conftest import KEYS
    except ImportError:
        return keys
    return keys + list(KEYS.values())
