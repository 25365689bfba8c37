"""intake's OpenAPI document, as the app serves it (committed by `make contracts`)."""

import json
from typing import Any

from services.intake.core.auth import hash_key
from services.intake.main import create_app
from services.intake.settings import IntakeSettings

_PLACEHOLDER_KEYS = json.dumps({"keys": [{"name": "doc", "sha256": hash_key("doc"), "actions": ["create"]}]})


def document() -> dict[str, Any]:
    return create_app(IntakeSettings(api_keys=_PLACEHOLDER_KEYS)).openapi()
