"""Policy files (the tier charter, help-desk mappings): YAML validated by a pydantic model,
every problem named by its path (`tiers.L2.sla.P1.first_response: ...`) or, for YAML that
does not parse, its line."""

from __future__ import annotations

from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def validate_yaml(text: str, model: type[M], outline: str) -> M | list[str]:
    """`text` as `model`, or every problem found; `outline` names the top-level keys expected."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "document"
        return [f"{where}: not valid YAML ({getattr(error, 'problem', error)})"]
    if not isinstance(data, dict):
        return [f"document: expected a mapping ({outline})"]
    try:
        return model.model_validate(data)
    except ValidationError as error:
        return [
            f"{'.'.join(map(str, item['loc'])) or 'document'}: {item['msg'].removeprefix('Value error, ')}"
            for item in error.errors(include_url=False, include_input=False)
        ]
