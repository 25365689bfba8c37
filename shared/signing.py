"""Signed commands on `support.ticket-commands`: no secret ever travels in a record.

A writer signs each record with HMAC-SHA256 and puts three headers on it:

* `ladder_client`: its client name (the key file's `name`);
* `ladder_timestamp`: when it signed, in whole seconds since the Unix epoch;
* `ladder_signature`: `v1=` and the hex HMAC-SHA256 of `signed_message(...)`, keyed by
  the 32-byte SHA-256 digest of its API key (the digest the key file holds).

The message is `v1`, the timestamp, the client and the record key, each followed by a
newline, then the value, byte for byte. None of the first four may contain a newline (a
record key with one is refused), so the split between key and value is unambiguous.

Invariants:
1. The signature covers the client, the time, the key and the value: changing any byte
   of them, or claiming another client, makes it invalid.
2. A record signed outside the replay window (`window_s` either side of the reader's
   clock) is refused: a copy of an old record is useless. Inside the window a copy is
   the same command (intake identifies an unnamed command by its signature).
3. Signatures are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from shared.envelope import Headers

CLIENT, TIMESTAMP, SIGNATURE = "ladder_client", "ladder_timestamp", "ladder_signature"
VERSION = "v1"
WINDOW_S = 300


def signing_key(api_key: str) -> bytes:
    """The HMAC key of a client: SHA-256 of its API key (what the key file stores, as hex)."""
    return hashlib.sha256(api_key.encode()).digest()


def signed_message(timestamp: str, client: str, key: bytes | None, value: bytes | None) -> bytes:
    return f"{VERSION}\n{timestamp}\n{client}\n".encode() + (key or b"") + b"\n" + (value or b"")


def signature(secret: bytes, message: bytes) -> str:
    return f"{VERSION}=" + hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(client: str, api_key: str, key: bytes | None, value: bytes | None, *, now: float | None = None) -> Headers:
    """The headers that authenticate one record written by `client` with `api_key`."""
    timestamp = str(int(time.time() if now is None else now))
    mac = signature(signing_key(api_key), signed_message(timestamp, client, key, value))
    return [(CLIENT, client.encode()), (TIMESTAMP, timestamp.encode()), (SIGNATURE, mac.encode())]


def matches(secret: bytes, message: bytes, claimed: str) -> bool:
    return hmac.compare_digest(signature(secret, message).encode(), claimed.encode(errors="replace"))
