"""Per-client rate limits: one token bucket per client. Pure (the caller passes the time).

Invariants:
1. A client may make `burst` requests at once, then `rate` per second on average; a request
   over that is refused with the seconds until a token is back (429 with Retry-After).
2. A refused request takes no token, so a client that backs off as told gets through.
3. Limits come from the client's key (`rate_per_second`, `burst`) or the defaults; the
   bucket is per client, so both keys of a rotation share it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Bucket:
    rate: float
    burst: float
    tokens: float
    at: float

    def take(self, now: float) -> float | None:
        """None if a token was taken; otherwise the seconds until one is back."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.rate


class RateLimits:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, Bucket] = {}

    def take(self, client: str, now: float, rate: float | None = None, burst: int | None = None) -> float | None:
        """Take one request of `client` at `now` (seconds); None, or the seconds to wait."""
        rate, size = rate or self.rate, float(burst or self.burst)
        bucket = self._buckets.get(client)
        if bucket is None or (bucket.rate, bucket.burst) != (rate, size):  # new, or its limits changed
            bucket = self._buckets[client] = Bucket(
                rate, size, size if bucket is None else min(bucket.tokens, size), now
            )
        return bucket.take(now)
