"""Each vendor's payload read into one `Change`: what happened to which vendor ticket, in
the vendor's own words (group names, statuses...). `place` maps the words. Pure.

* Zendesk and Freshdesk send, for ticket activity, the JSON body the admin writes in the
  trigger / automation rule (Zendesk: "connect the webhook to a trigger or automation" for
  ticket activity; Freshdesk: "Trigger webhook" action). Both use the body template in
  docs/helpdesks (`event`, `ticket{...}`, `previous_status`, `previous_group`, `comment`, `rating`).
* Jira (Service Management) sends its documented issue payloads: `jira:issue_created`,
  `jira:issue_updated` with a `changelog`, `comment_created`.
* Zammad sends its default trigger payload (`ticket`, `article`); which change it reports
  is the trigger's name (`X-Zammad-Trigger`), named in the mapping's `events`.

Delivery identity (`delivery_key`): the vendor's id for the delivery where it sends one
(Jira `X-Atlassian-Webhook-Identifier`, Zammad `X-Zammad-Delivery`, a Zendesk event's `id`
with `X-Zendesk-Webhook-Id`), else a hash of the body, which a retry repeats byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from services.intake.core.helpdesks.mapping import Kind, Vendor

KINDS: tuple[Kind, ...] = ("created", "status_changed", "group_changed", "public_comment", "satisfaction")


@dataclass(frozen=True, slots=True)
class Change:
    kind: Kind
    ticket: str  # the vendor's ticket id
    subject: str | None = None
    requester: str | None = None
    priority: str | None = None
    channel: str | None = None
    status: str | None = None
    previous_status: str | None = None
    group: str | None = None
    previous_group: str | None = None
    agent: str | None = None
    tags: tuple[str, ...] = ()
    fields: Mapping[str, Any] = field(default_factory=dict)
    public: bool = True
    by_agent: bool = True
    rating: str | None = None
    created_at: str | None = None


@dataclass(frozen=True, slots=True)
class Ignored:
    """Nothing Ladder tracks happened (a private note, an unrelated field): acknowledged."""

    reason: str


@dataclass(frozen=True, slots=True)
class Unplaceable:
    """The delivery should mean something to Ladder but cannot be placed: refused (422),
    dead-lettered with `code` and `reason`; never half-applied."""

    code: str
    reason: str  # one line, never customer text


Reading = Change | Ignored | Unplaceable


def read(
    vendor: Vendor,
    payload: Any,
    headers: Mapping[str, str],
    *,
    group_field: str | None = None,
    satisfaction_field: str | None = None,
    events: Mapping[str, Any] | None = None,
) -> Reading:
    if not isinstance(payload, dict):
        return Unplaceable("not_an_object", "the body is not a JSON object")
    if vendor == "jira":
        return _jira(payload, group_field or "", satisfaction_field)
    if vendor == "zammad":
        return _zammad(payload, headers, events or {}, satisfaction_field)
    return _template(payload)


def delivery_key(vendor: Vendor, payload: Any, headers: Mapping[str, str], body: bytes) -> str:
    """What names this delivery across the vendor's retries (see the module docstring)."""
    if vendor == "jira" and headers.get("x-atlassian-webhook-identifier"):
        return f"jira/{headers['x-atlassian-webhook-identifier']}"
    if vendor == "zammad" and headers.get("x-zammad-delivery"):
        return f"zammad/{headers['x-zammad-delivery']}"
    if vendor == "zendesk" and isinstance(payload, dict) and isinstance(payload.get("id"), str):
        return f"zendesk/{headers.get('x-zendesk-webhook-id', '')}/{payload['id']}"
    return f"{vendor}/sha256/{hashlib.sha256(body).hexdigest()}"


# --- the body template (Zendesk triggers, Freshdesk rules) ----------------------------------


def _template(payload: dict[str, Any]) -> Reading:
    event, ticket = payload.get("event"), payload.get("ticket")
    if event not in KINDS:
        return Unplaceable("unknown_event", f"event: expected one of {', '.join(KINDS)}")
    if not isinstance(ticket, dict) or _text(ticket.get("id")) is None:
        return Unplaceable("missing_field", "ticket.id: required")
    comment = _obj(payload.get("comment"))
    fields = _obj(ticket.get("fields"))
    return Change(
        kind=event,
        ticket=_text(ticket["id"]) or "",
        subject=_text(ticket.get("subject")),
        requester=_text(ticket.get("requester")),
        priority=_text(ticket.get("priority")),
        channel=_text(ticket.get("channel")),
        status=_text(ticket.get("status")),
        previous_status=_text(payload.get("previous_status")),
        group=_text(ticket.get("group")),
        previous_group=_text(payload.get("previous_group")),
        agent=_text(comment.get("author")) or _text(ticket.get("assignee")),
        tags=_tags(ticket.get("tags")),
        fields=fields,
        public=_flag(comment.get("public"), True),
        by_agent=_flag(comment.get("author_is_agent"), True),
        rating=_text(payload.get("rating")),
        created_at=_text(ticket.get("created_at")),
    )


