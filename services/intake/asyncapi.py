"""The documents of the topics, built from the models: AsyncAPI 3.0 (the three topics) and
one JSON Schema per event type. Intake serves the AsyncAPI document (`/asyncapi.json`);
`python -m cli.contracts` (`make contracts`) writes these and the OpenAPI document under
docs/. This module imports nothing of the app, so the app can serve what it builds.

The pydantic models are the source: `shared.events` for events, `core.commands` for commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.intake.core.commands import _ON_TOPIC
from shared import signing, topics
from shared.events import EVENT_TYPES

SCHEMAS = "#/components/schemas/{model}"
_CE_DESCRIPTIONS = {
    "ce_specversion": "CloudEvents version, always 1.0.",
    "ce_id": "Unique event id; an event caused by another has an id derived from its cause.",
    "ce_type": "The event type (this message's name).",
    "ce_source": "The emitting service, e.g. ladder/intake.",
    "ce_time": "When it happened (RFC 3339); the time every KPI uses.",
    "ce_subject": "The ticket id (also the record key).",
    "ce_correlationid": "Id of the ticket's ticket.created event.",
    "ce_causationid": "Id of the command or event that caused this one.",
    "ce_cycle": (
        "The ticket's cycle this event belongs to: 1 from ticket.created, and each ticket.reopened carries the "
        "number of the cycle it starts; an event caused by another carries its cause's. An integer from 1 to "
        "2147483647 as text; any other value makes the record invalid (dead-lettered). Every producer sets it; "
        "a record without it (written before cycles existed) belongs to the ticket's current cycle. An event of "
        "an earlier cycle than the ticket's current one is stale for every consumer (ignored and counted)."
    ),
    "ce_client": (
        "Audit: the upstream client (API key name) on whose command intake emitted this event. Set on every "
        "event intake emits; optional for consumers (a record without it is valid)."
    ),
    "ce_agent": "Audit: the agent the command named (its agent_id), on events of commands that name one.",
    "content-type": "application/json",
}
_COMMAND_HEADERS = {
    signing.CLIENT: "The writing client: its API key's name.",
    signing.TIMESTAMP: (
        "When the record was signed, whole seconds since the Unix epoch. A record signed more than "
        f"{signing.WINDOW_S} s (INTAKE_SIGNATURE_WINDOW_S) before or after intake reads it is dead-lettered "
        "`unauthenticated`: a copy of an old record is useless. Inside the window a copy of a record without a "
        "command_id is the same command (it is identified by its signature), so it takes effect once."
    ),
    signing.SIGNATURE: (
        "`v1=` and the lowercase hex HMAC-SHA256 of the bytes `v1` LF timestamp LF client LF record-key LF value, "
        "keyed by the 32-byte SHA-256 digest of the client's API key. The record key must not contain a line feed. "
        "Compared in constant time; either key of a client in rotation signs. Missing, wrong or stale: dead-lettered "
        "`unauthenticated`. No secret is ever put in a record (the broker's ACLs come on top of this)."
    ),
}
_COMMAND_KEY = (
    "Key every command on a ticket by its ticket id, and a create by the id the client will use for the ticket's "
    "follow-ups (its external_id, or the command_id): one key, one partition, so a ticket's commands are read in the "
    "order they were written. A follow-up read before its create (written with another key, so on another "
    "partition) is not final: intake waits for the create and retries it for a bounded time "
    "(INTAKE_UNKNOWN_TICKET_WAIT_S) before dead-lettering it `unknown_ticket`, and never remembers that as its outcome."
)
_DLQ_HEADERS = {
    "dlq_reason": "Why, in one line (never client text).",
    "dlq_code": "Short reason code (the support_dead_letters_total label), e.g. not_json, invalid_event.",
    "dlq_service": "The service that rejected it.",
    "dlq_source_topic": "Where the record was read.",
    "dlq_source_partition": "Its partition.",
    "dlq_source_offset": "Its offset.",
    "dlq_source_timestamp": "Its timestamp (ms): with topic, partition and offset, the record's identity.",
    "dlq_time": "When it was rejected (RFC 3339).",
}


def _schemas(models: Sequence[type[BaseModel]]) -> dict[str, Any]:
    _, top = models_json_schema([(model, "validation") for model in models], ref_template=SCHEMAS)
    return dict(sorted(top.get("$defs", {}).items()))


def _event_headers(event_type: str) -> dict[str, Any]:
    properties = {name: {"type": "string", "description": text} for name, text in _CE_DESCRIPTIONS.items()}
    properties["ce_specversion"]["const"] = "1.0"
    properties["ce_type"]["const"] = event_type
    properties["content-type"]["const"] = "application/json"
    properties["ce_cycle"]["pattern"] = "^[1-9][0-9]{0,9}$"
    required = ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "ce_correlationid"]
    return {"type": "object", "properties": properties, "required": required}


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of `support.ticket-events`, `support.ticket-commands` and
    `support.dead-letter`: every event and command type with its payload and headers."""
    events = list(EVENT_TYPES.values())
    messages: dict[str, Any] = {}
    for model in events:
        messages[model.__name__] = {
            "name": model.TYPE,
            "title": model.TYPE,
            "summary": (model.__doc__ or model.TYPE).strip().split("\n")[0],
            "contentType": "application/json",
            "headers": _event_headers(model.TYPE),
            "payload": {"$ref": SCHEMAS.format(model=model.__name__)},
            "bindings": {
                "kafka": {"key": {"type": "string", "description": "The ticket id: one ticket, one partition."}}
            },
        }
    for command_model in _ON_TOPIC:
        command = get_args(command_model.model_fields["type"].annotation)[0]
        messages[command_model.__name__] = {
            "name": command,
            "title": command,
            "contentType": "application/json",
            "summary": f"The {command} command; intake answers with an event or a dead letter.",
            "headers": {
                "type": "object",
                "required": list(_COMMAND_HEADERS),
                "properties": {
                    **{name: {"type": "string", "description": text} for name, text in _COMMAND_HEADERS.items()},
                    "ladder_redrive_of": {
                        "type": "string",
                        "description": "Set by `ladder dead-letters redrive` only: the identity of the dead-lettered "
                        "record this is a copy of (topic/partition/offset@timestamp). A command whose first outcome "
                        "was a dead letter is decided again, and takes effect at most once.",
                    },
                },
            },
            "payload": {"$ref": SCHEMAS.format(model=command_model.__name__)},
            "bindings": {"kafka": {"key": {"type": "string", "description": _COMMAND_KEY}}},
        }
    messages["DeadLetter"] = {
        "name": "dead_letter",
        "title": "dead letter",
        "summary": "A rejected record, verbatim, with why.",
        "description": "Key and value are the original bytes; the original headers are kept (credentials "
        "removed) and the dlq_* headers added.",
        "headers": {
            "type": "object",
            "required": list(_DLQ_HEADERS),
            "properties": {name: {"type": "string", "description": text} for name, text in _DLQ_HEADERS.items()},
        },
        "payload": {"description": "The original value, any bytes (possibly not JSON)."},
    }

    def refs(models: Sequence[type[BaseModel]]) -> dict[str, Any]:
        return {model.__name__: {"$ref": f"#/components/messages/{model.__name__}"} for model in models}

    def channel_refs(channel: str, names: list[str]) -> list[dict[str, str]]:
        return [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in names]

    by_emitter: dict[str, list[str]] = {"intake": [], "router": [], "escalation": []}
    for model in events:
        emitter = {
            "ticket.routed": "router",
            "ticket.escalated": "escalation",
            "ticket.bounced": "escalation",
            "ticket.sla_breached": "escalation",
        }.get(model.TYPE, "intake")
        by_emitter[emitter].append(model.__name__)
    kafka = {"kafka": {"partitions": 6, "bindingVersion": "0.5.0"}}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Ladder ticket streams",
            "version": "1.0.0",
            "description": "CloudEvents 1.0 in Kafka binary mode: attributes in ce_* headers, the body JSON. "
            "One ordered stream per ticket (key = ticket id). Events are strict: unknown fields "
            "are refused. Topic names may carry a deployment prefix (LADDER_TOPIC_PREFIX).",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "The local single-node broker of `make up`.",
            }
        },
        "channels": {
            "ticketEvents": {
                "address": topics.TICKET_EVENTS,
                "title": "Ticket events (the truth)",
                "messages": refs(events),
                "bindings": kafka,
            },
            "ticketCommands": {
                "address": topics.TICKET_COMMANDS,
                "title": "Upstream commands",
                "messages": refs(list(_ON_TOPIC)),
                "bindings": kafka,
            },
            "deadLetter": {
                "address": topics.DEAD_LETTER,
                "title": "Rejected records",
                "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
                "bindings": kafka,
            },
        },
        "operations": {
            **{
                f"{service}SendsEvents": {
                    "action": "send",
                    "channel": {"$ref": "#/channels/ticketEvents"},
                    "title": f"{service} emits",
                    "messages": channel_refs("ticketEvents", names),
                }
                for service, names in by_emitter.items()
            },
            "servicesReceiveEvents": {
                "action": "receive",
                "channel": {"$ref": "#/channels/ticketEvents"},
                "title": "router, escalation and metrics consume (each ignores the types it does not handle)",
                "messages": channel_refs("ticketEvents", [m.__name__ for m in events]),
            },
            "intakeReceivesCommands": {
                "action": "receive",
                "channel": {"$ref": "#/channels/ticketCommands"},
                "title": "intake turns valid commands into events",
                "messages": channel_refs("ticketCommands", [m.__name__ for m in _ON_TOPIC]),
            },
            "servicesSendDeadLetters": {
                "action": "send",
                "channel": {"$ref": "#/channels/deadLetter"},
                "title": "every service dead-letters what it cannot process",
                "messages": channel_refs("deadLetter", ["DeadLetter"]),
            },
        },
        "components": {"messages": messages, "schemas": _schemas([*events, *_ON_TOPIC])},
    }


