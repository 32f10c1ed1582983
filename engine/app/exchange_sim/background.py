"""The simulator on its own event loop in a background thread, for in-process callers (the
replay-as-live demo, the latency benchmark, tests that drive faults by hand)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from engine.app.exchange_sim.exchange import Exchange, Status
from engine.app.exchange_sim.faults import Fault
from engine.app.exchange_sim.recording import Recording, load
from engine.app.exchange_sim.server import Urls, serving


class BackgroundSim:
    """``with BackgroundSim(path) as urls:`` serves the recording until the block ends."""

    def __init__(
        self,
        recording: Path | Recording,
        speed: float | None = None,
        faults: list[Fault] | None = None,
        snapshot_wait: float = 5.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.recording = recording if isinstance(recording, Recording) else load(recording)
        self.speed, self.faults, self.snapshot_wait, self.host = (
            speed,
            faults or [],
            snapshot_wait,
            host,
        )
        self.exchange: Exchange | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._urls: Urls | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="exchange-sim", daemon=True)

    def __enter__(self) -> Urls:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        assert self._urls is not None
        return self._urls

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def status(self) -> Status:
        """A copy of the tape's status."""
        assert self.exchange is not None
        return replace(self.exchange.status, faults=list(self.exchange.status.faults))

    def post(self, fault: Fault) -> None:
        """Inject ``fault`` before the next message (as ``POST /control`` does)."""
        assert self._loop is not None
        assert self.exchange is not None
        self._loop.call_soon_threadsafe(self.exchange.post, fault)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # handed to the thread that waits in __enter__
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.exchange = Exchange(self.recording, self.speed, self.faults, self.snapshot_wait)
        async with serving(self.exchange, self.host) as urls:
            self._urls = urls
            self._ready.set()
            await self._stop.wait()
