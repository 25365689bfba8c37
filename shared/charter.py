"""The tier charter: the support team's one-page policy, as one validated YAML file.

Router and escalation read it (path in `LADDER_CHARTER`). It declares the tiers in use
(lowest first), which intents each tier owns, the jump and parallel-own rules, the handoff
"definition of done" per tier and what counts as no hypothesis, the return and reopen
paths, SLA targets per tier and priority in each tier's working hours and what a breach
does, and per tier the roster: agents, their cap of open tickets, the daily rotation ("who
wears the L2 hat today"), L3 office hours and the shadow queue for suspected bugs.

Invariants (tests: tests/unit/test_charter.py):
1. An invalid charter is refused as a whole, with one line per problem naming the entry by
   its path (`tiers.L2.sla.P1.first_response: ...`); a service never starts on a bad one.
2. Every name the charter uses (tier, calendar, agent, intent) is defined once and every
   reference resolves. The ladder is the tiers in use in rank order (L0 < L1 < ... < L4).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from shared.events import RANK, HandoffChecklist, Priority, Tier
from shared.policy_files import validate_yaml

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "deploy" / "charter" / "default.yaml"
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class CharterError(ValueError):
    """The charter cannot be used; `problems` holds one `path: message` line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"invalid tier charter {source}:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(str(value).strip()) if isinstance(value, str) else None
    if not match or not any(match.groups()):
        raise ValueError("expected a duration like 90s, 15m, 4h, 1d or 1h30m")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    result = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if result <= timedelta(0):
        raise ValueError("a duration must be positive")
    return result


def _clock(value: object) -> time:
    """ "HH:MM", or "24:00" for the end of the day (time.max)."""
    text = str(value)
    if text == "24:00":
        return time.max
    if not re.fullmatch(r"\d\d:\d\d", text):
        raise ValueError("expected HH:MM (00:00-24:00)")
    try:
        return time.fromisoformat(text)
    except ValueError as error:
        raise ValueError("expected HH:MM (00:00-24:00)") from error


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Clock = Annotated[time, BeforeValidator(_clock)]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
Intent = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)
ChecklistItem = Literal["impact", "steps_attempted", "attachments", "problem_statement"]
assert set(ChecklistItem.__args__) == set(HandoffChecklist.model_fields)  # type: ignore[attr-defined]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkingHours(_Strict):
    """When a calendar is open: `days` from `start` to `end`, local time, minus holidays."""

    timezone: str = "UTC"
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1)
    start: Clock = time(0, 0)
    end: Clock = time.max
    holidays: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError("unknown IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)") from error
        return value

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHours:
        if self.end <= self.start:
            raise ValueError("end must be after start (working hours do not span midnight)")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def always(self) -> bool:
        return len(set(self.days)) == 7 and self.start == time(0, 0) and self.end == time.max and not self.holidays

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        if WEEKDAYS[local.weekday()] not in self.days or local.date() in self.holidays:
            return False
        return self.start <= local.time() and (self.end == time.max or local.time() < self.end)


class SlaTarget(_Strict):
    """Counted in the tier's working hours; a reopen starts a new cycle."""

    first_response: Duration
    time_in_tier: Duration


class BreachAction(StrEnum):
    ALERT = "alert"  # ticket.sla_breached only
    ESCALATE = "escalate"  # ticket.sla_breached, then ticket.escalated (reason sla_breach) to the next tier


class OnBreach(_Strict):
    first_response: BreachAction = BreachAction.ALERT
    time_in_tier: BreachAction = BreachAction.ESCALATE


class Handoff(_Strict):
    """The definition of done before this tier hands a ticket up."""

    checklist: list[ChecklistItem] = Field(default_factory=list)
    hypothesis_required: bool = True


class Rotation(_Strict):
    """Who is on duty today: `on_duty` agents per day, taking turns in roster order from
    `starting` (the "L2 hat")."""

    every: Literal["day"] = "day"
    starting: date
    on_duty: int = Field(1, ge=1)


class Roster(_Strict):
    """Who works a tier: per shift calendar, the agents on shift while it is open."""

    shifts: dict[Name, list[Name]] = Field(min_length=1)
    max_open_per_agent: int = Field(ge=1, le=1000)
    rotation: Rotation | None = None

    @property
    def agents(self) -> list[str]:
        """Everyone on the roster, in roster order (the rotation's order)."""
        return list(dict.fromkeys(agent for agents in self.shifts.values() for agent in agents))


class ShadowClaims(_Strict):
    """Who takes suspected bugs out of a tier's shadow queue, in batches of at most `max_batch`."""

    by: list[Tier] = Field(default_factory=list, description="Tiers whose agents may claim (default: the tier).")
    max_batch: int = Field(50, ge=1, le=500)