def event_schemas() -> dict[str, dict[str, Any]]:
    """One standalone JSON Schema (2020-12) per event type, keyed by file name."""
    result = {}
    for model in EVENT_TYPES.values():
        schema = model.model_json_schema()
        result[f"{model.TYPE}.json"] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://ladder.example/schemas/{model.TYPE}.json",
            **schema,
        }
    return result


def asyncapi_html(doc: dict[str, Any]) -> str:
    """The AsyncAPI document as one self-contained page: channels, messages, their fields."""
    from html import escape

    schemas = doc["components"]["schemas"]

    def fields(ref: str) -> str:
        schema = schemas[ref.rsplit("/", 1)[-1]]
        rows = []
        for name, spec in schema.get("properties", {}).items():
            kind = (
                spec.get("type")
                or spec.get("$ref", "").rsplit("/", 1)[-1]
                or " | ".join(
                    option.get("type", option.get("$ref", "").rsplit("/", 1)[-1]) for option in spec.get("anyOf", [])
                )
            )
            required = "yes" if name in schema.get("required", []) else ""
            rows.append(
                f"<tr><td><code>{escape(name)}</code></td><td>{escape(str(kind))}</td><td>{required}</td>"
                f"<td>{escape(spec.get('description', ''))}</td></tr>"
            )
        return (
            "<table><tr><th>field</th><th>type</th><th>required</th><th>meaning</th></tr>" + "".join(rows) + "</table>"
        )

    parts = [
        f"<h1>{escape(doc['info']['title'])} <small>AsyncAPI {doc['asyncapi']}</small></h1>",
        f"<p>{escape(doc['info']['description'])}</p><p><a href='/asyncapi.json'>asyncapi.json</a></p>",
    ]
    for channel in doc["channels"].values():
        parts.append(f"<h2><code>{escape(channel['address'])}</code>: {escape(channel['title'])}</h2>")
        for ref in channel["messages"].values():
            message = doc["components"]["messages"][ref["$ref"].rsplit("/", 1)[-1]]
            parts.append(f"<h3>{escape(message['name'])}</h3><p>{escape(message.get('summary', ''))}</p>")
            payload = message["payload"].get("$ref")
            parts.append(fields(payload) if payload else f"<p>{escape(message['payload']['description'])}</p>")
    style = "body{font-family:sans-serif;max-width:70em;margin:auto}td,th{border:1px solid #ccc;padding:2px 6px}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(doc['info']['title'])}</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
