"""The simulator's driver, made patient for chaos and made to keep a ledger of every command
it sent: what intake accepted over HTTP (with the event id it answered), what it refused,
and every command published on the topic. The same idempotency key or command id is reused
on every retry, so a retry can never make a second event; the ledger check proves it."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from simulator.driver import Driver, Run

RETRYABLE = {500, 502, 503, 504}  # 500 "not applied" is safe to retry under the same key


@dataclass
class Sent:
    """Every command by idempotency key / command id."""

    accepted: dict[str, str] = field(default_factory=dict)  # HTTP key -> event id intake answered
    refused: dict[str, int] = field(default_factory=dict)  # HTTP key -> status (409: the ticket moved on)
    published: set[str] = field(default_factory=set)  # topic command ids
    retries: Counter[str] = field(default_factory=Counter)  # why a command was sent again
    unanswered: list[str] = field(default_factory=list)  # keys given up on after `patience_s`


class ChaosDriver(Driver):
    def __init__(self, *, sent: Sent, patience_s: float = 180.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent, self.patience_s = sent, patience_s

    async def _post(self, run: Run, http: httpx.AsyncClient, path: str, body: dict[str, Any], key: str) -> None:
        deadline, pause = time.monotonic() + self.patience_s, 0.2
        while True:
            try:
                response = await http.post(path, json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError as error:
                self.sent.retries[f"http {type(error).__name__}"] += 1
            else:
                if response.status_code not in RETRYABLE:
                    break
                self.sent.retries[f"http {response.status_code}"] += 1
            if time.monotonic() > deadline:
                self.sent.unanswered.append(key)
                raise RuntimeError(f"intake did not answer {path} within {self.patience_s:g}s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 3.0)
        if response.status_code in (200, 201, 202):
            self.sent.accepted[key] = response.json()["event_id"]
        elif response.status_code == 409:
            self.sent.refused[key] = 409
        else:
            raise RuntimeError(f"intake answered {response.status_code} to {path}: {response.text[:300]}")
        run.commands["http"] += 1

    async def _publish(
        self, run: Run, producer: AIOKafkaProducer, command: dict[str, Any], key: str, partition_key: str
    ) -> None:
        deadline, pause = time.monotonic() + self.patience_s, 0.2
        while True:
            try:
                await super()._publish(run, producer, command, key, partition_key)
                break
            except KafkaError as error:  # a broker died under the send: the same command id again
                self.sent.retries[f"topic {type(error).__name__}"] += 1
                if time.monotonic() > deadline:
                    self.sent.unanswered.append(key)
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 3.0)
        self.sent.published.add(key)
