"""Who takes a ticket within a tier (services/router/core/assignment.py invariants 1-4)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.router.core.assignment import Desk, Seat, hat_wearers, is_live, on_shift, open_desk
from shared.charter import Roster, load_charter
from shared.events import Tier

CHARTER = load_charter()
L2_ROSTER = CHARTER.tiers[Tier.L2].roster


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    """November 2026 in Berlin (UTC+1)."""
    return datetime(2026, 11, day, hour - 1, minute, tzinfo=UTC)


def test_the_l2_hat_rotates_daily_in_roster_order():
    assert hat_wearers(L2_ROSTER, date(2026, 1, 5)) == ("gia", "hugo")  # the rotation's first day
    assert hat_wearers(L2_ROSTER, date(2026, 1, 6)) == ("ines", "jonas")
    assert hat_wearers(L2_ROSTER, date(2026, 1, 7)) == ("gia", "hugo")
    assert hat_wearers(L2_ROSTER, date(2026, 1, 4)) == ("ines", "jonas")  # before it started: the same cycle
    assert hat_wearers(CHARTER.tiers[Tier.L1].roster, date(2026, 1, 5)) == tuple(CHARTER.tiers[Tier.L1].roster.agents)


@given(st.integers(1, 7), st.data(), st.dates(date(2020, 1, 1), date(2040, 1, 1)))
def test_over_a_full_cycle_everyone_wears_the_hat_equally_often(size, data, start):
    on_duty = data.draw(st.integers(1, size))
    agents = [f"agent{i}" for i in range(size)]
    roster = Roster.model_validate(
        {
            "shifts": {"always": agents},
            "max_open_per_agent": 1,
            "rotation": {"starting": "2026-01-05", "on_duty": on_duty},
        }
    )
    days = [hat_wearers(roster, start + timedelta(days=d)) for d in range(size)]
    assert all(len(set(day)) == on_duty for day in days)
    assert {agent: sum(agent in day for day in days) for agent in agents} == dict.fromkeys(agents, on_duty)


def test_on_shift_follows_shift_calendars_rotation_and_days():
    assert on_shift(CHARTER, Tier.L1, berlin(24, 10, 30)) == ("ana", "ben", "chloe")  # early shift
    assert on_shift(CHARTER, Tier.L1, berlin(24, 15)) == ("dmitri", "eve", "farid")  # late shift
    assert on_shift(CHARTER, Tier.L1, berlin(24, 23)) == ()
    # 2026-11-24 is day 323 of the rotation: 323 * 2 mod 4 = 2, so ines and jonas wear the hat
    assert on_shift(CHARTER, Tier.L2, berlin(24, 10, 30)) == ("ines", "jonas")
    assert on_shift(CHARTER, Tier.L2, berlin(25, 10, 30)) == ("gia", "hugo")
    assert on_shift(CHARTER, Tier.L2, berlin(28, 10, 30)) == ()  # Saturday
    assert on_shift(CHARTER, Tier.L3, berlin(24, 10, 30)) == ("kofi", "lena")


def test_l3_is_live_only_in_its_office_hours():
    assert is_live(CHARTER, Tier.L3, berlin(24, 9, 20))
    assert not is_live(CHARTER, Tier.L3, berlin(24, 10, 30))
    assert is_live(CHARTER, Tier.L1, berlin(24, 23))  # no office hours declared: always live


def test_a_desk_offers_only_agents_with_a_seat_and_a_tier_in_use():
    seats = {"ana": Seat(), "ben": Seat()}  # chloe has no seat yet
    desk = open_desk(CHARTER, Tier.L1, berlin(24, 10, 30), seats)
    assert desk.available == ("ana", "ben") and desk.cap == 8 and desk.free() == 16
    gone = open_desk(CHARTER, Tier.L4, berlin(24, 10, 30), {"vendor": Seat(3, 9)})
    assert gone.available == () and gone.free() == 0 and gone.turn == 9


@given(st.lists(st.integers(0, 50), min_size=1, max_size=8), st.integers(0, 120))
def test_round_robin_is_fair_over_a_shift(turns, tickets):
    """Whatever the turns agents bring from earlier shifts, every run of n consecutive
    assignments gives each of the n agents exactly one ticket."""
    agents = tuple(f"agent{i}" for i in range(len(turns)))
    desk = Desk(
        Tier.L1, 10_000, agents, True, {a: Seat(0, t) for a, t in zip(agents, turns, strict=True)}, turn=max(turns)
    )
    order = []
    for _ in range(tickets):
        agent = desk.next_agent()
        desk.take(agent)
        order.append(agent)
    for start in range(len(order) - len(agents) + 1):
        assert sorted(order[start : start + len(agents)]) == sorted(agents)
    first = sorted(agents, key=lambda a: (turns[agents.index(a)], agents.index(a)))
    assert order[: len(agents)] == first[: len(order)]


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 4)), max_size=80), st.integers(1, 4))
def test_nobody_is_offered_beyond_the_cap(steps, cap):
    agents = ("ana", "ben", "chloe", "dmitri", "eve")
    desk = Desk(Tier.L1, cap, agents[:3], True, {a: Seat() for a in agents})
    for take, index in steps:
        agent = desk.next_agent() if take else agents[index]
        if take and agent is not None:
            desk.take(agent)
        elif not take and desk.seats[agent].open:
            desk.release(agent)
        assert all(seat.open <= cap for seat in desk.seats.values())
        assert (desk.next_agent() is None) == (desk.free() == 0)
