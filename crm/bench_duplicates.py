"""The duplicate scan for `python -m crm bench` (part `duplicates`): contacts and companies, timed at the bench size.

What is timed is the scan itself (read every live record, block, compare, score: crm.hygiene.duplicates_scan),
the part that grows with the data. Storing its pairs (crm.hygiene.duplicates.save_scan) writes only the pairs
found, a few thousand rows at size large, and is left out so the bench does not write to its database.
"""
import time

from sqlalchemy import Engine

from crm.db import read_scope
from crm.hygiene.duplicates import MIN_SCORE
from crm.hygiene.duplicates_scan import ENTITIES, scan

TARGET_S = 600  # issue 8: the large demo is scanned "in minutes, not hours"


def bench_duplicates(engine: Engine) -> dict:
    """{entity: the scan's counts and timings, with wall and CPU seconds} for contacts, then companies."""
    out = {}
    for entity in ENTITIES:
        with read_scope(engine) as session:
            start, start_cpu = time.perf_counter(), time.process_time()
            result = scan(session.connection(), entity, min_score=MIN_SCORE)
            out[entity] = {**result.stats, "wall_s": round(time.perf_counter() - start, 1),
                           "cpu_s": round(time.process_time() - start_cpu, 1)}
    return out


def summary_rows(result: dict) -> list[tuple[str, str, str]]:
    """(measure, value, target) rows for the bench table."""
    rows = []
    for entity, r in result.items():
        mark = "✅" if r["wall_s"] <= TARGET_S else "❌ over target"
        rows.append((f"duplicate scan of {r['records']:,} {entity} records (read, block, score; not stored)",
                     f"{r['wall_s']:.1f} s ({r['cpu_s']:.1f} s CPU, load {r['load_seconds']:.1f} s): "
                     f"{r['found']:,} pairs ≥ {MIN_SCORE} of {r['compared']:,} compared",
                     f"≤ {TARGET_S} s {mark}"))
    return rows
