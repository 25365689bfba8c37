"""An asyncio TCP proxy that can cut every connection on demand: the chaos suite puts one
in front of each broker and of PostgreSQL, so a service sees its connections drop the way
a network partition or a load balancer's reset drops them."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class Route:
    listen_port: int
    target_host: str
    target_port: int


@dataclass
class Proxy:
    """Forwards each `route` (127.0.0.1:listen_port -> target). `cut()` closes every open
    connection; `refuse_for(s)` also closes new ones at once for `s` seconds."""

    routes: list[Route]
    cuts: int = 0
    connections: int = 0
    _servers: list[asyncio.Server] = field(default_factory=list)
    _pipes: set[asyncio.Task[None]] = field(default_factory=set)
    _refuse_until: float = 0.0

    async def start(self) -> Proxy:
        for route in self.routes:
            self._servers.append(
                await asyncio.start_server(
                    lambda r, w, route=route: self._accept(route, r, w), "127.0.0.1", route.listen_port
                )
            )
        return self

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        await self.cut()
        for server in self._servers:
            await server.wait_closed()

    async def cut(self) -> int:
        """Close every open connection (both sides see a reset); returns how many."""
        pipes = list(self._pipes)
        for pipe in pipes:
            pipe.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        self.cuts += 1
        return len(pipes)

    async def refuse_for(self, seconds: float) -> int:
        self._refuse_until = asyncio.get_running_loop().time() + seconds
        return await self.cut()

    async def _accept(self, route: Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if asyncio.get_running_loop().time() < self._refuse_until:
            _abort(writer)
            return
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        self.connections += 1
        upstream: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream = await asyncio.open_connection(route.target_host, route.target_port)
            await asyncio.gather(_pump(reader, upstream), _pump(up_reader, writer))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._pipes.discard(task)
            _abort(writer)
            if upstream is not None:
                _abort(upstream)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    finally:
        # one side ended: end the other, so neither waits on a half-open connection
        with contextlib.suppress(OSError):
            if writer.can_write_eof():
                writer.write_eof()


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()
