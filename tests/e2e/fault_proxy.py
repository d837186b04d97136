"""A TCP fault proxy for tests: loopback only, bounded, in a thread of its own.

``FaultProxy(target_port)`` listens on a free loopback port and forwards each connection
to ``127.0.0.1:target_port``. Faults, switched on and off from the test:

* :meth:`freeze` - half-open: the connections open now stop passing bytes either way
  (nothing is closed, nothing answers), while new connections work as before;
* :meth:`reset` - every open connection is closed at once (a connection reset);
* ``latency_s`` - each chunk is held this long before it is passed on.

At most ``MAX_CONNECTIONS`` connections are served; :meth:`close` ends everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field

MAX_CONNECTIONS = 256
CHUNK = 65536


@dataclass
class _Link:
    writers: list[asyncio.StreamWriter]
    frozen: asyncio.Event = field(default_factory=asyncio.Event)


class FaultProxy:
    """Start with ``with FaultProxy(port) as proxy:``; dial ``proxy.port``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.latency_s = 0.0
        self.accepted = 0
        self._links: list[_Link] = []
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._listen())
        self._ready.set()
        self._loop.run_forever()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.accepted >= MAX_CONNECTIONS:
            writer.close()
            return
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        link = _Link([writer, up_writer])
        self._links.append(link)
        await asyncio.gather(
            self._pipe(reader, up_writer, link),
            self._pipe(up_reader, writer, link),
            return_exceptions=True,
        )
        for w in link.writers:
            w.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        while data := await reader.read(CHUNK):
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            if link.frozen.is_set():
                await asyncio.Event().wait()  # half-open: hold the bytes until closed
            writer.write(data)
            await writer.drain()
        writer.close()

    def _call(self, fn: object) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                fn()  # type: ignore[operator]
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(5)

    def freeze(self) -> int:
        """Freeze the connections open now (new ones still pass); how many were frozen."""
        links = [link for link in self._links if not link.frozen.is_set()]
        self._call(lambda: [link.frozen.set() for link in links])
        return len(links)

    def reset(self) -> None:
        """Close every open connection at once."""

        def close_all() -> None:
            for link in self._links:
                for w in link.writers:
                    w.transport.abort()
            self._links.clear()

        self._call(close_all)

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self.reset()
        stopped = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        with contextlib.suppress(Exception):
            stopped.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        with contextlib.suppress(Exception):
            self._loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
