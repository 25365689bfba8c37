"""What of the KPI projection may be pruned without changing any exported value. Pure.

A finite window (`7d`, `30d`) reads its whole days from `daily` and the rest of its first
day from `sample`; `all` reads `total`. So counted samples (no duration) and daily sums
older than the largest finite window, plus a margin of days, are never read again; daily
sums are also read by the weekly report, for this week and REPORT_WEEKS before it. Duration
samples are kept: the `all` window's quantiles are exact nearest-rank over every duration
ever recorded (docs/kpis.md), and no bounded structure holds those exactly; they cost one row
per resolution and per first response (docs/architecture/metrics.md, "Retention").
"""

from __future__ import annotations

from datetime import timedelta

from services.metrics.core.kpis import WINDOWS
from services.metrics.core.visits import DURATION_KINDS, Kind

MARGIN = timedelta(days=2)  # late events, clock skew between services, a window's partial first day
LONGEST_WINDOW = max(span for span in WINDOWS.values() if span is not None)
# The weekly report compares a week with up to this many weeks before it (`/v1/kpis/weeks`).
# A week is whole UTC days: it reads only `daily` (and duration samples, kept anyway).
REPORT_WEEKS = 12


def keep(retention: timedelta) -> timedelta:
    """How long counted samples and daily sums are kept: never less than the largest finite
    window plus the margin (a window must stay exact), nor than the service's retention."""
    return max(LONGEST_WINDOW + MARGIN, retention)


def keep_daily(retention: timedelta) -> timedelta:
    """How long daily sums are kept: as long as counted samples, and at least the report's
    reach (last week and the REPORT_WEEKS before it, this week, plus the margin)."""
    return max(keep(retention), timedelta(weeks=REPORT_WEEKS + 2) + MARGIN)


COUNTED_KINDS = tuple(kind.value for kind in Kind if kind not in DURATION_KINDS)
