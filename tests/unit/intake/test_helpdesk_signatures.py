"""Vendor signatures: good, bad, missing and (Zendesk) stale, each vendor as it documents it."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from services.intake.core.helpdesks.signatures import verify_hub, verify_shared_secret, verify_zendesk

SECRET = "dGhpc19zZWNyZXRfaXNfbG9uZw"
BODY = b'{"event":"created","ticket":{"id":"42"}}'
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AGE = timedelta(minutes=5)


def zendesk_headers(stamp: str = "2026-03-02T09:00:00Z", body: bytes = BODY, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return {
        "x-zendesk-webhook-signature": base64.b64encode(digest).decode(),
        "x-zendesk-webhook-signature-timestamp": stamp,
    }


def test_zendesk_good_signature_over_timestamp_and_raw_body():
    assert verify_zendesk(zendesk_headers(), BODY, SECRET, now=NOW, max_age=AGE) is None
    unix = zendesk_headers(stamp=str(int(NOW.timestamp())))
    assert verify_zendesk(unix, BODY, SECRET, now=NOW, max_age=AGE) is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (
            zendesk_headers(body=b'{"event":"created","ticket":{"id":"43"}}'),
            "X-Zendesk-Webhook-Signature: does not match",
        ),
        (zendesk_headers(secret="another-secret-entirely"), "X-Zendesk-Webhook-Signature: does not match"),
        ({"x-zendesk-webhook-signature-timestamp": "2026-03-02T09:00:00Z"}, "missing X-Zendesk-Webhook-Signature"),
        ({"x-zendesk-webhook-signature": "abc="}, "missing X-Zendesk-Webhook-Signature-Timestamp"),
        (zendesk_headers(stamp="yesterday"), "X-Zendesk-Webhook-Signature-Timestamp: not a timestamp"),
    ],
)
def test_zendesk_bad_or_missing_signature_is_refused(headers, reason):
    refused = verify_zendesk(headers, BODY, SECRET, now=NOW, max_age=AGE)
    assert refused is not None and refused.reason == reason


@pytest.mark.parametrize("offset", [timedelta(minutes=6), -timedelta(minutes=6)])
def test_zendesk_stale_timestamp_is_refused_even_when_correctly_signed(offset):
    stamp = (NOW - offset).strftime("%Y-%m-%dT%H:%M:%SZ")
    refused = verify_zendesk(zendesk_headers(stamp=stamp), BODY, SECRET, now=NOW, max_age=AGE)
    assert refused is not None and "stale" in refused.reason


@pytest.mark.parametrize(("algorithm", "digest"), [("sha256", hashlib.sha256), ("sha1", hashlib.sha1)])
def test_hub_signature_jira_sha256_and_zammad_sha1(algorithm, digest):
    good = f"{algorithm}=" + hmac.new(SECRET.encode(), BODY, digest).hexdigest()
    assert verify_hub({"x-hub-signature": good}, BODY, SECRET, algorithm=algorithm) is None
    assert (
        verify_hub(
            {"x-hub-signature": good.upper().replace(algorithm.upper(), algorithm)}, BODY, SECRET, algorithm=algorithm
        )
        is None
    )  # hex case does not matter
    bad = verify_hub({"x-hub-signature": good}, BODY + b" ", SECRET, algorithm=algorithm)
    assert bad is not None and bad.reason == "X-Hub-Signature: does not match"
    missing = verify_hub({}, BODY, SECRET, algorithm=algorithm)
    assert missing is not None and missing.reason == "missing X-Hub-Signature"
    other = "sha1" if algorithm == "sha256" else "sha256"
    wrong_kind = verify_hub({"x-hub-signature": f"{other}=00"}, BODY, SECRET, algorithm=algorithm)
    assert wrong_kind is not None and wrong_kind.reason == f"X-Hub-Signature: expected {algorithm}=<hex>"


def test_freshdesk_shared_secret_in_a_header_or_as_the_basic_auth_password():
    assert verify_shared_secret({"x-ladder-webhook-secret": SECRET}, SECRET) is None
    basic = "Basic " + base64.b64encode(f"freshdesk:{SECRET}".encode()).decode()
    assert verify_shared_secret({"authorization": basic}, SECRET) is None
    wrong = verify_shared_secret({"x-ladder-webhook-secret": SECRET + "x"}, SECRET)
    assert wrong is not None and wrong.reason == "webhook secret does not match"
    missing = verify_shared_secret({"authorization": "Bearer " + SECRET}, SECRET)
    assert missing is not None and missing.reason.startswith("missing X-Ladder-Webhook-Secret")