class TierCharter(_Strict):
    name: str = Field(min_length=1, max_length=100)
    queue: Name = Field(description="Where tickets of this tier wait when no intent queue applies.")
    working_hours: Name = Field(description="Calendar the SLA clock runs in.")
    sla: dict[Priority, SlaTarget]
    on_breach: OnBreach = OnBreach()
    handoff: Handoff | None = None
    roster: Roster
    office_hours: Name | None = Field(None, description="Calendar of the live window (L3 after standup).")
    shadow_queue: Name | None = Field(None, description="Where suspected bugs wait for this tier to batch them.")
    shadow_claims: ShadowClaims = ShadowClaims()

    def may_claim(self, tier: Tier, own: Tier) -> bool:
        """May an agent of `tier` claim from the shadow queue of this tier (`own`)?"""
        return tier in (self.shadow_claims.by or [own])

    @field_validator("sla")
    @classmethod
    def _every_priority(cls, value: dict[Priority, SlaTarget]) -> dict[Priority, SlaTarget]:
        missing = [p.value for p in Priority if p not in value]
        if missing:
            raise ValueError(f"a target for every priority is required (missing {', '.join(missing)})")
        return value


_COMMUNICATION_SLA = (
    "The communication owner gets its own first-response timer on each visit of the owning tier, "
    "from its own tier's target and calendar; its breach alerts (it owns no ticket to escalate)."
)


class Placement(_Strict):
    tier: Tier
    queue: Name


class Jump(_Strict):
    """A blocked customer whose diagnostics will take time goes straight to `to`, while
    `communication_owner` keeps the customer updated (one communication owner per ticket)."""

    intents: list[Intent] = Field(min_length=1, description="Intents whose diagnostics take time.")
    to: Tier = Tier.L3
    communication_owner: Tier = Tier.L1
    communication_sla: bool = Field(True, description=_COMMUNICATION_SLA)


class ParallelOwn(_Strict):
    """`owner` investigates while `communication_owner` tries a safe workaround and keeps
    the customer updated."""

    intents: list[Intent] = Field(min_length=1)
    owner: Tier = Tier.L2
    communication_owner: Tier = Tier.L1
    communication_sla: bool = Field(True, description=_COMMUNICATION_SLA)


class Routing(_Strict):
    l1_owns: list[Intent] = Field(min_length=1, description="Intents L1 always owns.")
    straight_to_l2: list[Intent] = Field(default_factory=list, description="Intents that skip L1.")
    suspected_bugs: list[Intent] = Field(default_factory=list, description="To the shadow queue of `bug_tier`.")
    bug_tier: Tier = Tier.L3
    queues: dict[Intent, Name] = Field(default_factory=dict, description="Intent-specific queues.")
    fallback: Placement = Field(description="Where an intent nobody declared goes (L1 triage).")
    jump: Jump | None = None
    parallel_own: ParallelOwn | None = None
    reopen_to: Literal["resolving_tier"] | Tier = "resolving_tier"


class Handoffs(_Strict):
    hypothesis_placeholders: list[str] = Field(
        default_factory=list, description="What counts as no hypothesis (compared case- and punctuation-blind)."
    )
    return_to: Tier = Field(Tier.L1, description="Where a quick fix goes to close the loop.")
    skip_levels: Literal["jump_only", "never"] = "jump_only"


