"""Deliveries as each help desk sends them, signed as it signs them: what `ladder simulate
--via <vendor>` posts and what the webhook tests use as fixtures. The shapes follow the
vendors' documentation (Jira's issue and comment events with `changelog`, Zammad's default
trigger payload and headers) and, for Zendesk triggers and Freshdesk rules, the body
template of docs/helpdesks/<vendor>.md that the admin pastes into each trigger/rule.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from services.intake.core.helpdesks.mapping import HelpdeskMapping, Vendor, parse_mapping
from simulator.agents import Action
from simulator.plans import TicketPlan

MAPPINGS = Path(__file__).resolve().parents[1] / "deploy" / "helpdesks"
COMPLETE_HANDOFF = {  # what an L1 agent fills in before moving a ticket up
    "impact": "all EU users cannot sign in",
    "steps_attempted": ["cleared the SSO session", "tried another browser"],
    "attachments": ["req-8812"],
    "problem_statement": "SSO login fails with an expired signature",
    "hypothesis": "the IdP certificate was rotated",
}


@dataclass(frozen=True, slots=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HelpdeskTicket:
    id: str
    group: str
    status: str
    fields: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)  # besides the fixtures' own


class Helpdesk:
    """One connected help desk: builds the vendor's delivery for each step of a ticket's life."""

    def __init__(
        self, vendor: Vendor, secret: str, *, connection: str | None = None, mapping: HelpdeskMapping | None = None
    ):
        self.vendor, self.secret = vendor, secret
        self.connection = connection or vendor
        self.mapping = mapping or parse_mapping((MAPPINGS / f"{vendor}.yaml").read_text())
        self.group_of = {tier.value: name for name, tier in reversed(list(self.mapping.groups.items()))}
        self.resolved = self.mapping.statuses.resolved[0]
        self.open = self.mapping.statuses.open[1 if len(self.mapping.statuses.open) > 1 else 0]

    # --- lifecycle steps ----------------------------------------------------------------

    def create(
        self,
        ticket_id: str,
        *,
        intent: str = "login",
        priority: str = "P3",
        channel: str | None = None,
        blocked: bool = False,
    ) -> tuple[HelpdeskTicket, Delivery]:
        ticket = HelpdeskTicket(ticket_id, self.group_of["L1"], self.mapping.statuses.open[0])
        ticket.fields[self._name("intent")] = intent
        if blocked and self.mapping.blocked.field:
            ticket.fields[self.mapping.blocked.field] = True
        if blocked and self.mapping.blocked.tag:
            ticket.tags.append(self.mapping.blocked.tag)
        vendor_priority = next((k for k, v in self.mapping.priorities.items() if v.value == priority), None)
        vendor_channel = next((k for k, v in self.mapping.channels.items() if v.value == channel), None)
        return ticket, self._deliver("created", ticket, priority=vendor_priority, channel=vendor_channel)

    def reply(self, ticket: HelpdeskTicket, agent: str, *, public: bool = True) -> Delivery:
        return self._deliver("public_comment", ticket, agent=agent, public=public)

    def move(self, ticket: HelpdeskTicket, tier: str, agent: str, handoff: dict[str, Any] | None = None) -> Delivery:
        previous = ticket.group
        ticket.group = self.group_of[tier]
        for item, value in (handoff or {}).items():
            name = getattr(self.mapping.handoff, item)
            if name is not None:
                ticket.fields[name] = value
        return self._deliver("group_changed", ticket, agent=agent, previous_group=previous)

    def resolve(self, ticket: HelpdeskTicket, agent: str, code: str | None = None) -> Delivery:
        if code is not None and self.mapping.resolution_code.field:
            ticket.fields[self.mapping.resolution_code.field] = code
        previous, ticket.status = ticket.status, self.resolved
        return self._deliver("status_changed", ticket, agent=agent, previous_status=previous)

    def reopen(self, ticket: HelpdeskTicket) -> Delivery:
        previous, ticket.status = ticket.status, self.open
        return self._deliver("status_changed", ticket, previous_status=previous, reopen=True)

    def rate(self, ticket: HelpdeskTicket, score: int) -> Delivery:
        scale = {v: k for k, v in reversed(list(self.mapping.satisfaction.items()))}
        return self._deliver("satisfaction", ticket, rating=scale.get(score, str(score)))

    # --- shapes ---------------------------------------------------------------------------

    def _name(self, item: str) -> str:
        return (self.mapping.intent.field if item == "intent" else None) or item

    def _deliver(self, kind: str, ticket: HelpdeskTicket, **details: Any) -> Delivery:
        if self.vendor == "jira":
            payload, headers = self._jira(kind, ticket, **details)
        elif self.vendor == "zammad":
            payload, headers = self._zammad(kind, ticket, **details)
        else:
            payload, headers = self._template(kind, ticket, **details), {}
        return self.sign(f"/v1/webhooks/{self.vendor}/{self.connection}", payload, headers)

    def sign(self, path: str, payload: Any, headers: dict[str, str] | None = None) -> Delivery:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        signed = {"Content-Type": "application/json", **(headers or {})}
        key = self.secret.encode()
        if self.vendor == "zendesk":
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            digest = hmac.new(key, stamp.encode() + body, hashlib.sha256).digest()
            signed |= {
                "X-Zendesk-Webhook-Id": "01HZLADDERDEMO",
                "X-Zendesk-Webhook-Signature-Timestamp": stamp,
                "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
            }
        elif self.vendor == "jira":
            signed["X-Hub-Signature"] = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        elif self.vendor == "zammad":
            signed["X-Hub-Signature"] = "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest()
        else:
            signed["X-Ladder-Webhook-Secret"] = self.secret
        return Delivery(path, signed, body)

    def _template(self, kind: str, ticket: HelpdeskTicket, **d: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "event": kind,
            "ticket": {
                "id": ticket.id,
                "subject": "Cannot sign in with SSO",
                "requester": f"customer-{ticket.id}",
                "priority": d.get("priority") or "",
                "channel": d.get("channel") or next(iter(self.mapping.channels), "web"),
                "status": ticket.status,
                "group": ticket.group,
                "assignee": d.get("agent") or "",
                "tags": " ".join(["vip", "sso", *ticket.tags]),
                "updated_at": datetime.now(UTC).isoformat(),
                "fields": dict(ticket.fields),
            },
        }
        if "previous_status" in d:
            body["previous_status"] = d["previous_status"]
        if "previous_group" in d:
            body["previous_group"] = d["previous_group"]
        if kind == "public_comment":
            body["comment"] = {"public": d.get("public", True), "author_is_agent": True, "author": d.get("agent")}
        if kind == "satisfaction":
            body["rating"] = d["rating"]
        return body

    def _jira(self, kind: str, ticket: HelpdeskTicket, **d: Any) -> tuple[dict[str, Any], dict[str, str]]:
        group_field = self.mapping.group_field or "customfield_10050"
        reporter = {"accountId": f"cust-{ticket.id}", "displayName": "Customer"}
        fields: dict[str, Any] = {
            "summary": "Cannot sign in with SSO",
            "reporter": reporter,
            "priority": {"name": d.get("priority") or "Medium", "id": "3"},
            "status": {"name": ticket.status},
            "labels": ["sso", *ticket.tags],
            "created": "2026-03-02T09:00:00.000+0000",
            group_field: {"value": ticket.group, "id": "10100"},
            "assignee": {"accountId": d["agent"]} if d.get("agent") else None,
            **{name: _jira_value(value) for name, value in ticket.fields.items()},
        }
        issue = {"id": ticket.id, "key": f"SUP-{ticket.id}", "fields": fields}
        payload: dict[str, Any] = {"timestamp": 1772442000000, "issue": issue, "user": {"accountId": "jira-admin"}}
        if kind == "created":
            payload |= {"webhookEvent": "jira:issue_created", "issue_event_type_name": "issue_created"}
        elif kind == "public_comment":
            payload |= {
                "webhookEvent": "comment_created",
                "comment": {
                    "id": uuid.uuid4().hex[:8],
                    "author": {"accountId": d.get("agent")},
                    "body": "We are looking into it.",
                    "jsdPublic": d.get("public", True),
                },
            }
        else:
            item: dict[str, Any]
            if kind == "group_changed":
                item = {
                    "field": "Support group",
                    "fieldId": group_field,
                    "fromString": d["previous_group"],
                    "toString": ticket.group,
                }
            elif kind == "status_changed":
                item = {
                    "field": "status",
                    "fieldId": "status",
                    "fromString": d["previous_status"],
                    "toString": ticket.status,
                }
            else:
                field_name = self.mapping.satisfaction_field or "customfield_10080"
                fields[field_name] = {"rating": int(d["rating"])}
                item = {"field": "Satisfaction", "fieldId": field_name, "fromString": None, "toString": d["rating"]}
            payload |= {
                "webhookEvent": "jira:issue_updated",
                "issue_event_type_name": "issue_generic",
                "changelog": {"id": uuid.uuid4().hex[:8], "items": [item]},
            }
        return payload, {"X-Atlassian-Webhook-Identifier": uuid.uuid4().hex, "X-Atlassian-Webhook-Flow": "Primary"}

    def _zammad(self, kind: str, ticket: HelpdeskTicket, **d: Any) -> tuple[dict[str, Any], dict[str, str]]:
        trigger = self._trigger(kind, d)
        data: dict[str, Any] = {
            "id": int(ticket.id) if ticket.id.isdigit() else ticket.id,
            "number": f"31{ticket.id}",
            "title": "Cannot sign in with SSO",
            "group": {"name": ticket.group, "id": 1},
            "state": ticket.status,
            "priority": d.get("priority") or "2 normal",
            "customer": {"email": f"customer-{ticket.id}@example.com", "login": f"customer-{ticket.id}"},
            "owner": {"login": d.get("agent") or "-"},
            "create_article_type": d.get("channel") or "email",
            "created_at": "2026-03-02T09:00:00.000Z",
            "tags": ["sso", *ticket.tags],
            **{name: "\n".join(value) if isinstance(value, list) else value for name, value in ticket.fields.items()},
        }
        if kind == "satisfaction" and self.mapping.satisfaction_field:
            data[self.mapping.satisfaction_field] = d["rating"]
        article = {
            "id": uuid.uuid4().int % 100000,
            "internal": not d.get("public", True),
            "sender": "Agent" if kind == "public_comment" else "Customer",
            "type": "email",
            "created_by": {"login": d.get("agent") or f"customer-{ticket.id}"},
            "body": "text",
        }
        return {"ticket": data, "article": article}, {
            "X-Zammad-Trigger": trigger,
            "X-Zammad-Delivery": uuid.uuid4().hex,
        }

    def _trigger(self, kind: str, d: dict[str, Any]) -> str:
        for name, rule in self.mapping.events.items():
            if rule.kind != kind:
                continue
            if kind == "group_changed" and rule.from_group != d.get("previous_group"):
                continue
            if kind == "status_changed" and (rule.from_status is not None) != bool(d.get("reopen")):
                continue
            return name
        raise ValueError(f"the zammad mapping names no trigger for {kind}")


class HelpdeskAgents:
    """The simulated agents (simulator.agents) working in a connected help desk, as
    `ladder simulate --via` runs them: each command they decide becomes what they do in the
    help desk, that is the delivery it sends. Placed by intake, a delivery is the command a
    direct client sends, except a reply, which counts for the tier of the ticket's group (a
    communication owner's reply included: the mappings cannot tell who speaks for whom).

    Ladder writes nothing back to a help desk: where Ladder moved a ticket by itself (routing,
    a jump, an SLA breach, a bounce), its group here follows silently, as agents watching the
    ladder page would move it; their move sends nothing Ladder acts on."""

    def __init__(self, desk: Helpdesk) -> None:
        self.desk = desk

    def create(self, plan: TicketPlan, ticket_id: str) -> tuple[HelpdeskTicket, Delivery]:
        return self.desk.create(
            ticket_id, intent=plan.intent, priority=plan.priority, channel=plan.channel, blocked=plan.blocked
        )

    def follow(self, ticket: HelpdeskTicket, event_type: str, body: dict[str, Any]) -> None:
        """Keep the ticket's group where Ladder has the ticket."""
        tier = {"ticket.routed": body.get("tier"), "ticket.bounced": body.get("to_tier")}.get(event_type)
        if tier in self.desk.group_of:
            ticket.group = self.desk.group_of[tier]

    def act(self, ticket: HelpdeskTicket, action: Action) -> Delivery:
        body = action.body
        match action.path:
            case "responses":
                return self.desk.reply(ticket, body["agent_id"])
            case "escalations":
                handoff = {**body["checklist"], "hypothesis": body["hypothesis"]}
                return self.desk.move(ticket, body["to_tier"], body["agent_id"], handoff)
            case "returns":
                fix = {"fix_summary": body["fix_summary"]}
                return self.desk.move(ticket, body.get("to_tier", "L1"), body["agent_id"], fix)
            case "resolution":
                return self.desk.resolve(ticket, body["agent_id"], body["resolution_code"])
            case "reopen":
                return self.desk.reopen(ticket)
            case "rating":
                return self.desk.rate(ticket, body["score"])
        raise ValueError(f"no help-desk step for {action.path}")


def _jira_value(value: Any) -> Any:
    """Jira renders multi-line text fields as text, select lists as {"value": ...}."""
    return "\n".join(value) if isinstance(value, list) else value
