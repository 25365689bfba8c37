"""Writes the documents teams code against under docs/ (`make contracts`): intake's OpenAPI
document as the app serves it, the AsyncAPI document and the event schemas
(`services.intake.asyncapi`). Tests hold the committed copies equal to what this module
generates, so the documents cannot drift from the models. Outside the service: this module
builds the app, the app never imports it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.intake.asyncapi import asyncapi, event_schemas
from services.intake.core.auth import hash_key
from services.intake.main import create_app
from services.intake.settings import IntakeSettings

DOCS = Path(__file__).resolve().parents[1] / "docs"
_PLACEHOLDER_KEYS = json.dumps({"keys": [{"name": "doc", "sha256": hash_key("doc"), "actions": ["create"]}]})


def openapi() -> dict[str, Any]:
    """Intake's OpenAPI document, as the app serves it."""
    return create_app(IntakeSettings(api_keys=_PLACEHOLDER_KEYS)).openapi()


def render(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def committed() -> dict[Path, str]:
    """Every generated document, by its path under docs/."""
    files = {
        DOCS / "openapi" / "intake.json": render(openapi()),
        DOCS / "asyncapi" / "ladder.json": render(asyncapi()),
    }
    files.update({DOCS / "schemas" / name: render(schema) for name, schema in event_schemas().items()})
    return files


if __name__ == "__main__":
    for path, text in committed().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path.relative_to(DOCS.parent))
