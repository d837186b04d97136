"""The backend's clock as the hot paths read it: :class:`BackendClock`."""

from __future__ import annotations

import asyncio
import time

from worldpool.backends.base import Backend

# How long a backend clock reading is extrapolated before it is read again. Drift of a
# monotonic clock over a second is microseconds.
CLOCK_RESYNC_S = 1.0


class BackendClock:
    """The backend's clock for hot paths (submit, dispatch, results): where reading it is a
    round trip, the last reading extrapolated with the local monotonic clock, read again
    every CLOCK_RESYNC_S (error: half a round trip). Saves a round trip per submit,
    dispatch pass and result batch; the sweep and the rare writes read the real clock
    (``backend.now()``)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._base = 0.0  # a backend clock reading ...
        self._read_at = -CLOCK_RESYNC_S  # ... and the monotonic time it was taken
        self._reading: asyncio.Future[float] | None = None  # one read at a time, shared

    async def now(self) -> float:
        mono = time.monotonic()
        if self._backend.now_is_round_trip and mono - self._read_at < CLOCK_RESYNC_S:
            return self._base + (mono - self._read_at)
        if self._reading is not None:  # 200 concurrent submits make one read, not 200
            return await asyncio.shield(self._reading)
        self._reading = asyncio.get_running_loop().create_future()
        try:
            reading = await self._backend.now()
        except BaseException as exc:
            self._reading.set_exception(exc)
            self._reading.exception()  # retrieved: no warning when nobody else waits
            raise
        finally:
            future, self._reading = self._reading, None
        self._base, self._read_at = reading, time.monotonic()
        future.set_result(reading)
        return reading
