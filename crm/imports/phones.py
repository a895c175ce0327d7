"""Phone numbers checked ahead, in a second process, while the import writes.

phonenumbers' parse and validity check cost about a third of a contact row's time. They depend only on the
phone cell and the country, so a large contacts import hands every (phone, country) pair of the file to one worker
process at the start, in row order; the rows then find their number already checked. The worker runs exactly
crm.validation.normalize_phone, and a pair it has not seen (a country that only the stored record knows) or has not
answered yet (while it starts up) is checked in place, so results are identical either way: the worker only moves
the work to the other core.
"""
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor

from crm.errors import ValidationFailed
from crm.imports.context import Row
from crm.imports.values import parse_country
from crm.validation import normalize_country, normalize_phones

MIN_ROWS = 5_000  # below this, starting a process costs more than it saves
FIRST_BATCH, BATCH = 500, 4_000


def _country(text: str) -> str | None:
    try:
        return normalize_country(parse_country(text)) if text else None
    except (ValidationFailed, ValueError):
        return None  # the row will be rejected for its country anyway


class PhoneChecks:
    """(phone, country) -> E.164, or (reason,) for a refused number; waits for the worker's batch."""

    def __init__(self, rows: list[Row], phone_column: str, country_column: str | None):
        pairs = list(dict.fromkeys(
            (row.cells[phone_column], _country(row.cells.get(country_column, "")) if country_column else None)
            for row in rows if row.cells.get(phone_column)))
        self._batch_of: dict[tuple, int] = {}
        self._futures: list[Future] = []
        self._done: dict[int, dict] = {}
        # spawn, not fork: the app runs threads (Streamlit), and a forked child could inherit a held lock.
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        lo, size = 0, FIRST_BATCH
        while lo < len(pairs):
            batch = pairs[lo:lo + size]
            for pair in batch:
                self._batch_of[pair] = len(self._futures)
            self._futures.append(self._pool.submit(normalize_phones, batch))
            lo, size = lo + size, BATCH

    def get(self, pair: tuple[str, str | None]):
        """The checked result, or KeyError if the worker was not given this pair or has not reached it yet.

        Never waits: while the worker starts up (about a second), the import checks its first rows itself."""
        index = self._batch_of[pair]
        if index not in self._done:
            future = self._futures[index]
            if not future.done():
                raise KeyError(pair)
            try:
                self._done[index] = future.result()
            except Exception:  # noqa: BLE001 - a worker that died only costs speed: the row is checked in place
                self._done[index] = {}
        return self._done[index][pair]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def phone_checks(rows: list[Row], targets: dict[str, str]) -> PhoneChecks | None:
    """Checks ahead for a large file with a phone column on a machine with a spare core; otherwise None."""
    by_target = {target: source for source, target in targets.items()}
    if "phone" not in by_target or len(rows) < MIN_ROWS or (os.cpu_count() or 1) < 2:
        return None
    return PhoneChecks(rows, by_target["phone"], by_target.get("country"))
