"""A sliding-window rate limiter kept in this process's memory (the web-form endpoint counts per token with it).

The app is one process (`streamlit run` serves pages and the API together), so one limiter sees every request.
Several processes behind a load balancer would each count on their own and let through up to N times the limit:
the limit then has to move to shared storage (see docs/webforms.md).
"""
import math
import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most `limit` hits per key in any `window` seconds: a log of the recent hits per key (a sliding window,
    so a burst at the end of one minute and another at the start of the next cannot pass twice the limit)."""

    def __init__(self, *, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self._window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # route handlers run in a thread pool

    def hit(self, key: str, limit: int) -> int:
        """Count one hit for `key`, or refuse it: 0 when counted, else the whole seconds until one would be."""
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self._window:
                hits.popleft()
            if len(hits) >= limit:
                # A refused hit is not logged, so a client that keeps hammering is let in as soon as the window allows.
                return max(1, math.ceil(hits[0] + self._window - now))
            hits.append(now)
            return 0
