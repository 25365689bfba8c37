"""Print intake's OpenAPI document; the committed copy is docs/openapi/intake.json (`make openapi`)."""

import json

from services.intake.core.auth import hash_key
from services.intake.main import create_app
from services.intake.settings import IntakeSettings

_PLACEHOLDER_KEYS = json.dumps({"keys": [{"name": "doc", "sha256": hash_key("doc"), "actions": ["create"]}]})


def document() -> dict:
    return create_app(IntakeSettings(api_keys=_PLACEHOLDER_KEYS)).openapi()


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render(), end="")
