"""add_working_time: SLA clocks pause outside working hours, across nights, weekends,
holidays, time zones and DST changes; monotonic, additive, and the same as counting open
minutes one by one (services/escalation/core/working_time.py, invariants 1-3)."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.escalation.core.working_time import add_working_time
from shared.charter import WEEKDAYS, WorkingHours
from tests.unit.escalation.builders import DEFAULT, berlin

L1_HOURS = DEFAULT.calendar("l1-hours")  # Europe/Berlin, every day 06:00-22:00
BUSINESS = DEFAULT.calendar("business")  # Europe/Berlin, Mon-Fri 08:00-18:00, Christmas holidays


def counted(start: datetime, minutes: int, hours: WorkingHours) -> datetime:
    """The reference: walk minute by minute, counting the open ones (the charter's is_open)."""
    at, left = start, minutes
    while left:
        if hours.is_open(at):
            left -= 1
        at += timedelta(minutes=1)
    return at


@pytest.mark.parametrize(
    ("start", "target", "hours", "deadline"),
    [
        # nights: the clock stops at 22:00 and goes on at 06:00
        (berlin(2026, 6, 1, 21, 50), timedelta(minutes=15), L1_HOURS, berlin(2026, 6, 2, 6, 5)),
        (berlin(2026, 6, 1, 23, 30), timedelta(minutes=15), L1_HOURS, berlin(2026, 6, 2, 6, 15)),  # starts at night
        (berlin(2026, 6, 1, 6, 0), timedelta(hours=16), L1_HOURS, berlin(2026, 6, 1, 22, 0)),  # ends as it closes
        (berlin(2026, 6, 1, 6, 0), timedelta(hours=17), L1_HOURS, berlin(2026, 6, 2, 7, 0)),
        # weekends: Friday afternoon to Monday morning
        (berlin(2026, 6, 5, 17, 0), timedelta(hours=2), BUSINESS, berlin(2026, 6, 8, 9, 0)),
        (berlin(2026, 6, 6, 11, 0), timedelta(minutes=30), BUSINESS, berlin(2026, 6, 8, 8, 30)),  # Saturday
        (berlin(2026, 6, 1, 8, 0), timedelta(days=1), BUSINESS, berlin(2026, 6, 3, 12, 0)),  # 24 h = 2.4 working days
        # holidays: 24-26 December and the weekend after
        (berlin(2026, 12, 23, 17, 0), timedelta(hours=2), BUSINESS, berlin(2026, 12, 28, 9, 0)),
        (berlin(2026, 12, 31, 17, 30), timedelta(hours=1), BUSINESS, berlin(2027, 1, 4, 8, 30)),  # 1 Jan, weekend
        # DST starts (2026-03-29, 02:00 -> 03:00): the short night costs no working time
        (berlin(2026, 3, 28, 21, 0), timedelta(hours=2), L1_HOURS, berlin(2026, 3, 29, 7, 0)),
        (berlin(2026, 3, 27, 17, 0), timedelta(hours=2), BUSINESS, berlin(2026, 3, 30, 9, 0)),
        # DST ends (2026-10-25, 03:00 -> 02:00)
        (berlin(2026, 10, 24, 21, 30), timedelta(hours=1), L1_HOURS, berlin(2026, 10, 25, 6, 30)),
        (berlin(2026, 10, 23, 17, 0), timedelta(hours=2), BUSINESS, berlin(2026, 10, 26, 9, 0)),
    ],
)
def test_the_clock_pauses_outside_working_hours(start, target, hours, deadline):
    assert add_working_time(start, target, hours) == deadline
    assert add_working_time(start.astimezone(UTC), target, hours) == deadline  # the same instant
    assert counted(start, int(target.total_seconds()) // 60, hours) == deadline


def test_a_window_across_the_spring_gap_is_an_hour_shorter():
    # 01:00-04:00 local on 2026-03-29 is 01:00-02:00 CET plus 03:00-04:00 CEST: two hours
    night = WorkingHours(timezone="Europe/Berlin", start="01:00", end="04:00")
    assert add_working_time(berlin(2026, 3, 29, 1, 0), timedelta(hours=2), night) == berlin(2026, 3, 29, 4, 0)
    assert add_working_time(berlin(2026, 3, 29, 1, 0), timedelta(minutes=150), night) == berlin(2026, 3, 30, 1, 30)
    # a window that starts inside the gap opens when the clock jumps to 03:00
    late = WorkingHours(timezone="Europe/Berlin", start="02:30", end="05:00")
    assert add_working_time(berlin(2026, 3, 29, 0, 0), timedelta(minutes=30), late) == berlin(2026, 3, 29, 3, 30)


def test_a_window_across_the_autumn_repeat_is_an_hour_longer():
    # 01:00-04:00 local on 2026-10-25 passes 02:00-03:00 twice: four hours
    night = WorkingHours(timezone="Europe/Berlin", start="01:00", end="04:00")
    start = berlin(2026, 10, 25, 1, 0)
    assert add_working_time(start, timedelta(hours=4), night) == datetime(2026, 10, 25, 3, 0, tzinfo=UTC)  # 04:00 CET
    assert add_working_time(start, timedelta(hours=4, minutes=30), night) == berlin(2026, 10, 26, 1, 30)


def test_time_zones_read_the_calendar_in_its_own_zone():
    at = datetime(
        2026, 6, 5, 20, 0, tzinfo=UTC
    )  # Friday: 22:00 in Berlin, 16:00 in New York, Saturday 01:30 in Kolkata
    office = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
    new_york = WorkingHours(timezone="America/New_York", **office)
    kolkata = WorkingHours(timezone="Asia/Kolkata", **office)
    assert add_working_time(at, timedelta(minutes=30), new_york) == datetime(
        2026, 6, 5, 16, 30, tzinfo=ZoneInfo("America/New_York")
    )
    assert add_working_time(at, timedelta(minutes=30), kolkata) == datetime(
        2026, 6, 8, 9, 30, tzinfo=ZoneInfo("Asia/Kolkata")
    )
    assert add_working_time(at, timedelta(minutes=30), BUSINESS) == berlin(2026, 6, 8, 8, 30)


def test_no_time_and_always_open():
    always = WorkingHours()
    start = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert add_working_time(start, timedelta(0), BUSINESS) == start
    assert add_working_time(start, timedelta(hours=5), always) == start + timedelta(hours=5)
    berlin_always = WorkingHours(timezone="Europe/Berlin")  # a 23-hour local day is still 23 hours of time
    assert add_working_time(start, timedelta(hours=24), berlin_always) == start + timedelta(hours=24)


# --- properties ---------------------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "Pacific/Chatham",
    "Asia/Kathmandu",
]
# Around the DST changes of the zones above (Berlin 2026-03-29 and 2026-10-25 among them).
DAYS = [
    date(2026, 3, 27),
    date(2026, 10, 23),
    date(2026, 4, 3),
    date(2026, 11, 1),
    date(2026, 9, 25),
    date(2026, 3, 6),
    date(2026, 6, 1),
]


@st.composite
def calendars(draw: st.DrawFn) -> WorkingHours:
    opens = draw(st.integers(0, 22 * 60))
    closes = draw(st.integers(opens + 120, 24 * 60))
    days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=3, max_size=7, unique=True))
    holidays = draw(
        st.lists(
            st.sampled_from(DAYS).map(lambda d: d + timedelta(days=draw(st.integers(0, 4)))), max_size=2, unique=True
        )
    )
    return WorkingHours(
        timezone=draw(st.sampled_from(ZONES)),
        days=days,
        holidays=holidays,
        start=f"{opens // 60:02d}:{opens % 60:02d}",
        end="24:00" if closes == 24 * 60 else f"{closes // 60:02d}:{closes % 60:02d}",
    )


starts = st.builds(
    lambda day, minute: datetime.combine(day, time(0), UTC) + timedelta(minutes=minute),
    st.sampled_from(DAYS),
    st.integers(0, 4 * 24 * 60),
)


@settings(max_examples=60, deadline=None)
@given(calendars(), starts, st.integers(0, 8 * 60))
def test_the_same_as_counting_minute_by_minute(hours, start, minutes):
    assert add_working_time(start, timedelta(minutes=minutes), hours) == counted(start, minutes, hours)


@settings(max_examples=150, deadline=None)
@given(
    calendars(),
    starts,
    st.integers(0, 3 * 24 * 60 * 60),
    st.integers(0, 3 * 24 * 60 * 60),
    st.integers(0, 5 * 24 * 60 * 60),
)
def test_monotonic_and_additive(hours, start, a, b, later):
    first, second = timedelta(seconds=a), timedelta(seconds=b)
    deadline = add_working_time(start, first, hours)
    assert deadline >= start
    assert add_working_time(start, first + second, hours) >= deadline  # a longer target is never due sooner
    assert add_working_time(start + timedelta(seconds=later), first, hours) >= deadline  # nor a later start
    if b:
        assert add_working_time(deadline, second, hours) == add_working_time(start, first + second, hours)
