"""The door every HTTP attempt of a client passes: once ``aclose()`` shuts it, nothing leaves.

An attempt is admitted (synchronously, just before its request is handed to the HTTP
library) or refused; ``drained()`` waits for the admitted ones to end. Closing the door
first and closing the connection pool only once it is drained is what makes "after
``aclose()`` returns, no request leaves" true: a request that was admitted before the door
shut finishes (its answer is read, so its outcome is honest); one that was not is never
made.
"""

from __future__ import annotations

import anyio

__all__ = ["Gate"]


class Gate:
    def __init__(self) -> None:
        self._open = True
        self._admitted = 0
        self._idle: anyio.Event | None = None

    @property
    def open(self) -> bool:
        return self._open

    def admit(self) -> bool:
        """Count one attempt in, or return ``False`` when the door is shut. Synchronous: no
        close can slip between this check and the request."""
        if not self._open:
            return False
        self._admitted += 1
        return True

    def leave(self) -> None:
        self._admitted -= 1
        if self._admitted == 0 and self._idle is not None:
            self._idle.set()

    def shut(self) -> None:
        """Admit nothing from now on."""
        self._open = False

    async def drained(self) -> None:
        """Return once every admitted attempt has ended."""
        while self._admitted:
            if self._idle is None or self._idle.is_set():  # one event for every waiter
                self._idle = anyio.Event()
            await self._idle.wait()
