"""Drives the planned tickets through intake (HTTP and the commands topic, or, with `via`,
a connected help desk's webhooks instead of HTTP) and watches the event stream so each
ticket's agents act on what really happened.

Every command carries an idempotency key (HTTP) or command id (topic) made from the run id,
so a retried request never doubles an event (a help desk's retried delivery is the same
delivery, byte for byte, as the vendors retry). A ticket that shows no progress for
`stall_s` is reported as stuck rather than waited on forever.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.intake.core.tickets import RejectCode
from shared import signing
from shared.kafka import client_options, topic_partitions
from shared.topics import Topics
from simulator.agents import Seen, react
from simulator.helpdesks import Delivery, HelpdeskAgents, HelpdeskTicket
from simulator.plans import TicketPlan

# Deliberately bad commands on the topic, and the dead-letter code intake must answer with.
BAD_COMMANDS: list[tuple[str, bytes, bool, str]] = [  # label, value, authenticated, expected dlq_code
    ("not JSON", b"\xffnot json at all", True, "not_json"),
    ("unknown type", orjson.dumps({"type": "teleport_ticket", "ticket_id": "t"}), True, "unknown_command"),
    (
        "invalid field",
        orjson.dumps(
            {"type": "create_ticket", "customer_id": "c", "channel": "fax", "subject": "s", "intent": "login"}
        ),
        True,
        "invalid_command",
    ),
    ("not signed", orjson.dumps({"type": "reopen_ticket", "ticket_id": "t"}), False, "unauthenticated"),
    (
        "unknown ticket",
        orjson.dumps(
            {
                "type": "resolve_ticket",
                "ticket_id": "sim-no-such-ticket",
                "tier": "L1",
                "agent_id": "a",
                "resolution_code": "x",
            }
        ),
        True,
        "unknown_ticket",
    ),
]


@dataclass
class Run:
    run_id: str
    plans: list[TicketPlan]
    tickets: dict[int, str] = field(default_factory=dict)  # plan index -> ticket id
    done: set[int] = field(default_factory=set)
    stuck: set[int] = field(default_factory=set)
    commands: dict[str, int] = field(default_factory=lambda: {"http": 0, "topic": 0, "webhook": 0})
    dead_letters: dict[str, tuple[str, str] | None] = field(default_factory=dict)  # label -> (code, reason)


class Driver:
    def __init__(
        self,
        *,
        intake_url: str,
        api_key: str,
        client: str = "helpdesk",
        bootstrap: str,
        topics: Topics,
        concurrency: int = 200,
        rate: float | None = None,
        stall_s: float = 60.0,
        via: HelpdeskAgents | None = None,
        bad_commands: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`via`: the tickets planned for HTTP go through this help desk's webhooks instead.
        `bad_commands`: also send BAD_COMMANDS and wait for their dead letters.
        `transport`: how to reach intake over HTTP (tests: in process)."""
        self.intake_url, self.api_key, self.bootstrap, self.topics = intake_url, api_key, bootstrap, topics
        self.client = client  # the key's name: topic commands are signed by it (shared.signing)
        self.concurrency, self.rate, self.stall_s = concurrency, rate, stall_s
        self.via, self.bad_commands, self.transport = via, bad_commands, transport
        self._inboxes: dict[str, asyncio.Queue[tuple[str, dict[str, Any]]]] = {}
        self._by_external: dict[str, asyncio.Future[str]] = {}

    async def run(self, run: Run, progress: Callable[[int], None] = lambda _: None) -> Run:
        events = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, **client_options())
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5, **client_options())
        await events.start()
        await producer.start()
        try:
            partitions = await topic_partitions(self.bootstrap, self.topics.events)
            events.assign(partitions)
            for tp, offset in (await events.end_offsets(partitions)).items():
                events.seek(tp, offset)
            watcher = asyncio.create_task(self._watch(events))
            dead = asyncio.create_task(self._send_bad_commands(run, producer) if self.bad_commands else _nothing())
            async with (
                httpx.AsyncClient(
                    base_url=self.intake_url,
                    timeout=30,
                    headers={"Authorization": f"Bearer {self.api_key}"},
                    transport=self.transport,
                ) as http,
                # the help desk's own client: it signs its deliveries and holds no intake key
                httpx.AsyncClient(base_url=self.intake_url, timeout=30, transport=self.transport) as hooks,
            ):
                gate = asyncio.Semaphore(self.concurrency)
                started = time.monotonic()

                async def one(plan: TicketPlan) -> None:
                    async with gate:
                        await self._live(run, plan, http, hooks, producer)
                        progress(1)

                tasks = []
                for plan in run.plans:
                    if self.rate:
                        ahead = started + plan.index / self.rate - time.monotonic()
                        if ahead > 0:
                            await asyncio.sleep(ahead)
                    tasks.append(asyncio.create_task(one(plan)))
                await asyncio.gather(*tasks)
            await dead
            watcher.cancel()
        finally:
            await producer.stop()
            await _close(events)
        return run

    async def _watch(self, consumer: AIOKafkaConsumer) -> None:
        """Route each event to its ticket's inbox (tickets are learned by external id)."""
        while True:
            for records in (await _poll(consumer, timeout_ms=200, max_records=5000)).values():
                for record in records:
                    headers = dict(record.headers)
                    kind = (headers.get("ce_type") or b"").decode()
                    ticket = (record.key or b"").decode(errors="replace")
                    try:
                        body = orjson.loads(record.value or b"")
                    except orjson.JSONDecodeError:
                        continue
                    if kind == "ticket.created" and body.get("external_id") in self._by_external:
                        future = self._by_external[body["external_id"]]
                        if not future.done():
                            future.set_result(ticket)
                        self._inboxes.setdefault(ticket, asyncio.Queue())
                    inbox = self._inboxes.get(ticket)
                    if inbox is not None:
                        inbox.put_nowait((kind, body))

    async def _live(
        self,
        run: Run,
        plan: TicketPlan,
        http: httpx.AsyncClient,
        hooks: httpx.AsyncClient,
        producer: AIOKafkaProducer,
    ) -> None:
        desk: HelpdeskTicket | None = None  # the ticket in the help desk, when it goes via one
        external = f"sim-{run.run_id}-{plan.index}"
        if self.via is not None and plan.transport == "http":
            external = f"{zlib.crc32(run.run_id.encode())}{plan.index:06d}"  # a vendor's numeric ticket id
        self._by_external[external] = asyncio.get_running_loop().create_future()
        create = {
            "customer_id": f"cust-{plan.index % 97}",
            "channel": plan.channel,
            "subject": f"Simulated ticket {plan.index}",
            "intent": plan.intent,
            "priority": plan.priority,
            "customer_blocked": plan.blocked,
            "external_id": external,
        }
        steps = 0
        if self.via is not None and plan.transport == "http":
            desk, delivery = self.via.create(plan, external)
            await self._deliver(run, hooks, delivery)
        elif plan.transport == "topic":
            await self._publish(run, producer, {"type": "create_ticket", **create}, f"{external}/create", external)
        else:
            await self._post(run, http, "/v1/tickets", create, f"{external}/create")
        try:
            ticket = await asyncio.wait_for(self._by_external[external], self.stall_s)
        except TimeoutError:
            run.stuck.add(plan.index)
            return
        run.tickets[plan.index] = ticket
        inbox = self._inboxes.setdefault(ticket, asyncio.Queue())
        seen = Seen()
        while not seen.done:
            try:
                kind, body = await asyncio.wait_for(inbox.get(), self.stall_s)
            except TimeoutError:
                run.stuck.add(plan.index)
                return
            if desk is not None and self.via is not None:
                self.via.follow(desk, kind, body)
            for action in react(plan, seen, kind, body):
                steps += 1
                key = f"{external}/{steps}"
                if desk is not None and self.via is not None:
                    await self._deliver(run, hooks, self.via.act(desk, action))
                elif plan.transport == "topic":
                    command = {"type": _TOPIC_TYPES[action.path], "ticket_id": ticket, **action.body}
                    await self._publish(run, producer, command, key, ticket)
                else:
                    await self._post(run, http, f"/v1/tickets/{ticket}/{action.path}", action.body, key)
        run.done.add(plan.index)
        del self._inboxes[ticket]

    async def _post(self, run: Run, http: httpx.AsyncClient, path: str, body: dict[str, Any], key: str) -> None:
        """POST with the command's idempotency key; retried on 503 or a broken connection.
        A 409 is an answer too (the ticket moved on: another command won the race)."""
        for attempt in range(6):
            try:
                response = await http.post(path, json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code != 503:
                if response.status_code >= 400 and response.status_code != 409:
                    raise RuntimeError(f"intake answered {response.status_code} to {path}: {response.text[:300]}")
                run.commands["http"] += 1
                return
            await asyncio.sleep(0.2 * 2**attempt)
        raise RuntimeError(f"intake unavailable for {path}")

    async def _deliver(self, run: Run, hooks: httpx.AsyncClient, delivery: Delivery) -> None:
        """POST a help desk's delivery; on 503 or a broken connection the same delivery again,
        as the vendors retry. A 422 for the ticket's state is the webhook's 409 (the ticket
        moved on; intake dead-letters the late delivery)."""
        for attempt in range(6):
            try:
                response = await hooks.post(delivery.path, content=delivery.body, headers=delivery.headers)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code != 503:
                state = response.status_code == 422 and response.json().get("error") in _STATE_RULES
                if response.status_code >= 400 and not state:
                    raise RuntimeError(
                        f"intake answered {response.status_code} to {delivery.path}: {response.text[:300]}"
                    )
                run.commands["webhook"] += 1
                return
            await asyncio.sleep(0.2 * 2**attempt)
        raise RuntimeError(f"intake unavailable for {delivery.path}")

    async def _publish(
        self, run: Run, producer: AIOKafkaProducer, command: dict[str, Any], key: str, partition_key: str
    ) -> None:
        value = orjson.dumps({**command, "command_id": key})
        await producer.send_and_wait(
            self.topics.commands,
            value,
            key=partition_key.encode(),
            headers=signing.sign(self.client, self.api_key, partition_key.encode(), value),
        )
        run.commands["topic"] += 1

    async def _send_bad_commands(self, run: Run, producer: AIOKafkaProducer) -> None:
        """Publish the bad commands; wait (up to 90 s) for each one's dead letter."""
        dead = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, **client_options())
        await dead.start()
        try:
            partitions = await topic_partitions(self.bootstrap, self.topics.dead_letter)
            dead.assign(partitions)
            for tp, offset in (await dead.end_offsets(partitions)).items():
                dead.seek(tp, offset)
            sent: dict[tuple[int, int], str] = {}
            for label, value, authenticated, _ in BAD_COMMANDS:
                bad_key = f"bad-{uuid.uuid4()}".encode()
                headers = signing.sign(self.client, self.api_key, bad_key, value) if authenticated else []
                meta = await producer.send_and_wait(self.topics.commands, value, key=bad_key, headers=headers)
                sent[(meta.partition, meta.offset)] = label
                run.dead_letters[label] = None
            deadline = (
                time.monotonic() + 90
            )  # the unknown ticket is dead-lettered after INTAKE_UNKNOWN_TICKET_WAIT_S (60)
            while any(v is None for v in run.dead_letters.values()) and time.monotonic() < deadline:
                for records in (await _poll(dead, timeout_ms=500)).values():
                    for record in records:
                        dlq = {n: (v or b"").decode(errors="replace") for n, v in record.headers}
                        if dlq.get("dlq_source_topic") != self.topics.commands:
                            continue
                        source = (int(dlq["dlq_source_partition"]), int(dlq["dlq_source_offset"]))
                        if source in sent:
                            run.dead_letters[sent[source]] = (dlq.get("dlq_code", ""), dlq.get("dlq_reason", ""))
        finally:
            await _close(dead)


async def _poll(consumer: AIOKafkaConsumer, **options: int) -> Any:
    """`getmany`, where a fetch from a broker that is down (killed by the chaos suite) is an
    empty poll: the next one reads from the partition's new leader."""
    try:
        return await consumer.getmany(**options)
    except KafkaError:
        await asyncio.sleep(0.2)
        return {}


async def _close(consumer: AIOKafkaConsumer) -> None:
    """Stop a reading consumer. A fetch in flight to a broker that is down (the chaos suite
    kills them) fails as the consumer closes: that says nothing about what was read."""
    try:
        await consumer.stop()
    except KafkaError:
        pass
    except asyncio.CancelledError:  # aiokafka re-raises its own fetch task's cancellation
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


async def _nothing() -> None:
    return None


_STATE_RULES = {RejectCode.TICKET_RESOLVED, RejectCode.TICKET_OPEN, RejectCode.ALREADY_RATED}
_TOPIC_TYPES = {
    "responses": "record_response",
    "escalations": "request_escalation",
    "returns": "return_with_fix",
    "resolution": "resolve_ticket",
    "reopen": "reopen_ticket",
    "rating": "rate_ticket",
}
