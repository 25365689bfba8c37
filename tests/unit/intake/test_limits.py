"""Token buckets per client: a burst, then the rate; a refusal says how long to wait."""

from services.intake.core.limits import RateLimits


def test_a_burst_then_the_rate_and_refusals_say_how_long():
    limits = RateLimits(rate=2, burst=3)
    assert [limits.take("crm", 0.0) for _ in range(3)] == [None, None, None]
    assert limits.take("crm", 0.0) == 0.5  # one token back in half a second at 2/s
    assert limits.take("crm", 0.25) == 0.25  # a refusal takes nothing: only the time matters
    assert limits.take("crm", 0.5) is None
    assert limits.take("helpdesk", 0.5) is None  # another client has its own bucket


def test_a_keys_own_limits_win_and_the_bucket_never_overfills():
    limits = RateLimits(rate=100, burst=100)
    assert limits.take("survey", 0.0, rate=1, burst=1) is None
    assert limits.take("survey", 0.0, rate=1, burst=1) == 1.0
    assert limits.take("survey", 1000.0, rate=1, burst=1) is None  # long idle: still one token, not 1000
    assert limits.take("survey", 1000.0, rate=1, burst=1) == 1.0
