"""API keys: who may write, which actions each writer may take, on which tickets.

Keys are stored only as SHA-256 digests (they are long random tokens, so a fast hash is
the right tool; a password hash would only slow every request). The raw key never
leaves this module: clients are known by the key's `name` everywhere else.

Invariants:
1. A client (`name`) has at most two keys, so a rotation can overlap old and new.
2. A key past its `expires_at` authenticates nobody (401), like an unknown one.
3. Topic records are authenticated by signature (`shared.signing`), never by a key in the
   record: the HMAC key is the digest stored here; every check is constant-time.
4. `tickets: own` (the default) lets a client act only on tickets it created; `all` on every
   ticket (a help desk's key may have it).
"""

from __future__ import annotations

import collections
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from services.intake.core.commands import Action
from shared import signing
from shared.envelope import Headers

MAX_KEYS_PER_CLIENT = 2


class ApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description="the client")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the key")
    actions: frozenset[Action] = Field(min_length=1)
    tickets: Literal["own", "all"] = Field("own", description="own: only tickets this client created")
    expires_at: AwareDatetime | None = None
    rate_per_second: float | None = Field(None, gt=0, description="token bucket refill; none: the default")
    burst: int | None = Field(None, ge=1, description="token bucket size; none: the default")

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class KeyRingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[ApiKey] = Field(min_length=1)

    @model_validator(mode="after")
    def _rotation_overlap_only(self) -> KeyRingConfig:
        counts = collections.Counter(key.name for key in self.keys)
        crowded = sorted(name for name, count in counts.items() if count > MAX_KEYS_PER_CLIENT)
        if crowded:
            raise ValueError(f"more than {MAX_KEYS_PER_CLIENT} keys for client {', '.join(crowded)}")
        return self


@dataclass(frozen=True, slots=True)
class Denied:
    status: int  # 401: who are you? 403: not allowed
    reason: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyRing:
    def __init__(self, config: KeyRingConfig, *, window_s: float = signing.WINDOW_S) -> None:
        self.keys = tuple(config.keys)
        self._by_digest = {key.sha256: key for key in config.keys}
        if len(self._by_digest) != len(config.keys):
            raise ValueError("two API keys share one digest")
        self._by_client: dict[str, list[tuple[ApiKey, bytes]]] = collections.defaultdict(list)
        for key in config.keys:
            self._by_client[key.name].append((key, bytes.fromhex(key.sha256)))
        self._window_s = window_s
        self._recent: dict[str, ApiKey | Denied] = {}  # header value -> outcome; requests repeat one

    def authorize(self, authorization: str | None, action: Action, now: datetime | None = None) -> ApiKey | Denied:
        """Check an `Authorization: Bearer <key>` value for `action`."""
        key = self.authenticate(authorization, now)
        return key if isinstance(key, Denied) else permit(key, action)

    def authenticate(self, authorization: str | None, now: datetime | None = None) -> ApiKey | Denied:
        """Who is this (401 if nobody we know, or the key expired)? Cached by header value."""
        key = self._recent.get(authorization or "")
        if key is None:
            if len(self._recent) >= 256:
                self._recent.clear()
            key = self._recent[authorization or ""] = self._authenticate(authorization or "")
        if isinstance(key, ApiKey) and key.expired(now or datetime.now(UTC)):
            return Denied(401, "expired API key")
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

    def verify(self, headers: Headers, key: bytes | None, value: bytes | None, now: datetime) -> ApiKey | Denied:
        """Who signed this topic record (`shared.signing`)? Every live key of the claimed
        client is tried (two during a rotation)."""
        found: dict[str, str] = {}
        for name, raw in headers:
            if name in (signing.CLIENT, signing.TIMESTAMP, signing.SIGNATURE) and raw is not None:
                found[name] = raw.decode(errors="replace")
        client, timestamp, claimed = (found.get(n) for n in (signing.CLIENT, signing.TIMESTAMP, signing.SIGNATURE))
        if not client or not timestamp or not claimed:
            return Denied(401, "missing signature (ladder_client, ladder_timestamp, ladder_signature)")
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
            return Denied(401, "ladder_timestamp is not whole seconds since the epoch")
        if abs(now.timestamp() - int(timestamp)) > self._window_s:
            return Denied(401, f"signed outside the replay window ({self._window_s:g} s)")
        if key is not None and b"\n" in key:
            return Denied(401, "a signed record's key has no newline")
        message = signing.signed_message(timestamp, client, key, value)
        for candidate, secret in self._by_client.get(client, ()):
            if signing.matches(secret, message, claimed) and not candidate.expired(now):
                return candidate
        return Denied(401, "invalid signature")


def permit(key: ApiKey, action: Action) -> ApiKey | Denied:
    """May this key take `action` (403 if not)?"""
    if action not in key.actions:
        return Denied(403, f"API key {key.name!r} may not {action.value}")
    return key
