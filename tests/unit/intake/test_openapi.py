"""The committed OpenAPI document is the one the code serves."""

from pathlib import Path

from services.intake.openapi import document, render

COMMITTED = Path(__file__).resolve().parents[3] / "docs" / "openapi" / "intake.json"


def test_committed_document_matches_the_code():
    assert COMMITTED.read_text() == render(), "run `make openapi` and commit docs/openapi/intake.json"


def test_every_write_is_documented_with_its_errors():
    paths = document()["paths"]
    expected = {"/v1/tickets"} | {f"/v1/tickets/{{ticket_id}}/{p}" for p in
                                  ("responses", "escalations", "returns", "resolution", "reopen", "rating")}
    assert set(paths) == expected
    for path in expected:
        responses = paths[path]["post"]["responses"]
        assert {"401", "403", "409", "413", "422", "503"} <= set(responses), path
        assert paths[path]["post"]["security"] == [{"HTTPBearer": []}]
