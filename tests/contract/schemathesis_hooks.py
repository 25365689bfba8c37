"""Schemathesis hooks for the intake contract test (SCHEMATHESIS_HOOKS=tests.contract.schemathesis_hooks).

A valid Idempotency-Key gets a fresh value per request, as a real client's would: the
generator reuses a few values ("null") across different requests, which the server rightly
refuses (422 idempotency_key_reused). Invalid keys (empty, too long) are left as generated,
so the server's refusal of those is still checked."""

import uuid

import schemathesis


@schemathesis.hook
def before_call(ctx, case, kwargs):
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and 1 <= len(key) <= 255:
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
