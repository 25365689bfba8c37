"""The read API and the ladder page.

Served by metrics because metrics already reads every event of the stream into PostgreSQL in
the transaction that claims it: a ticket's timeline and current state are one more
projection of the same events (same consumer group, same principal and ACLs, same
exactly-once rule), and the page's numbers then come from the very snapshot `/v1/kpis`
serves. Aggregates (`/v1/kpis`, `/v1/queues`, `/v1/trends`, `/v1/ladder`, the page) are
public like `/metrics`; anything about one ticket needs a key with action `read`
(`Authorization: Bearer <key>`), and shows only the tickets its client created unless the
key has `tickets: all` (another client's ticket is unknown, 404, as for writes).
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.intake.core.auth import ApiKey, Denied, KeyRing
from services.intake.core.commands import Action
from services.metrics.adapters.read_store import ReadStore
from services.metrics.core.read_model import open_deadlines, visible, who_acted, why
from services.metrics.core.weekly import EXAMPLE_RULE, example_handoffs, week_bounds
from services.router.core.assignment import on_shift
from shared.charter import Charter
from shared.envelope import format_time
from shared.events import TicketId

PAGE = Path(__file__).resolve().parents[1] / "page"


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def read_router(
    store: ReadStore,
    pool: Callable[[], asyncpg.Pool],
    charter: Charter,
    keys: KeyRing | None,
    clock: Callable[[], datetime],
) -> APIRouter:
    router = APIRouter()
    bearer = HTTPBearer(auto_error=False, description="An API key with action `read`.")

    async def reader(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> ApiKey | Denied:
        if keys is None:
            return Denied(401, "no API keys are configured for reading (METRICS_API_KEYS_FILE)")
        return keys.authorize(f"{credentials.scheme} {credentials.credentials}" if credentials else None, Action.READ)

    def unknown(ticket_id: str) -> JSONResponse:
        # another client's ticket is unknown to this key, exactly like intake's writes
        return JSONResponse({"error": "not_found", "detail": f"ticket {ticket_id} is unknown"}, status_code=404)

    def refused(who: Denied) -> JSONResponse:
        return JSONResponse(
            {"error": "forbidden" if who.status == 403 else "unauthenticated", "detail": who.reason},
            status_code=who.status,
            headers={"WWW-Authenticate": "Bearer"} if who.status == 401 else None,
        )

    @router.get("/v1/tickets/{ticket_id}", summary="A ticket's current state and open SLA deadlines (read key)")
    async def ticket(ticket_id: TicketId, who: Annotated[ApiKey | Denied, Depends(reader)]) -> Response:
        if isinstance(who, Denied):
            return refused(who)
        now, timeline = await store.ticket(pool(), ticket_id)
        if now is None or not visible(who.name, who.tickets == "all", now):
            return unknown(ticket_id)
        return JSONResponse(
            {
                "ticket_id": now.ticket_id,
                "status": now.status,
                "priority": now.priority,
                "intent": now.intent,
                "owner": {"tier": now.tier, "queue": now.queue, "agent": now.assignee},
                "communication_owner": now.communication_owner,
                "owners": [t for t in (now.tier, now.communication_owner) if t],
                "queued_at": _time(now.queued_at),
                "open_deadlines": [
                    {"tier": d.tier, "kind": d.kind, "due_at": format_time(d.due_at)}
                    for d in open_deadlines(charter, now, timeline)
                ],
                "events": len(timeline),
            }
        )

    @router.get("/v1/tickets/{ticket_id}/timeline", summary="Every event of a ticket, in stream order (read key)")
    async def timeline(ticket_id: TicketId, who: Annotated[ApiKey | Denied, Depends(reader)]) -> Response:
        if isinstance(who, Denied):
            return refused(who)
        now, events = await store.ticket(pool(), ticket_id)
        if now is None or not visible(who.name, who.tickets == "all", now):
            return unknown(ticket_id)
        return JSONResponse(
            {
                "ticket_id": ticket_id,
                "events": [
                    {
                        "seq": e["seq"],
                        "id": e["event_id"],
                        "type": e["type"],
                        "at": format_time(e["at"]),
                        "source": e["source"],
                        "cycle": e["cycle"],
                        "caused_by": e["causation_id"],
                        "who": who_acted(e["type"], e["body"]),
                        "why": why(e["type"], e["body"]),
                        "fields": {k: v for k, v in e["body"].items() if k != "ticket_id"},
                    }
                    for e in events
                ],
            }
        )

    @router.get("/v1/tickets", summary="Ticket ids starting with `q` (read key)")
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=64)], who: Annotated[ApiKey | Denied, Depends(reader)]
    ) -> Response:
        if isinstance(who, Denied):
            return refused(who)
        return JSONResponse({"tickets": await store.search(pool(), q, None if who.tickets == "all" else who.name)})

    @router.get(
        "/v1/handoffs/examples",
        summary="The week's example handoffs, chosen by the stated rule, among the key's tickets (read key)",
    )
    async def handoff_examples(
        week: Annotated[str, Query(pattern=r"^\d{4}-W\d{2}$")], who: Annotated[ApiKey | Denied, Depends(reader)]
    ) -> Response:
        if isinstance(who, Denied):
            return refused(who)
        since, until = week_bounds(week)
        timelines = await store.handoff_timelines(pool(), since, until, None if who.tickets == "all" else who.name)
        chosen = example_handoffs(timelines, since, until, charter.handoffs.hypothesis_placeholders)
        return JSONResponse(
            {
                "week": week,
                "rule": EXAMPLE_RULE,
                "examples": [
                    {
                        "ticket_id": e.ticket_id,
                        "from_tier": e.from_tier,
                        "to_tier": e.to_tier,
                        "agent": e.agent_id,
                        "requested_at": format_time(e.requested_at),
                        "resolved_at": format_time(e.resolved_at),
                        "resolved_by": e.resolved_by,
                        "seconds_to_resolution": e.seconds,
                        "checklist": e.checklist,
                        "hypothesis": e.hypothesis,
                    }
                    for e in chosen
                ],
            }
        )

    @router.get("/v1/queues", summary="Per tier and queue: backlog and oldest ticket's age; agents on duty (public)")
    async def queues() -> JSONResponse:
        at = clock()
        rows = await store.queues(pool())
        return JSONResponse(
            {
                "at": format_time(at),
                "queues": [
                    {
                        "tier": r["tier"],
                        "queue": r["queue"],
                        "backlog": r["backlog"],
                        "oldest_age_seconds": max((at - r["oldest"]).total_seconds(), 0) if r["oldest"] else None,
                    }
                    for r in rows
                ],
                "on_duty": {tier.value: list(on_shift(charter, tier, at)) for tier in charter.ladder},
            }
        )

    @router.get("/v1/trends", summary="Daily KPI sums per tier over the last `days` (public)")
    async def trends(days: Annotated[int, Query(ge=1, le=90)] = 14) -> JSONResponse:
        since = clock().astimezone(UTC) - timedelta(days=days - 1)
        series: dict[str, dict[str, dict[str, Any]]] = {}
        for r in await store.daily(pool(), since):
            day = series.setdefault(r["day"].isoformat(), {}).setdefault(r["tier"] or "-", {})
            slot = day.setdefault(r["kind"], {"n": 0, "good": 0})
            slot["n"] += r["n"]
            slot["good"] += r["good"]
        return JSONResponse({"days": days, "series": series})

    @router.get("/v1/ladder", summary="The ladder the charter declares: tiers in order, names, queues (public)")
    async def ladder() -> JSONResponse:
        return JSONResponse(
            {
                "tiers": [
                    {
                        "tier": tier.value,
                        "name": charter.tiers[tier].name,
                        "queue": charter.tiers[tier].queue,
                        "shadow_queue": charter.tiers[tier].shadow_queue,
                    }
                    for tier in charter.ladder
                ],
                "jump": charter.routing.jump.model_dump(mode="json") if charter.routing.jump else None,
                "parallel_own": charter.routing.parallel_own.model_dump(mode="json")
                if charter.routing.parallel_own
                else None,
            }
        )

    @router.get("/ladder", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE / "index.html", media_type="text/html")

    @router.get("/ladder/{asset}", include_in_schema=False)
    async def asset(asset: str) -> Response:
        files = {p.name: p for p in PAGE.iterdir() if p.suffix in (".js", ".css")}
        if asset not in files:
            return JSONResponse({"error": "not_found", "detail": "no such asset"}, status_code=404)
        return FileResponse(files[asset])

    return router