class Charter(_Strict):
    version: Literal[1]
    calendars: dict[Name, WorkingHours] = Field(min_length=1)
    tiers: dict[Tier, TierCharter] = Field(min_length=1, description="The tiers in use.")
    routing: Routing
    handoffs: Handoffs = Handoffs()

    @property
    def ladder(self) -> list[Tier]:
        """The tiers in use, lowest first."""
        return sorted(self.tiers, key=RANK.__getitem__)

    def above(self, tier: Tier) -> Tier | None:
        """The next tier up the ladder (None at the top)."""
        higher = [t for t in self.ladder if RANK[t] > RANK[tier]]
        return higher[0] if higher else None

    def calendar(self, name: str) -> WorkingHours:
        return self.calendars[name]

    def communication_rule(self, intent: str, customer_blocked: bool) -> Jump | ParallelOwn | None:
        """The rule that gave a ticket its communication owner: the jump for a blocked
        customer with a jump intent, else parallel-own for its intents."""
        jump, parallel = self.routing.jump, self.routing.parallel_own
        if jump is not None and customer_blocked and intent in jump.intents:
            return jump
        if parallel is not None and intent in parallel.intents:
            return parallel
        return None

    def problems(self) -> list[str]:
        """What the schema alone cannot see: references, uniqueness, the ladder's shape."""
        found: list[str] = []
        in_use = set(self.tiers)
        if Tier.L1 not in in_use:
            found.append("tiers: L1 must be in use (it owns the front line)")
        for tier, spec in self.tiers.items():
            at = f"tiers.{tier}"
            references = [("working_hours", spec.working_hours), ("office_hours", spec.office_hours)]
            references += [(f"roster.shifts.{name}", name) for name in spec.roster.shifts]
            for field, calendar in references:
                if calendar is not None and calendar not in self.calendars:
                    found.append(
                        f"{at}.{field}: no calendar named {calendar!r} (calendars: {', '.join(self.calendars)})"
                    )
            for name, agents in spec.roster.shifts.items():
                if not agents:
                    found.append(f"{at}.roster.shifts.{name}: no agents")
                if len(set(agents)) != len(agents):
                    found.append(f"{at}.roster.shifts.{name}: an agent is listed twice")
            if spec.roster.rotation and spec.roster.rotation.on_duty > len(spec.roster.agents):
                found.append(f"{at}.roster.rotation.on_duty: more agents on duty than on the roster")
            for index, claimer in enumerate(spec.shadow_claims.by):
                if claimer not in in_use:
                    found.append(f"{at}.shadow_claims.by.{index}: {claimer} is not in use")
            if self.above(tier) is not None and spec.handoff is None:
                found.append(f"{at}.handoff: required (the checklist before {tier} hands a ticket up)")
        agents = [a for spec in self.tiers.values() for a in spec.roster.agents]
        if len(set(agents)) != len(agents):
            found.append("tiers: an agent is on the roster of two tiers")
        routing = self.routing
        placed: dict[str, str] = {}
        for field in ("l1_owns", "straight_to_l2", "suspected_bugs"):
            for index, intent in enumerate(getattr(routing, field)):
                if intent in placed:
                    found.append(f"routing.{field}.{index}: intent {intent!r} is already in routing.{placed[intent]}")
                placed.setdefault(intent, field)
        if routing.straight_to_l2 and Tier.L2 not in in_use:
            found.append("routing.straight_to_l2: L2 is not in use")
        if routing.suspected_bugs:
            bug = self.tiers.get(routing.bug_tier)
            if bug is None:
                found.append(f"routing.bug_tier: {routing.bug_tier} is not in use")
            elif bug.shadow_queue is None:
                found.append(f"tiers.{routing.bug_tier}.shadow_queue: required by routing.suspected_bugs")
        if routing.fallback.tier not in in_use:
            found.append(f"routing.fallback.tier: {routing.fallback.tier} is not in use")
        for name, rule in (("jump", routing.jump), ("parallel_own", routing.parallel_own)):
            if rule is None:
                continue
            owner = rule.to if isinstance(rule, Jump) else rule.owner
            for field, tier in (
                ("to" if isinstance(rule, Jump) else "owner", owner),
                ("communication_owner", rule.communication_owner),
            ):
                if tier not in in_use:
                    found.append(f"routing.{name}.{field}: {tier} is not in use")
            if RANK[rule.communication_owner] >= RANK[owner]:
                found.append(f"routing.{name}.communication_owner: must be below the owning tier {owner}")
        if isinstance(routing.reopen_to, Tier) and routing.reopen_to not in in_use:
            found.append(f"routing.reopen_to: {routing.reopen_to} is not in use")
        if self.handoffs.return_to not in in_use:
            found.append(f"handoffs.return_to: {self.handoffs.return_to} is not in use")
        return found


def parse_charter(text: str, source: str = "<charter>") -> Charter:
    """Validate a charter's YAML text; raises `CharterError` listing every problem by path."""
    charter = validate_yaml(text, Charter, "version, calendars, tiers, routing, handoffs")
    if isinstance(charter, list):
        raise CharterError(source, charter)
    problems = charter.problems()
    if problems:
        raise CharterError(source, problems)
    return charter


def load_charter(path: Path | str | None = None) -> Charter:
    """Read the charter at `path` (default: the shipped `deploy/charter/default.yaml`)."""
    location = Path(path) if path else DEFAULT_PATH
    try:
        text = location.read_text()
    except OSError as error:
        raise CharterError(str(location), [f"document: cannot read ({error.strerror})"]) from None
    return parse_charter(text, str(location))


def charter_for_service(path: Path | str | None) -> Charter:
    """The charter a service runs on, or a start-up error listing every problem by path."""
    from shared.settings import StartupError

    try:
        return load_charter(path)
    except CharterError as error:
        raise StartupError(f"LADDER_CHARTER={path or DEFAULT_PATH}: {error}") from None
