"""API keys: who may write, and which actions each writer may take.

Keys are stored only as SHA-256 digests (they are long random tokens, so a fast hash is
the right tool; a password hash would only slow every request). The raw key never
leaves this module: clients are known by the key's `name` everywhere else.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from services.intake.core.commands import Action


class ApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the key")
    actions: frozenset[Action] = Field(min_length=1)


class KeyRingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[ApiKey] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Denied:
    status: int  # 401: who are you? 403: not allowed
    reason: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyRing:
    def __init__(self, config: KeyRingConfig) -> None:
        self._by_digest = {key.sha256: key for key in config.keys}
        if len(self._by_digest) != len(config.keys):
            raise ValueError("two API keys share one digest")
        self._recent: dict[str, ApiKey | Denied] = {}  # header value -> outcome; topic batches repeat one

    def authorize(self, authorization: str | None, action: Action) -> ApiKey | Denied:
        """Check an `Authorization: Bearer <key>` value for `action`."""
        key = self.authenticate(authorization)
        return key if isinstance(key, Denied) else permit(key, action)

    def authenticate(self, authorization: str | None) -> ApiKey | Denied:
        """Who is this (401 if nobody we know)? Cached: topic batches repeat one header."""
        key = self._recent.get(authorization or "")
        if key is None:
            if len(self._recent) >= 256:
                self._recent.clear()
            key = self._recent[authorization or ""] = self._authenticate(authorization or "")
        return key

    def _authenticate(self, authorization: str) -> ApiKey | Denied:
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return Denied(401, "missing bearer API key")
        digest = hash_key(secret.strip())
        key = self._by_digest.get(digest)
        # compare_digest keeps the final check constant-time even though the lookup is by hash
        if key is None or not hmac.compare_digest(key.sha256, digest):
            return Denied(401, "invalid API key")
        return key


def permit(key: ApiKey, action: Action) -> ApiKey | Denied:
    """May this key take `action` (403 if not)?"""
    if action not in key.actions:
        return Denied(403, f"API key {key.name!r} may not {action.value}")
    return key
