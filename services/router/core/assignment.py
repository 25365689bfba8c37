"""Who takes a ticket within a tier: round-robin over the agents on shift now, under a cap.

Invariants (tests: tests/unit/router/test_assignment.py):
1. An agent gets a ticket only while on shift (one of their shift calendars is open), on
   duty (one of the day's hat wearers, when the tier has a rotation) and holding fewer than
   `max_open_per_agent` open tickets of the tier.
2. Round-robin: the eligible agent who least recently got a ticket goes next, ties in roster
   order; over a shift with a steady set of agents nobody is more than one ticket ahead.
3. Rotation ("who wears the L2 hat today"): day d, counted in calendar days from `starting`
   in the tier's working-hours time zone, puts roster agents (d*k + i) mod n, i < k, on duty
   (k = on_duty, n = the roster): the agents take turns in roster order.
4. Office hours: a tier that declares `office_hours` takes ordinary tickets only while that
   calendar is open; urgent tickets (jumps, P1) go to whoever is on shift at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from shared.charter import Charter, Roster
from shared.events import Priority, Tier


@dataclass(slots=True)
class Seat:
    """One agent's load in one tier."""

    open: int = 0
    turn: int = 0  # the tier's turn number when this agent last got a ticket (0: never)


@dataclass(slots=True)
class Desk:
    """A tier's assignment state, valid while the tier's lock is held."""

    tier: Tier
    cap: int
    available: tuple[str, ...]  # on shift and on duty now, in roster order
    live: bool  # ordinary tickets may be assigned now (office hours open, or none declared)
    seats: dict[str, Seat]
    turn: int = 0  # the highest turn handed out so far
    line: list[tuple[Priority, datetime, str]] = field(default_factory=list)  # waiting tickets, a heap (dispatch)
    changed: set[str] = field(default_factory=set)  # agents whose seat changed

    def free(self) -> int:
        """Tickets the agents available now can still take."""
        return sum(max(self.cap - self.seats[agent].open, 0) for agent in self.available)

    def takes(self, urgent: bool) -> bool:
        return self.live or urgent

    def next_agent(self) -> str | None:
        """The least recently assigned available agent with room (ties: roster order)."""
        chosen, oldest = None, 0
        for agent in self.available:
            seat = self.seats[agent]
            if seat.open < self.cap and (chosen is None or seat.turn < oldest):
                chosen, oldest = agent, seat.turn
        return chosen

    def take(self, agent: str) -> None:
        self.turn += 1
        seat = self.seats[agent]
        seat.open += 1
        seat.turn = self.turn
        self.changed.add(agent)

    def release(self, agent: str) -> None:
        self.seats[agent].open -= 1
        self.changed.add(agent)


def hat_wearers(roster: Roster, day: date) -> tuple[str, ...]:
    """The agents on duty on `day` (everyone when the tier has no rotation)."""
    agents = roster.agents
    rotation = roster.rotation
    if rotation is None:
        return tuple(agents)
    first = (day - rotation.starting).days * rotation.on_duty
    return tuple(agents[(first + i) % len(agents)] for i in range(rotation.on_duty))


def on_shift(charter: Charter, tier: Tier, now: datetime) -> tuple[str, ...]:
    """The agents of `tier` who take tickets at `now`, in roster order."""
    spec = charter.tiers[tier]
    roster = spec.roster
    working = {
        agent
        for calendar, agents in roster.shifts.items()
        if charter.calendars[calendar].is_open(now)
        for agent in agents
    }
    duty = hat_wearers(roster, now.astimezone(charter.calendars[spec.working_hours].zone).date())
    return tuple(agent for agent in roster.agents if agent in working and agent in duty)


def is_live(charter: Charter, tier: Tier, now: datetime) -> bool:
    office_hours = charter.tiers[tier].office_hours
    return office_hours is None or charter.calendars[office_hours].is_open(now)


def open_desk(charter: Charter, tier: Tier, now: datetime, seats: dict[str, Seat]) -> Desk:
    """`tier`'s desk at `now` over the seats loaded under its lock. An agent without a seat
    (the roster changed and no process synced it yet) and a tier no longer in use take nothing."""
    turn = max((seat.turn for seat in seats.values()), default=0)
    if tier not in charter.tiers:
        return Desk(tier, 0, (), False, seats, turn)
    available = tuple(agent for agent in on_shift(charter, tier, now) if agent in seats)
    return Desk(
        tier, charter.tiers[tier].roster.max_open_per_agent, available, is_live(charter, tier, now), seats, turn
    )
