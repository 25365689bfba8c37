"""deploy/helm/ladder, checked offline for every values file: `helm lint` and `helm template`
(helm pinned in the Makefile, built by `make tools`), every rendered object against the
Kubernetes schemas (kubernetes-validate) and the KEDA and Prometheus Operator objects against
their CRD schemas (deploy/helm/crd-schemas), checkov with every skipped check explained, the
environment the chart gives each service against that service's settings class, and the
PrometheusRule against the one copy of the rules in deploy/prometheus."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from services.intake.settings import IntakeSettings, load_helpdesks, load_key_ring
from shared.charter import charter_for_service
from shared.settings import load
from tests.unit.deploy import PROMETHEUS_DIR, ROOT, load_yaml
from tests.unit.deploy.test_compose import COMPOSE, SETTINGS, variables

HELM_DIR = ROOT / "deploy" / "helm"
CHART = HELM_DIR / "ladder"
VALUES = sorted((HELM_DIR / "values").glob("*.yaml"))
CRD_SCHEMAS = HELM_DIR / "crd-schemas"
HELM = ROOT / "var" / "bin" / "helm"
CHECKOV = ROOT / "var" / "tools" / "checkov" / "bin" / "checkov"
NAMESPACE = "ladder"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas
# kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
LAG_SCALED = ("router", "escalation", "metrics")
HTTP_DRAIN_S = 5  # shared/service.py serve(http_drain_s)
PRE_STOP_S = 5  # the chart's preStop sleep

# checkov findings the chart accepts, each with its reason. The test fails on any other
# finding, and on a skip that no longer matches a finding (so the list cannot go stale).
CHECKOV_ACCEPTED = {
    "CKV_K8S_43": "image by digest: set image.digest for production; the default is the tag `make image` builds",
    "CKV_K8S_15": "imagePullPolicy IfNotPresent: tags are never reused (appVersion), or image.digest pins it",
    "CKV_K8S_35": "a help-desk secret named by a mapping's secret_env comes from a Secret through the "
    "environment (helpdesks.secretEnv); secret_file reads it from the mounted Secret instead",
}


def helm(*args: str | Path) -> subprocess.CompletedProcess[str]:
    if not HELM.exists():
        pytest.fail("var/bin/helm is missing: `make tools` builds it (make test does)")
    return subprocess.run([HELM, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=120)


def template(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return helm("template", "ladder", CHART, "--namespace", NAMESPACE, "--kube-version", KUBERNETES_VERSIONS[0], *args)


@functools.cache
def rendered(values: Path) -> tuple[dict[str, Any], ...]:
    result = template("-f", values)
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def objects(values: Path, kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in rendered(values) if doc["kind"] == kind}


def deployment(values: Path, service: str) -> dict[str, Any]:
    return objects(values, "Deployment")[f"ladder-{service}"]


def values_of(path: Path) -> dict[str, Any]:
    """The chart's defaults merged with a values file (maps merge, the rest replaces)."""

    def merge(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            return {key: merge(base.get(key), over[key]) if key in base else over[key] for key in over} | {
                key: value for key, value in base.items() if key not in over
            }
        return over

    return merge(load_yaml(CHART / "values.yaml"), load_yaml(path))


values_files = pytest.mark.parametrize("values", VALUES, ids=lambda p: p.stem)


def test_the_values_files_are_there():
    assert [p.stem for p in VALUES] == ["large", "managed-kafka", "small"]


def test_helm_is_the_pinned_version():
    pinned = re.search(r"^HELM_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert pinned is not None
    assert re.fullmatch(re.escape(pinned.group(1)) + r"(\+\S*)?", helm("version", "--short").stdout.strip())


@values_files
def test_helm_lint(values):
    result = helm("lint", CHART, "--strict", "--kube-version", KUBERNETES_VERSIONS[0], "-f", values)
    assert result.returncode == 0, result.stdout + result.stderr


@values_files
def test_rendered_objects_match_the_kubernetes_schemas(values):
    problems = []
    for doc in rendered(values):
        if doc["apiVersion"].startswith(("keda.sh/", "monitoring.coreos.com/")):
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{doc['kind']}/{doc['metadata']['name']} on {version}: {error.message}")
    assert problems == []


def strict(schema: Any) -> Any:
    """A CRD's schema as the API server applies it, made strict: an object with declared
    properties takes no others (the server would silently drop a misspelt field)."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


@functools.cache
def crd_validators() -> dict[tuple[str, str], jsonschema.Draft4Validator]:
    """(apiVersion, kind) -> a validator of the served version's openAPIV3Schema."""
    validators = {}
    for path in sorted(CRD_SCHEMAS.glob("*.yaml")):
        crd = load_yaml(path)
        for version in crd["spec"]["versions"]:
            if version["served"]:
                key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
                validators[key] = jsonschema.Draft4Validator(strict(version["schema"]["openAPIV3Schema"]))
    return validators


def crd_problems(doc: dict[str, Any]) -> list[str]:
    validator = crd_validators().get((doc["apiVersion"], doc["kind"]))
    if validator is None:
        return [f"{doc['apiVersion']} {doc['kind']}: no CRD schema in {CRD_SCHEMAS.relative_to(ROOT)}"]
    name = f"{doc['kind']}/{doc['metadata']['name']}"
    return [f"{name} {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


@values_files
def test_keda_and_prometheus_operator_objects_match_their_crd_schemas(values):
    custom = [doc for doc in rendered(values) if doc["apiVersion"].startswith(("keda.sh/", "monitoring.coreos.com/"))]
    assert custom, "no custom resources rendered"
    assert [problem for doc in custom for problem in crd_problems(doc)] == []


def test_the_crd_schemas_catch_mistakes():
    scaled = next(doc for doc in rendered(VALUES[0]) if doc["kind"] == "ScaledObject")
    misspelt = json.loads(json.dumps(scaled))
    misspelt["spec"]["maxReplicaCounts"] = misspelt["spec"].pop("maxReplicaCount")
    assert any("maxReplicaCounts" in problem for problem in crd_problems(misspelt))
    wrong_type = json.loads(json.dumps(scaled))
    wrong_type["spec"]["minReplicaCount"] = "two"
    assert crd_problems(wrong_type)
    assert crd_problems(scaled) == []


def test_the_crd_schemas_name_their_source():
    note = (CRD_SCHEMAS / "README.md").read_text()
    for path in CRD_SCHEMAS.glob("*.yaml"):
        assert path.name in note, f"{path.name}: source and version not noted in README.md"


# --- the environment each service gets -----------------------------------------------------


def container(values: Path, service: str) -> dict[str, Any]:
    [only] = deployment(values, service)["spec"]["template"]["spec"]["containers"]
    return only


def rendered_environment(values: Path, service: str, tmp_path: Path) -> dict[str, str]:
    """The container's variables as the service would see them: Secret references get a
    stand-in of the right form, mounted files are written under tmp_path from the rendered
    ConfigMaps and Secrets (or stand-ins for existing ones)."""
    pod = deployment(values, service)["spec"]["template"]["spec"]
    [main] = pod["containers"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: volumes[mount["name"]] for mount in main["volumeMounts"]}
    configmaps, secrets = objects(values, "ConfigMap"), objects(values, "Secret")
    # An existing help-desk ConfigMap's stand-in: the repository's mappings whose secret the pod gets.
    given = {variable["name"] for variable in main["env"]}
    helpdesk_mappings = {
        path.name: path.read_text()
        for path in sorted((ROOT / "deploy" / "helpdesks").glob("*.yaml"))
        if load_yaml(path)["secret_env"] in given
    }
    stand_ins = {
        "api-keys.json": (ROOT / "deploy" / "local" / "api-keys.json").read_text(),
        "charter.yaml": (ROOT / "deploy" / "charter" / "default.yaml").read_text(),
        "ca.crt": "-----BEGIN CERTIFICATE-----\n",
    }

    def file_content(path: str) -> str:
        directory, name = path.rsplit("/", 1)
        volume = mounts[directory]
        if "configMap" in volume:
            data = configmaps.get(volume["configMap"]["name"], {}).get("data", {})
            return data.get(name, stand_ins[name])
        items = {item["path"]: item["key"] for item in volume["secret"]["items"]}
        data = secrets.get(volume["secret"]["secretName"], {}).get("stringData", {})
        return data.get(items[name], stand_ins.get(items[name], "a-password"))

    def write_directory(path: str) -> Path:
        """A mounted ConfigMap as a directory: its data, or an existing one's stand-in."""
        local = tmp_path / path.lstrip("/")
        local.mkdir(parents=True, exist_ok=True)
        name = mounts[path]["configMap"]["name"]
        for key, content in configmaps.get(name, {}).get("data", helpdesk_mappings).items():
            (local / key).write_text(content)
        return local

    environment = {}
    for variable in main["env"]:
        name = variable["name"]
        if "valueFrom" in variable:
            environment[name] = stand_ins.get(
                variable["valueFrom"]["secretKeyRef"]["key"], "a-webhook-secret-of-32-characters"
            )
        elif variable["value"] in mounts:
            environment[name] = str(write_directory(variable["value"]))
        elif variable["value"].startswith("/etc/ladder/"):
            local = tmp_path / variable["value"].lstrip("/")
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(file_content(variable["value"]))
            environment[name] = str(local)
        else:
            environment[name] = variable["value"]
    return environment


@values_files
@pytest.mark.parametrize("service", SETTINGS)
def test_the_chart_sets_only_variables_the_service_reads(values, service):
    names = [variable["name"] for variable in container(values, service)["env"]]
    assert len(names) == len(set(names)), f"{service}: a variable is set twice"
    # The help-desk mappings' secret_env variables are read by intake's mappings, not its settings.
    helpdesk_secrets = set(values_of(values)["helpdesks"]["secretEnv"]) if service == "intake" else set()
    unknown = set(names) - variables(SETTINGS[service]) - helpdesk_secrets
    assert unknown == set(), f"{service}: {sorted(unknown)} are read by no setting of {SETTINGS[service].__name__}"


@values_files
@pytest.mark.parametrize("service", SETTINGS)
def test_the_service_accepts_the_charts_environment(values, service, tmp_path, monkeypatch):
    """Names and types: the service's own settings class loads exactly what the chart gives
    (each value parsed with its field's type and rules), and the files it points at."""
    settings_class = SETTINGS[service]
    for name in variables(settings_class):
        monkeypatch.delenv(name, raising=False)
    environment = rendered_environment(values, service, tmp_path)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = load(settings_class)
    assert settings.host == "0.0.0.0", "reachable from outside the pod"
    assert settings.kafka_bootstrap_servers == values_of(values)["kafka"]["bootstrapServers"]
    assert settings.kafka_security_protocol == values_of(values)["kafka"]["securityProtocol"]
    [port] = container(values, service)["ports"]
    assert settings.port == port["containerPort"] == values_of(values)["services"][service]["port"]
    # Every variable the chart sets reaches a field (none shadowed by another of the same name).
    helpdesk_secrets = set(values_of(values)["helpdesks"]["secretEnv"]) if service == "intake" else set()
    assert set(environment) - helpdesk_secrets <= variables(settings_class)
    # Its own login: the service's user, the password from the mounted file, the URL's TLS kept.
    login = urlsplit(settings.database_url)
    assert login.username == values_of(values)["database"]["users"][service]
    database = values_of(values)["database"]
    assert login.password == ("a-password" if database["existingSecret"] else database["passwords"][service])
    assert login.query == urlsplit(values_of(values)["database"]["url"]).query
    if service == "intake":
        load_key_ring(settings)  # type: ignore[arg-type]
        assert isinstance(settings, IntakeSettings)
        connections = load_helpdesks(settings)
        assert (settings.helpdesks_dir is not None) == bool(values_of(values)["helpdesks"]["existingConfigMap"])
        assert (connections != {}) == (settings.helpdesks_dir is not None)
    if service in ("router", "escalation"):
        charter_for_service(settings.charter)  # type: ignore[attr-defined]


@pytest.mark.parametrize("service", SETTINGS)
def test_every_variable_of_a_service_can_be_set_from_values(service, tmp_path):
    """The other direction: every variable the service reads is set by the chart from its
    own values, or goes through `services.<name>.env` as is; none is out of reach."""
    base = VALUES[-1]
    by_chart = {variable["name"] for variable in container(base, service)["env"]}
    others = sorted(variables(SETTINGS[service]) - by_chart)
    overrides = tmp_path / "overrides.yaml"
    env = {name: f"value-of-{name}" for name in others}
    overrides.write_text(yaml.safe_dump({"services": {service: {"env": env}}}))
    result = template("-f", base, "-f", overrides, "--show-only", "templates/deployment.yaml")
    assert result.returncode == 0, result.stderr
    docs = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(result.stdout) if doc}
    [main] = docs[f"ladder-{service}"]["spec"]["template"]["spec"]["containers"]
    given = {variable["name"]: variable.get("value") for variable in main["env"]}
    assert {name: given.get(name) for name in others} == env
    assert set(given) == by_chart | set(others) == variables(SETTINGS[service])


def test_the_chart_refuses_env_for_what_it_sets_itself(tmp_path):
    overrides = tmp_path / "port.yaml"
    overrides.write_text(yaml.safe_dump({"services": {"intake": {"env": {"INTAKE_PORT": "9000"}}}}))
    result = template("-f", VALUES[-1], "-f", overrides)
    assert result.returncode != 0 and "INTAKE_PORT is set by the chart from its own values" in result.stderr


# --- one database login per service -----------------------------------------------------


@values_files
def test_each_service_logs_in_as_its_own_role_with_a_mounted_password(values):
    merged = values_of(values)["database"]
    users = {}
    for service in SETTINGS:
        pod = deployment(values, service)["spec"]["template"]["spec"]
        env = {variable["name"]: variable for variable in container(values, service)["env"]}
        assert "valueFrom" not in env["DATABASE_URL"] and urlsplit(env["DATABASE_URL"]["value"]).password is None
        users[service] = urlsplit(env["DATABASE_URL"]["value"]).username
        assert env["DATABASE_PASSWORD_FILE"]["value"] == "/etc/ladder/database/password"
        [volume] = [volume for volume in pod["volumes"] if volume["name"] == "database"]
        items = {item["path"]: item["key"] for item in volume["secret"]["items"]}
        # The pod gets its own password only, never another service's.
        assert items == {"password": f"{service}-password"} | ({"ca.crt": "ca.crt"} if merged["caFromSecret"] else {})
    assert users == merged["users"]
    if values.stem != "small":
        assert len(set(users.values())) == 4, "one role per service"


def overridden(base: Path, tmp_path: Path, **overrides: Any) -> Path:
    """A values file: `base` with top-level sections replaced."""
    path = tmp_path / f"{base.stem}-overridden.yaml"
    path.write_text(yaml.safe_dump(load_yaml(base) | overrides))
    return path


def test_the_chart_refuses_a_login_in_database_url(tmp_path):
    database = load_yaml(VALUES[-1])["database"] | {"url": "postgresql://ladder:secret@postgres:5432/ladder"}
    result = template("-f", overridden(VALUES[-1], tmp_path, database=database))
    assert result.returncode != 0 and "database.url names the server, not a login" in result.stderr


def test_the_database_ca_is_what_the_url_verifies_against(tmp_path):
    managed = HELM_DIR / "values" / "managed-kafka.yaml"
    database = load_yaml(managed)["database"] | {"url": "postgresql://db.example.net:5432/ladder?sslmode=verify-full"}
    result = template("-f", overridden(managed, tmp_path, database=database))
    assert result.returncode != 0 and "sslrootcert=/etc/ladder/database/ca.crt" in result.stderr


# --- help-desk connections ------------------------------------------------------------------


def with_helpdesks(tmp_path: Path, **helpdesks: Any) -> Path:
    return overridden(VALUES[-1], tmp_path, helpdesks=helpdesks)


def test_helpdesk_mappings_from_values_are_loaded_by_intake(tmp_path, monkeypatch):
    mappings = {name: (ROOT / "deploy" / "helpdesks" / name).read_text() for name in ("zendesk.yaml", "jira.yaml")}
    values = with_helpdesks(
        tmp_path,
        mappings=mappings,
        existingSecret="ladder-helpdesks",
        secretEnv=["LADDER_ZENDESK_SECRET", "LADDER_JIRA_SECRET"],
    )
    [configmap] = [c for name, c in objects(values, "ConfigMap").items() if name == "ladder-helpdesks"]
    assert configmap["data"] == mappings
    secrets = {
        variable["name"]: variable["valueFrom"]["secretKeyRef"]
        for variable in container(values, "intake")["env"]
        if "valueFrom" in variable
    }
    assert secrets == {
        name: {"name": "ladder-helpdesks", "key": name} for name in ("LADDER_ZENDESK_SECRET", "LADDER_JIRA_SECRET")
    }
    for name in variables(IntakeSettings):
        monkeypatch.delenv(name, raising=False)
    for name, value in rendered_environment(values, "intake", tmp_path).items():
        monkeypatch.setenv(name, value)
    settings = load(IntakeSettings)
    assert set(load_helpdesks(settings)) == {"zendesk", "jira"}
    # Only intake takes help-desk webhooks.
    for service in ("router", "escalation", "metrics"):
        mounted = {mount["mountPath"] for mount in container(values, service)["volumeMounts"]}
        assert "/etc/ladder/helpdesks" not in mounted and "/etc/ladder/helpdesk-secrets" not in mounted


def test_helpdesk_secrets_can_be_mounted_files(tmp_path):
    mapping = (ROOT / "deploy" / "helpdesks" / "zammad.yaml").read_text()
    mapping = mapping.replace("secret_env: LADDER_ZAMMAD_SECRET", "secret_file: /etc/ladder/helpdesk-secrets/zammad")
    values = with_helpdesks(tmp_path, mappings={"zammad.yaml": mapping}, existingSecret="ladder-helpdesks")
    pod = deployment(values, "intake")["spec"]["template"]["spec"]
    mounts = {mount["mountPath"]: mount["name"] for mount in container(values, "intake")["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes[mounts["/etc/ladder/helpdesk-secrets"]]["secret"]["secretName"] == "ladder-helpdesks"
    assert all("valueFrom" not in variable for variable in container(values, "intake")["env"])


def test_the_chart_refuses_a_mapping_whose_secret_variable_it_does_not_set(tmp_path):
    mapping = (ROOT / "deploy" / "helpdesks" / "zendesk.yaml").read_text()
    values = with_helpdesks(tmp_path, mappings={"zendesk.yaml": mapping}, existingSecret="ladder-helpdesks")
    result = template("-f", values)
    assert result.returncode != 0
    assert "secret_env LADDER_ZENDESK_SECRET is not in helpdesks.secretEnv" in result.stderr


# --- what each Deployment promises -------------------------------------------------------


@values_files
@pytest.mark.parametrize("service", SETTINGS)
def test_deployments_are_hardened_and_probed(values, service):
    pod = deployment(values, service)["spec"]["template"]["spec"]
    main = container(values, service)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["seccompProfile"]
    assert pod["automountServiceAccountToken"] is False
    context = main["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(main["resources"]["requests"]) and {"cpu", "memory"} <= set(
        main["resources"]["limits"]
    )
    assert main["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert main["command"] == ["python", "-m", f"services.{service}"]
    # SIGTERM -> exit takes at most the shutdown timeout plus the HTTP drain, after preStop.
    env = {v["name"]: v.get("value") for v in main["env"]}
    shutdown = float(env[f"{service.upper()}_SHUTDOWN_TIMEOUT_S"])
    assert pod["terminationGracePeriodSeconds"] > PRE_STOP_S + shutdown + HTTP_DRAIN_S
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    strategy = deployment(values, service)["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0, "old pods serve until the new version is migrated and ready"


@values_files
def test_every_service_has_its_pdb_service_and_network_policy(values):
    for kind in ("PodDisruptionBudget", "Service", "NetworkPolicy"):
        assert set(objects(values, kind)) == {f"ladder-{s}" for s in SETTINGS}, kind
    for name, policy in objects(values, "NetworkPolicy").items():
        spec = policy["spec"]
        assert spec["policyTypes"] == ["Ingress", "Egress"], name
        ports = {port["port"] for rule in spec["egress"] for port in rule["ports"]}
        merged = values_of(values)
        assert ports == {53, *merged["kafka"]["ports"], *merged["database"]["ports"]}, name
        assert all(port["port"] == "http" for rule in spec["ingress"] for port in rule["ports"]), name
        open_rules = [rule for rule in spec["ingress"] if "from" not in rule]
        assert len(open_rules) == (1 if name == "ladder-intake" and not merged["networkPolicy"]["intakeFrom"] else 0)


# --- autoscaling ---------------------------------------------------------------------------


@values_files
def test_keda_scales_router_escalation_and_metrics_within_the_partitions(values):
    merged = values_of(values)
    scaled = objects(values, "ScaledObject")
    if not merged["autoscaling"]["enabled"]:
        assert scaled == {}
        return
    assert set(scaled) == {f"ladder-{s}" for s in LAG_SCALED}
    for service in LAG_SCALED:
        spec = scaled[f"ladder-{service}"]["spec"]
        consumers = merged["services"][service]["consumers"]
        assert spec["maxReplicaCount"] <= merged["kafka"]["partitions"]
        assert spec["maxReplicaCount"] * consumers <= merged["kafka"]["partitions"], "idle group members"
        [trigger] = spec["triggers"]
        assert trigger["metadata"]["consumerGroup"] == f"ladder-{service}"
        assert trigger["metadata"]["topic"] == merged["topicPrefix"] + "support.ticket-events"
        assert "replicas" not in deployment(values, service)["spec"], "KEDA owns the replica count"


def test_the_chart_refuses_more_replicas_than_partitions(tmp_path):
    overrides = tmp_path / "too-many.yaml"
    overrides.write_text(yaml.safe_dump({"services": {"router": {"autoscaling": {"maxReplicas": 13}}}}))
    result = template("-f", HELM_DIR / "values" / "large.yaml", "-f", overrides)
    assert result.returncode != 0
    assert "services.router.autoscaling.maxReplicas (13) x consumers (2) exceeds kafka.partitions (24)" in result.stderr


# --- monitoring ---------------------------------------------------------------------------


def rule_groups_in_the_repository() -> list[dict[str, Any]]:
    return [group for path in sorted((PROMETHEUS_DIR / "rules").glob("*.yml")) for group in load_yaml(path)["groups"]]


@values_files
def test_the_prometheus_rule_is_deploy_prometheus_rules(values):
    [rule] = objects(values, "PrometheusRule").values()
    assert rule["spec"]["groups"] == rule_groups_in_the_repository()


def test_the_chart_reads_the_rules_and_the_charter_through_links():
    """No second copy to drift: the chart's files are links to deploy/."""
    for name, target in (("rules", PROMETHEUS_DIR / "rules"), ("charter", ROOT / "deploy" / "charter")):
        link = CHART / "files" / name
        assert link.is_symlink() and link.resolve() == target.resolve(), name


@values_files
def test_the_service_monitor_scrapes_every_service_as_its_job(values):
    [monitor] = objects(values, "ServiceMonitor").values()
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/component"
    for service in objects(values, "Service").values():
        labels = service["metadata"]["labels"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert [port["name"] for port in service["spec"]["ports"]] == [monitor["spec"]["endpoints"][0]["port"]]


# --- one image ------------------------------------------------------------------------------


def test_compose_and_the_chart_run_the_same_image():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert load_yaml(CHART / "Chart.yaml")["appVersion"] == version
    compose = yaml.safe_load(COMPOSE.read_text())
    assert compose["x-service"]["image"] == f"ladder:{version}"
    assert container(VALUES[-1], "intake")["image"] == f"ladder:{version}"


def test_the_image_and_the_install_use_the_hashed_lock():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements/runtime.lock" in dockerfile
    assert "--no-deps ." in dockerfile
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements/runtime.lock -r requirements/test.lock" in makefile
    locked = lock_pins(ROOT / "requirements" / "runtime.lock")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==(\S+)", requirement).groups()  # type: ignore[union-attr]
        assert locked.get(normalize(name)) == version, f"{requirement}: runtime.lock has {locked.get(normalize(name))}"
    test_locked = lock_pins(ROOT / "requirements" / "test.lock")
    for requirement in project["optional-dependencies"]["test"]:
        name, version = requirement.split("==")
        assert test_locked.get(normalize(name)) == version, f"{requirement}: test.lock is stale (make lock)"
    assert {name: test_locked[name] for name in locked} == locked, "the test lock pins the runtime as runtime.lock"


def test_the_image_has_every_library_its_code_imports():
    """The image installs runtime.lock only: a library imported by the services, the CLI or the
    simulator but locked for the tests alone (httpx for `ladder kpis` was) breaks in the image."""
    first_party = {"cli", "services", "shared", "simulator"}
    distributions = importlib.metadata.packages_distributions()
    locked = lock_pins(ROOT / "requirements" / "runtime.lock")
    missing = set()
    for package in sorted(first_party):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for top in {module.split(".")[0] for module in modules} - first_party - sys.stdlib_module_names:
                    if not any(normalize(dist) in locked for dist in distributions.get(top, [top])):
                        missing.add(f"{path.relative_to(ROOT)}: {top}")
    assert missing == set()


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(path: Path) -> dict[str, str]:
    text = path.read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M))
    entries = re.split(r"\n(?=[A-Za-z0-9])", text)
    unhashed = [entry.split("==")[0] for entry in entries if "==" in entry and "--hash=sha256:" not in entry]
    assert unhashed == [], f"{path.name}: entries without hashes"
    return {normalize(name): version for name, version in pins.items()}


# --- checkov --------------------------------------------------------------------------------


@functools.cache
def checkov_findings() -> dict[str, list[tuple[str, str]]]:
    """values file stem -> [(check id, resource)] of every failed check."""
    if not CHECKOV.exists():
        pytest.fail("var/tools/checkov is missing: `make tools` installs it (make test does)")
    findings: dict[str, list[tuple[str, str]]] = {}
    with tempfile.TemporaryDirectory() as directory:
        for values in VALUES:
            (Path(directory) / f"{values.stem}.yaml").write_text(yaml.safe_dump_all(rendered(values)))
        result = subprocess.run(
            [CHECKOV, "--directory", directory, "--framework", "kubernetes", "--output", "json", "--quiet"],
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    for check in (report.get("results") or {}).get("failed_checks", []):
        stem = Path(check["file_path"]).stem
        findings.setdefault(stem, []).append((check["check_id"], check["resource"]))
    return findings


def test_checkov_finds_nothing_unexplained():
    findings = checkov_findings()
    unexplained = sorted(
        (stem, check, resource)
        for stem, found in findings.items()
        for check, resource in found
        if check not in CHECKOV_ACCEPTED
    )
    assert unexplained == []
    still_found = {check for found in findings.values() for check, _ in found}
    assert set(CHECKOV_ACCEPTED) - still_found == set(), "accepted findings checkov no longer reports: drop them"