# --- Jira (Service Management) ---------------------------------------------------------------


def _jira(payload: dict[str, Any], group_field: str, satisfaction_field: str | None) -> Reading:
    event = payload.get("webhookEvent")
    issue = payload.get("issue")
    if not isinstance(issue, dict) or _text(issue.get("id")) is None:
        return Unplaceable("missing_field", "issue.id: required")
    fields = _obj(issue.get("fields"))
    base = Change(
        kind="created",
        ticket=_text(issue["id"]) or "",
        subject=_text(fields.get("summary")),
        requester=_text(_at(fields, "reporter", "accountId")),
        priority=_text(_at(fields, "priority", "name")),
        status=_text(_at(fields, "status", "name")),
        group=_text(fields.get(group_field)),
        agent=_text(_at(fields, "assignee", "accountId")) or _text(_at(payload, "user", "accountId")),
        tags=_tags(fields.get("labels")),
        fields=fields,
        created_at=_text(fields.get("created")),
        channel="web",
    )
    if event == "jira:issue_created":
        return base
    if event == "comment_created":
        comment = _obj(payload.get("comment"))
        author = _text(_at(comment, "author", "accountId"))
        return replace(
            base,
            kind="public_comment",
            agent=author or base.agent,
            public=_flag(comment.get("jsdPublic"), True),
            by_agent=author is not None and author != base.requester,
        )
    if event != "jira:issue_updated":
        return Ignored(f"{event or 'an event'} is not one Ladder tracks")
    items = _at(payload, "changelog", "items")
    changes: list[Change] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        names = {item.get("field"), item.get("fieldId")}
        if "status" in names:
            changes.append(
                replace(
                    base,
                    kind="status_changed",
                    status=_text(item.get("toString")) or base.status,
                    previous_status=_text(item.get("fromString")),
                )
            )
        elif group_field in names:
            changes.append(
                replace(
                    base,
                    kind="group_changed",
                    group=_text(item.get("toString")) or base.group,
                    previous_group=_text(item.get("fromString")),
                )
            )
        elif satisfaction_field is not None and satisfaction_field in names:
            value = fields.get(satisfaction_field)  # JSM's satisfaction field: {"rating": 1-5}
            rating = _text(value.get("rating")) if isinstance(value, dict) else _text(value)
            rating = rating or _text(item.get("toString"))
            changes.append(replace(base, kind="satisfaction", rating=rating))
    if not changes:
        return Ignored("no change Ladder tracks (status, group, satisfaction)")
    if len(changes) > 1:
        return Unplaceable("ambiguous", f"one delivery changes {', '.join(c.kind for c in changes)}: one at a time")
    return changes[0]


# --- Zammad ----------------------------------------------------------------------------------


def _zammad(
    payload: dict[str, Any], headers: Mapping[str, str], events: Mapping[str, Any], satisfaction_field: str | None
) -> Reading:
    trigger = headers.get("x-zammad-trigger")
    rule = events.get(trigger or "")
    if rule is None:
        return Unplaceable("unknown_trigger", "X-Zammad-Trigger: not a trigger this mapping names in events")
    ticket = payload.get("ticket")
    if not isinstance(ticket, dict) or _text(ticket.get("id")) is None:
        return Unplaceable("missing_field", "ticket.id: required")
    article = _obj(payload.get("article"))
    return Change(
        kind=rule.kind,
        ticket=_text(ticket["id"]) or "",
        subject=_text(ticket.get("title")),
        requester=_text(_at(ticket, "customer", "email")) or _text(ticket.get("customer_id")),
        priority=_text(ticket.get("priority")),
        channel=_text(ticket.get("create_article_type")),
        status=_text(ticket.get("state")),
        group=_text(ticket.get("group")),
        previous_group=rule.from_group,
        previous_status=rule.from_status,
        agent=_text(_at(article, "created_by", "login")) or _text(_at(ticket, "owner", "login")),
        tags=_tags(ticket.get("tags")),
        fields=ticket,  # Zammad puts custom object attributes on the ticket itself
        public=not _flag(article.get("internal"), False),
        by_agent=_text(article.get("sender")) == "Agent",
        rating=_text(ticket.get(satisfaction_field)) if satisfaction_field else None,
        created_at=_text(ticket.get("created_at")),
    )


# --- helpers ---------------------------------------------------------------------------------


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _at(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _text(value: Any) -> str | None:
    """A scalar, or the display value of a select / named object, as text; None when empty."""
    if isinstance(value, dict):
        value = value.get("value", value.get("name"))
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip() if not isinstance(value, bool) else str(value).lower()
    return text or None


def _tags(value: Any) -> tuple[str, ...]:
    """A list, or the space/comma separated text a placeholder renders."""
    if isinstance(value, list):
        return tuple(t for t in (_text(item) for item in value) if t)
    if isinstance(value, str):
        return tuple(t for t in value.replace(",", " ").split() if t)
    return ()


def _flag(value: Any, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return default
