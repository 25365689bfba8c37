"""docker-compose.yml and the Dockerfile, checked without a Docker engine: a real Compose
parser validates the file, and every service, port, variable and mounted path it names is
checked against the code and the repository."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from services.escalation.settings import EscalationSettings
from services.intake.settings import IntakeSettings
from services.metrics.settings import MetricsSettings
from services.router.settings import RouterSettings
from shared import topics
from shared.settings import LadderSettings, ServiceSettings
from tests.unit.deploy import PROMETHEUS_DIR, ROOT

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SETTINGS: dict[str, type[ServiceSettings]] = {
    "intake": IntakeSettings,
    "router": RouterSettings,
    "escalation": EscalationSettings,
    "metrics": MetricsSettings,
}


def variables(settings: type[LadderSettings]) -> set[str]:
    """Every environment variable `settings` reads."""
    prefix = settings.model_config.get("env_prefix", "")
    return {
        (info.validation_alias if isinstance(info.validation_alias, str) else f"{prefix}{name}").upper()
        for name, info in settings.model_fields.items()
    }


@pytest.fixture(scope="module")
def compose() -> dict:
    """The file as Compose resolves it (anchors merged, defaults filled)."""
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is missing: deploy/local/install.sh installs it (make test runs it)")
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_runs_the_whole_system(compose):
    assert set(compose["services"]) == {"kafka", "topics", "postgres", *SETTINGS, "prometheus", "grafana"}
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")


def test_every_service_is_configured_by_known_variables_only(compose):
    for name, settings in SETTINGS.items():
        service = compose["services"][name]
        environment = set(service["environment"])
        unknown = environment - variables(settings) - {"LADDER_SERVICE", "LADDER_CHARTER"}
        assert not unknown, f"{name}: {sorted(unknown)} are read by no setting"
        assert service["environment"]["LADDER_SERVICE"] == name
        assert service["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert "@postgres:5432/" in service["environment"]["DATABASE_URL"]


def test_ports_match_the_services_defaults(compose):
    for name, settings in SETTINGS.items():
        port = settings.model_fields["port"].default
        published = [(int(p["published"]), int(p["target"])) for p in compose["services"][name]["ports"]]
        assert published == [(port, port)], name
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"]
        for job in yaml.safe_load((PROMETHEUS_DIR / "prometheus.compose.yml").read_text())["scrape_configs"]
    }
    for name, settings in SETTINGS.items():
        assert targets[name] == [f"{name}:{settings.model_fields['port'].default}"]


def test_services_start_once_their_dependencies_are_healthy(compose):
    for name in SETTINGS:
        depends = compose["services"][name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["topics"]["condition"] == "service_completed_successfully"
    assert compose["services"]["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("kafka", "postgres"):
        assert compose["services"][name]["healthcheck"]["test"]


def test_mounted_paths_exist(compose):
    named = set(compose.get("volumes", {}))
    checked = 0
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            kind = volume.get("type") if isinstance(volume, dict) else "volume" if source in named else "bind"
            if kind == "bind":  # Compose resolved it against the file's directory
                path = Path(source)
                assert path.exists() and path.is_relative_to(ROOT), (name, source)
                checked += 1
    assert checked == 3  # Prometheus config and rules, Grafana provisioning, dashboards (keys are secrets)


SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEYS?$|_KEY$", re.IGNORECASE)


def test_no_secret_is_in_the_file_every_one_is_a_generated_secret_file(compose):
    declared = compose["secrets"]
    for name, secret in declared.items():  # files under var/secrets, which git ignores
        path = Path(secret["file"])
        assert path.is_relative_to(ROOT / "var" / "secrets"), name
        ignored = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=ROOT, check=False)
        assert ignored.returncode == 0, f"{path} is not git-ignored"
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        for variable, value in environment.items():
            if SECRET_WORDS.search(variable.removesuffix("_FILE").removesuffix("__FILE")):
                assert variable.endswith("FILE"), f"{name}: {variable} holds a secret in the file"
                mounted = {f"/run/secrets/{s['source']}" for s in service.get("secrets", [])}
                assert value in mounted, f"{name}: {variable}={value} is no secret mounted into it"
        url = environment.get("DATABASE_URL")
        if url is not None:
            assert urlsplit(url).password is None, f"{name}: DATABASE_URL has a password"
            assert environment["DATABASE_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert compose["services"]["postgres"]["environment"].keys() >= {"POSTGRES_PASSWORD_FILE"}
    assert "POSTGRES_PASSWORD" not in compose["services"]["postgres"]["environment"]


def test_the_database_compares_ids_byte_by_byte(compose):
    # the image's default locale (en_US.utf8) would compare every key through strcoll
    assert "--lc-collate=C" in compose["services"]["postgres"]["environment"]["POSTGRES_INITDB_ARGS"].split()


def test_the_secrets_script_makes_every_secret_compose_mounts(compose, tmp_path):
    result = subprocess.run(
        ["bash", str(ROOT / "deploy/local/compose-secrets.sh")],
        env={"PATH": "/usr/bin:/bin", "LADDER_COMPOSE_SECRETS": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for secret in compose["secrets"].values():
        made = tmp_path / Path(secret["file"]).name
        assert made.is_file() and made.stat().st_size > 0, made
    key = (tmp_path / "helpdesk.key").read_text().strip()
    assert key not in result.stdout + result.stderr  # the script names the file, never prints a secret
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert json.loads((tmp_path / "api-keys.json").read_text())["keys"][0]["sha256"] == digest


def test_prometheus_has_no_lifecycle_api(compose):
    """Without it, whoever reaches the port cannot stop Prometheus (/-/quit) nor reload it."""
    assert not any("lifecycle" in part for part in compose["services"]["prometheus"]["command"])
    script = (ROOT / "deploy/local/prometheus.sh").read_text()
    assert '[[ "${PROMETHEUS_LIFECYCLE:-0}" != 1 ]] || lifecycle=(--web.enable-lifecycle)' in script
    assert script.count("--web.enable-lifecycle") == 1


def test_the_topics_are_the_designs(compose):
    command = " ".join(compose["services"]["topics"]["command"])
    assert re.findall(r"support\.[a-z-]+", command) == [
        "support.ticket-events",
        "support.ticket-commands",
        "support.dead-letter",
    ]
    assert "--partitions 6" in command
    assert dict(re.findall(r"(support\.[a-z-]+)=(-?\d+)", command)) == {
        name: str(ms) for name, ms in topics.RETENTION_MS.items()
    }


def test_the_local_platform_gives_each_topic_the_designs_retention():
    script = (ROOT / "deploy" / "local" / "kafka-common.sh").read_text()  # kafka.sh and cluster.sh
    cases = dict(re.findall(r"\*(support\.[a-z-]+)\) echo (-?\d+)", script))
    assert cases == {name: str(ms) for name, ms in topics.RETENTION_MS.items()}
    assert topics.RETENTION_MS[topics.TICKET_EVENTS] == -1  # the truth is kept: replays stay exact


def test_the_dockerfile_builds_a_small_non_root_image():
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) == 2 and all(stage.startswith("python:3.11-slim") for stage in stages)
    final = text.split("\nFROM ")[-1]
    assert re.search(r"^USER (?!root)\w+", final, re.M), "the final image must not run as root"
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert not re.search(r"apt-get|gcc|build-essential", final), "no compilers or package installs in the final image"
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (ROOT / source).exists(), f"COPY {source}: no such path"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var"} <= set(ignored)
