"""One connected help desk's configuration: a YAML file per connection (its name is the
file's stem, and the client events are attributed to).

It says how to check the vendor's deliveries (where the secret is), and how the vendor's
vocabulary maps to Ladder's: groups to tiers (the tiers live here, never in code), statuses
to open/resolved, priorities, channels, which fields hold the intent, the handoff checklist,
the hypothesis, the fix and the resolution code, and the satisfaction scale.

Invariants (tests/unit/intake/test_helpdesk_mapping.py):
1. A bad file is refused as a whole at start-up, one line per problem naming the entry by
   its path (`groups.Tier 2: ...`), like the charter.
2. Secrets are never in the file: it names an environment variable or a file holding one.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from shared.events import Channel, Priority, Tier
from shared.policy_files import validate_yaml

Vendor = Literal["zendesk", "jira", "zammad", "freshdesk"]
VENDORS: tuple[Vendor, ...] = ("zendesk", "jira", "zammad", "freshdesk")
Kind = Literal["created", "status_changed", "group_changed", "public_comment", "satisfaction"]
Intent = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")]
FieldName = Annotated[str, Field(min_length=1, max_length=200)]
_CONNECTION = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _seconds(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value


class HelpdeskError(ValueError):
    """A mapping file cannot be used; `problems` holds one `path: message` line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"invalid help-desk mapping {source}:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Statuses(_Strict):
    resolved: list[str] = Field(min_length=1, description="Vendor statuses that mean resolved.")
    open: list[str] = Field(min_length=1, description="Vendor statuses that mean open (a move here reopens).")

    @model_validator(mode="after")
    def _disjoint(self) -> Statuses:
        both = set(self.resolved) & set(self.open)
        if both:
            raise ValueError(f"{', '.join(sorted(both))} cannot be both open and resolved")
        return self


class Handoff(_Strict):
    """Vendor fields (custom fields by id or name) that fill Ladder's handoff: the checklist
    items, the hypothesis of an escalation and the fix summary of a return."""

    impact: FieldName | None = None
    steps_attempted: FieldName | None = None
    attachments: FieldName | None = None
    problem_statement: FieldName | None = None
    hypothesis: FieldName | None = None
    fix_summary: FieldName | None = None


class Named(_Strict):
    """A value taken from a named field, or the default when the field is empty."""

    field: FieldName | None = None
    default: Intent


class Blocked(_Strict):
    """The customer is blocked when this tag is on the ticket, or this field is truthy."""

    tag: str | None = None
    field: FieldName | None = None


class EventRule(_Strict):
    """Zammad triggers (by `X-Zammad-Trigger` name) and Freshdesk rules carry no "what
    changed": each trigger the admin sets up is named here with the change it reports.
    `from_group`: the group a group change leaves (vendors send only the new one)."""

    kind: Kind
    from_group: str | None = None
    from_status: str | None = None  # a reopen trigger: the resolved status it leaves


class HelpdeskMapping(_Strict):
    vendor: Vendor
    secret_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] | None = Field(
        None, description="Environment variable holding the signing secret (or Freshdesk's shared secret)."
    )
    secret_file: Path | None = Field(None, description="File holding the secret (takes precedence).")
    max_age: Annotated[timedelta, BeforeValidator(_seconds)] = Field(
        timedelta(minutes=5), description="Zendesk: how far a signature timestamp may be from now (seconds)."
    )
    groups: dict[str, Tier] = Field(min_length=1, description="Vendor group (name or id) -> tier.")
    statuses: Statuses
    priorities: dict[str, Priority] = Field(default_factory=dict)
    default_priority: Priority = Priority.P3
    channels: dict[str, Channel] = Field(default_factory=dict)
    default_channel: Channel = Channel.WEB
    intent: Named = Named(default="general")
    resolution_code: Named = Named(default="solved")
    blocked: Blocked = Blocked()
    handoff: Handoff = Handoff()
    satisfaction: dict[str, Annotated[int, Field(ge=1, le=5)]] = Field(
        default_factory=dict, description="Vendor rating value -> score 1-5 (numbers 1-5 pass through)."
    )
    group_field: FieldName | None = Field(None, description="Jira: the field holding the support group.")
    satisfaction_field: FieldName | None = Field(None, description="Jira, Zammad: the field holding the rating.")
    events: dict[str, EventRule] = Field(default_factory=dict, description="Zammad triggers by name.")

    @model_validator(mode="after")
    def _vendor_needs(self) -> HelpdeskMapping:
        if self.secret_env is None and self.secret_file is None:
            raise ValueError("secret_env or secret_file is required (the secret itself never goes in this file)")
        if self.vendor == "jira" and self.group_field is None:
            raise ValueError("group_field is required for jira (the field that holds the support group)")
        if self.vendor == "zammad" and not self.events:
            raise ValueError("events is required for zammad (trigger name -> kind)")
        return self

    def unknown_groups(self) -> list[str]:
        return [
            f"events.{name}.from_group: {rule.from_group} is not in groups"
            for name, rule in self.events.items()
            if rule.from_group is not None and rule.from_group not in self.groups
        ]


class Connection(BaseModel):
    """A loaded mapping with its name (the file's stem) and its secret."""

    model_config = ConfigDict(frozen=True)

    name: str
    mapping: HelpdeskMapping
    secret: str = Field(repr=False)


def parse_mapping(text: str, source: str = "<mapping>") -> HelpdeskMapping:
    mapping = validate_yaml(text, HelpdeskMapping, "vendor, secret_env, groups, statuses, ...")
    if isinstance(mapping, list):
        raise HelpdeskError(source, mapping)
    if problems := mapping.unknown_groups():
        raise HelpdeskError(source, problems)
    return mapping


def load_connections(directory: Path) -> dict[str, Connection]:
    """Every `*.yaml` in `directory`, by connection name; raises `HelpdeskError` on the first bad file."""
    return {path.stem: load_connection(path) for path in sorted(directory.glob("*.yaml"))}


def load_connection(path: Path) -> Connection:
    """One mapping file with its secret; raises `HelpdeskError` when either is unusable."""
    name = path.stem
    if not _CONNECTION.match(name):
        raise HelpdeskError(str(path), ["document: the file name must be a connection name ([A-Za-z0-9._-])"])
    mapping = parse_mapping(path.read_text(), str(path))
    return Connection(name=name, mapping=mapping, secret=_secret(mapping, str(path)))


def _secret(mapping: HelpdeskMapping, source: str) -> str:
    if mapping.secret_file is not None:
        try:
            secret = mapping.secret_file.read_text().strip()
        except OSError as error:
            raise HelpdeskError(source, [f"secret_file: cannot read ({error.strerror})"]) from None
        where = "secret_file"
    else:
        assert mapping.secret_env is not None
        secret, where = os.environ.get(mapping.secret_env, "").strip(), "secret_env"
    if len(secret) < 16:
        raise HelpdeskError(source, [f"{where}: the secret is missing or shorter than 16 characters"])
    return secret
