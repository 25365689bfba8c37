"""Is this delivery the help desk's? Each vendor's documented scheme, checked before the
body is parsed. Pure: headers, raw body, secret and the time in; `None` or a refusal out.

Invariants (tests/unit/intake/test_helpdesk_signatures.py):
1. Comparisons are constant-time (`hmac.compare_digest`) over the whole expected value.
2. A missing, malformed or wrong signature is refused with a reason naming the header,
   never echoing what was sent.
3. Zendesk: the signed timestamp must be within `max_age` of now, either side, so a
   captured delivery cannot be replayed later.
4. Freshdesk signs nothing: a shared secret in `X-Ladder-Webhook-Secret` or as the basic-auth
   password is all it can prove (weaker: it travels in every request).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

ZENDESK_SIGNATURE = "x-zendesk-webhook-signature"
ZENDESK_TIMESTAMP = "x-zendesk-webhook-signature-timestamp"
HUB_SIGNATURE = "x-hub-signature"  # Jira (sha256=) and Zammad (sha1=)
FRESHDESK_SECRET = "x-ladder-webhook-secret"
AUTHORIZATION = "authorization"


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str  # one line, names the header; never the value sent


def verify_zendesk(
    headers: Mapping[str, str], body: bytes, secret: str, *, now: datetime, max_age: timedelta
) -> Refused | None:
    """base64(HMAC-SHA256(secret, timestamp + raw body)), the timestamp header as sent."""
    signature, stamp = headers.get(ZENDESK_SIGNATURE), headers.get(ZENDESK_TIMESTAMP)
    if not signature or not stamp:
        return Refused(f"missing {_name(ZENDESK_SIGNATURE) if not signature else _name(ZENDESK_TIMESTAMP)}")
    signed_at = _instant(stamp)
    if signed_at is None:
        return Refused(f"{_name(ZENDESK_TIMESTAMP)}: not a timestamp")
    if abs(now - signed_at) > max_age:
        return Refused(f"{_name(ZENDESK_TIMESTAMP)}: stale (more than {int(max_age.total_seconds())}s from now)")
    digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    if not hmac.compare_digest(base64.b64encode(digest), signature.strip().encode(errors="replace")):
        return Refused(f"{_name(ZENDESK_SIGNATURE)}: does not match")
    return None


def verify_hub(headers: Mapping[str, str], body: bytes, secret: str, *, algorithm: str) -> Refused | None:
    """`X-Hub-Signature: <algorithm>=<hex HMAC(secret, raw body)>` (Jira sha256, Zammad sha1)."""
    signature = headers.get(HUB_SIGNATURE)
    if not signature:
        return Refused(f"missing {_name(HUB_SIGNATURE)}")
    method, _, sent = signature.strip().partition("=")
    if method.lower() != algorithm or not sent:
        return Refused(f"{_name(HUB_SIGNATURE)}: expected {algorithm}=<hex>")
    expected = hmac.new(secret.encode(), body, algorithm).hexdigest()
    if not hmac.compare_digest(expected.encode(), sent.lower().encode(errors="replace")):
        return Refused(f"{_name(HUB_SIGNATURE)}: does not match")
    return None


def verify_shared_secret(headers: Mapping[str, str], secret: str) -> Refused | None:
    """Freshdesk: the secret the admin put in the rule's header, or as the basic-auth password."""
    sent = headers.get(FRESHDESK_SECRET)
    if sent is None:
        scheme, _, credentials = (headers.get(AUTHORIZATION) or "").partition(" ")
        if scheme.lower() != "basic" or not credentials:
            return Refused(f"missing {_name(FRESHDESK_SECRET)} (or basic auth)")
        try:
            _, _, sent = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return Refused("Authorization: not basic credentials")
    if not hmac.compare_digest(sent.encode(errors="replace"), secret.encode()):
        return Refused("webhook secret does not match")
    return None


def _instant(stamp: str) -> datetime | None:
    """Zendesk sends ISO 8601 (`2024-04-17T17:18:10Z`); whole Unix seconds are taken too."""
    text = stamp.strip()
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else None


def _name(header: str) -> str:
    return "-".join(part.capitalize() for part in header.split("-"))
