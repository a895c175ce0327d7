"""The shared state of one generation: the random source, the size, the time window and progress reporting."""
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time

import numpy as np

from crm import clock
from crm.demo.sizes import DemoSize

DAY = 86_400
HISTORY_DAYS = 913  # two and a half years

Progress = Callable[[str, int, int], None]


@dataclass
class Ctx:
    rng: np.random.Generator
    size: DemoSize
    anchor: int  # today 00:00 UTC in epoch seconds; every timestamp derives from it, never from the wall clock
    progress: Progress | None = None

    @property
    def start(self) -> int:
        return self.anchor - HISTORY_DAYS * DAY

    def report(self, step: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(step, done, total)

    def between(self, lo, hi, n: int | None = None) -> np.ndarray:
        """Uniform epoch seconds in [lo, hi); lo and hi may be arrays."""
        shape = n if n is not None else np.broadcast(lo, hi).shape
        return (lo + self.rng.random(shape) * (np.asarray(hi) - lo)).astype(np.int64)


def make_ctx(size: DemoSize, seed: int, progress: Progress | None) -> Ctx:
    anchor = int(datetime.combine(clock.today(), time.min, tzinfo=UTC).timestamp())
    return Ctx(rng=np.random.default_rng(seed), size=size, anchor=anchor, progress=progress)


def as_datetime(secs, missing: np.ndarray | None = None) -> np.ndarray:
    """datetime64[s] from epoch seconds, NaT (NULL) where missing."""
    out = np.asarray(secs, dtype=np.int64).astype("datetime64[s]")
    if missing is not None:
        out[missing] = np.datetime64("NaT")
    return out


def as_date(secs, missing: np.ndarray | None = None) -> np.ndarray:
    """datetime64[D] (a DATE column) from epoch seconds, NaT (NULL) where missing."""
    return as_datetime(secs, missing).astype("datetime64[D]")


def month_starts(start: int, end: int) -> np.ndarray:
    """Epoch seconds of the first day of every month from start's month to end's month, inclusive."""
    first = np.datetime64(start, "s").astype("datetime64[M]")
    last = np.datetime64(end, "s").astype("datetime64[M]")
    return np.arange(first, last + 1).astype("datetime64[s]").astype(np.int64)


def add_months(secs: np.ndarray, months: int) -> np.ndarray:
    """The first day of the month that lies the given number of months after each time's month."""
    month = np.asarray(secs, dtype=np.int64).astype("datetime64[s]").astype("datetime64[M]") + months
    return month.astype("datetime64[s]").astype(np.int64)
