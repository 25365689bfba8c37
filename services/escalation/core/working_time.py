"""Working time: SLA clocks that run only while a tier's calendar is open.

An instant is *open* exactly when the charter says so (`WorkingHours.is_open`): its
wall-clock time in the calendar's zone falls on an open day, is no holiday, and lies in
[start, end). Arithmetic is on instants; the calendar is only ever read in local time, so
nights, weekends, holidays and DST changes (a 23- or 25-hour day, a skipped or repeated
hour) count as they really are.

Invariants (tests: tests/unit/escalation/test_working_time.py):
1. `add_working_time(start, d, hours)` is the earliest instant by which `d` of open time
   has passed since `start`: the same answer as counting open minutes one by one.
2. It is monotonic: a later start or a longer duration never gives an earlier deadline.
3. Zero working time is `start` itself; a calendar that is always open is plain addition.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.charter import WEEKDAYS, WorkingHours

# No zone changes its UTC offset twice within this step, so probing at this pace finds
# every change (then bisected to the second).
_PROBE = timedelta(hours=3)
_SEGMENT = timedelta(days=1)  # longest stretch examined at once (a deadline is usually found in the first)
_HORIZON = timedelta(days=366 * 10)  # a calendar that opens less than this is a charter mistake
_SECOND = timedelta(seconds=1)


def add_working_time(start: datetime, duration: timedelta, hours: WorkingHours) -> datetime:
    """The instant when `duration` of `hours`' open time has elapsed since `start`."""
    if start.tzinfo is None:
        raise ValueError("start must carry a timezone")
    if duration <= timedelta(0):
        return start
    if hours.always:
        return start + duration
    remaining = duration
    for opens, closes in open_intervals(hours, start):
        if closes - opens >= remaining:
            return opens + remaining
        remaining -= closes - opens
    raise ValueError(f"the calendar is not open for {duration} within {_HORIZON.days} days")


def open_intervals(hours: WorkingHours, since: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The open stretches from `since` on, in order, as [opens, closes) in UTC (adjacent
    stretches may touch, e.g. at midnight)."""
    zone = hours.zone
    holidays = frozenset(hours.holidays)
    days = frozenset(WEEKDAYS.index(day) for day in hours.days)
    at = since.astimezone(UTC).replace(tzinfo=None)  # naive UTC inside, aware UTC out
    until = at + _HORIZON
    while at < until:
        end, offset = _constant_offset(zone, at)
        # Within [at, end) local time is `utc + offset`: a day's window maps back linearly.
        day = (at + offset).date()
        while (window_day := datetime.combine(day, time(0))) - offset < end:
            if day.weekday() in days and day not in holidays:
                opens = max(window_day + _clock(hours.start) - offset, at)
                closes = min(window_day + _clock(hours.end) - offset, end)
                if opens < closes:
                    yield opens.replace(tzinfo=UTC), closes.replace(tzinfo=UTC)
            day += timedelta(days=1)
        at = end


def _clock(value: time) -> timedelta:
    """A calendar time as an offset into its day (`time.max`, the charter's "24:00", is 24 h)."""
    if value == time.max:
        return timedelta(days=1)
    return timedelta(hours=value.hour, minutes=value.minute, seconds=value.second, microseconds=value.microsecond)


def _offset(zone: ZoneInfo, utc: datetime) -> timedelta:
    offset = zone.fromutc(utc.replace(tzinfo=zone)).utcoffset()
    assert offset is not None
    return offset


def _constant_offset(zone: ZoneInfo, start: datetime) -> tuple[datetime, timedelta]:
    """`(end, offset)`: the zone's UTC offset is `offset` throughout [start, end), and
    `end` is the next offset change (or `start + _SEGMENT` when there is none)."""
    offset = _offset(zone, start)
    probe = start
    while probe - start < _SEGMENT:
        ahead = probe + _PROBE
        if _offset(zone, ahead) != offset:
            return _change(zone, probe, ahead, offset), offset
        probe = ahead
    return probe, offset


def _change(zone: ZoneInfo, low: datetime, high: datetime, offset: timedelta) -> datetime:
    """The first whole second in (low, high] whose offset is not `offset` (offsets change
    on whole seconds, so the one found is the change itself)."""
    low = low.replace(microsecond=0)  # still `offset`: no change falls inside a second
    high = high.replace(microsecond=0) + (_SECOND if high.microsecond else timedelta(0))
    while high - low > _SECOND:
        middle = low + timedelta(seconds=(high - low) // _SECOND // 2)
        if _offset(zone, middle) == offset:
            low = middle
        else:
            high = middle
    return high
