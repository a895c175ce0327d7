"""Server-side render times of every page as every role, through AppTest. Run by `python -m crm bench`.

Lives beside the UI because it drives Streamlit; crm/ calls it as a subprocess and reads its JSON.
`python -m ui.perf --rounds 3` prints {"pages": [...], "peak_rss_mb": ...} for the database in CRM_DATABASE_URL.
"""
import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from crm.clock import utcnow
from crm.db import read_scope
from crm.models import Role
from crm.users import first_active_user_of_role
from ui.navigation import pages_for
from ui.session import LAST_SEEN, USER_ID

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def _user_for(role: Role) -> int:
    with read_scope() as session:
        user_id = first_active_user_of_role(session=session, role=role)
    if user_id is None:
        raise SystemExit(f"no active {role} in the database: run `python -m crm demo` first")
    return user_id


def _timed_run(at: AppTest) -> float:
    start = time.perf_counter()
    at.run()
    elapsed = (time.perf_counter() - start) * 1000
    if at.exception:
        raise SystemExit(f"page raised: {at.exception[0].message}")
    return elapsed


def measure(rounds: int) -> dict:
    """Cold: the first render of a page in a new browser session, caches cleared. Warm: median of reruns."""
    import streamlit as st

    rows = []
    for role in Role:
        user_id = _user_for(role)
        for spec in pages_for(role):
            st.cache_data.clear()
            at = AppTest.from_file(APP, default_timeout=300)
            at.session_state[USER_ID], at.session_state[LAST_SEEN] = user_id, utcnow()
            at.run()  # lands on the default page
            at.session_state[LAST_SEEN] = utcnow()
            at.switch_page(spec.path)
            cold = _timed_run(at)
            warm = statistics.median(_timed_run(at) for _ in range(rounds))
            rows.append({"role": role.value, "page": spec.title, "cold_ms": round(cold, 1), "warm_ms": round(warm, 1)})
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"pages": rows, "peak_rss_mb": round(peak_kb / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    json.dump(measure(args.rounds), sys.stdout)


if __name__ == "__main__":
    main()
