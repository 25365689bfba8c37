"""The committed contract documents are the ones the code generates, and they are valid:
OpenAPI for the HTTP API, AsyncAPI 3.0 for the topics, a JSON Schema per event type."""

import json
from pathlib import Path

import jsonschema_rs
import pytest

from cli.contracts import DOCS, committed
from cli.contracts import openapi as document
from services.intake.asyncapi import asyncapi, event_schemas
from tests.unit.test_envelope import SAMPLES

ASYNCAPI_SCHEMA = Path(__file__).resolve().parents[2] / "contract" / "schemas" / "asyncapi-3.0.0.json"


@pytest.mark.parametrize("path", sorted(committed()), ids=lambda p: str(p.relative_to(DOCS)))
def test_committed_documents_match_the_code(path):
    assert path.read_text() == committed()[path], "run `make contracts` and commit docs/"


def test_no_stale_schema_files():
    assert {p.name for p in (DOCS / "schemas").glob("*.json")} == set(event_schemas())


def test_asyncapi_is_valid_asyncapi_3():
    validator = jsonschema_rs.validator_for(json.loads(ASYNCAPI_SCHEMA.read_text()))
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(asyncapi())]
    assert not errors, errors[:10]


def test_asyncapi_names_every_event_and_command():
    doc = asyncapi()
    assert doc["channels"]["ticketEvents"]["address"] == "support.ticket-events"
    names = {m["name"] for m in doc["components"]["messages"].values()}
    assert {sample.TYPE for sample in SAMPLES} <= names
    assert {
        "create_ticket",
        "record_response",
        "request_escalation",
        "return_with_fix",
        "resolve_ticket",
        "reopen_ticket",
        "rate_ticket",
        "claim_ticket",
        "dead_letter",
    } <= names


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.TYPE)
def test_every_event_validates_against_its_json_schema(event):
    schema = event_schemas()[f"{event.TYPE}.json"]
    jsonschema_rs.validate(schema, json.loads(event.model_dump_json()))
    with pytest.raises(jsonschema_rs.ValidationError):
        jsonschema_rs.validate(schema, {**json.loads(event.model_dump_json()), "unexpected": 1})


def test_every_write_is_documented_with_its_errors():
    paths = document()["paths"]
    expected = {"/v1/tickets", "/v1/claims"} | {
        f"/v1/tickets/{{ticket_id}}/{p}"
        for p in ("responses", "escalations", "returns", "resolution", "reopen", "rating", "claim")
    }
    assert {path for path in paths if path.startswith(("/v1/tickets", "/v1/claims"))} == expected
    webhooks = {f"/v1/webhooks/{vendor}/{{connection}}" for vendor in ("zendesk", "jira", "zammad", "freshdesk")}
    assert {path for path in paths if path.startswith("/v1/webhooks")} == webhooks
    assert set(paths) == expected | webhooks
    for path in webhooks:  # vendors' payloads, answered with these statuses
        responses = paths[path]["post"]["responses"]
        assert {"200", "202", "401", "404", "413", "422", "500", "503"} <= set(responses), path
        for status in ("401", "404", "413", "422", "500", "503"):
            assert responses[status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/WebhookProblem"
            }
    for path in expected:
        responses = paths[path]["post"]["responses"]
        assert {"401", "403", "409", "413", "422", "500", "503"} <= set(responses), path
        assert paths[path]["post"]["security"] == [{"HTTPBearer": []}]
        for status in ("401", "403", "409", "413", "422", "500", "503"):
            assert responses[status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }


def _largest_json(schema, defs) -> int:
    """Bytes of the largest JSON document `schema` accepts (every string at its maximum
    length of characters escaped as \\uXXXX surrogate pairs: 12 bytes each)."""
    if "$ref" in schema:
        return _largest_json(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in schema:
        return max(_largest_json(option, defs) for option in schema["anyOf"])
    kind = schema.get("type")
    if kind == "string" or "enum" in schema or "const" in schema:
        assert "maxLength" in schema or "enum" in schema or "pattern" in schema or "format" in schema, schema
        return 2 + 12 * schema.get("maxLength", 64)
    if kind == "array":
        return 2 + schema["maxItems"] * (1 + _largest_json(schema["items"], defs))
    if kind == "object":
        return 2 + sum(len(name) + 4 + _largest_json(spec, defs) for name, spec in schema["properties"].items())
    return 32  # numbers, booleans, null


def test_every_valid_body_fits_the_default_body_limit():
    """So 413 means "not a valid request" and never refuses one the document calls valid."""
    from services.intake.settings import IntakeSettings

    openapi = document()
    defs = openapi["components"]["schemas"]
    bodies = [  # a webhook's body is the vendor's payload: bounded by the limit, not by a schema
        op["post"]["requestBody"]["content"]["application/json"]["schema"]
        for path, op in openapi["paths"].items()
        if not path.startswith("/v1/webhooks/")
    ]
    largest = max(_largest_json(body, defs) for body in bodies)
    assert largest < IntakeSettings.model_fields["max_body_bytes"].default, largest
