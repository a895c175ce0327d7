"""`python -m crm automations run`: the time triggers (a deal idle, a date N days away, a ticket open N hours).

Safe from cron at any frequency: each rule's records that may be due are found in one set-based query, without
those it already fired on for their current occasion, and fired in batches, each batch its own transaction. A run that stops half-way leaves
whole batches behind it and the next run carries on; two runs at once fire each occasion once (the unique key of
automation_firing decides, see crm.automations.engine).
"""
import time
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import select

from crm.automations.engine import fire
from crm.automations.triggers import TRIGGERS
from crm.clock import utcnow
from crm.db import read_scope, session_scope
from crm.errors import CRMError
from crm.models import AutomationRule

BATCH = 500  # firings per transaction: short enough not to hold the write lock for long


def run_automations(engine: Engine, *, now: datetime | None = None, batch: int = BATCH) -> dict:
    """Fire every active time rule on every record due at `now`; a summary per rule, as the CLI prints it."""
    now = now or utcnow()
    started = time.perf_counter()
    timed = [name for name, trigger in TRIGGERS.items() if trigger.kind == "time"]
    with read_scope(engine) as session:
        rules = session.exec(select(AutomationRule.id).where(AutomationRule.trigger.in_(timed), AutomationRule.active,
                                                             AutomationRule.deleted_at.is_(None))
                             .order_by(AutomationRule.id)).all()
    report = [_run_rule(engine, rule_id, now, batch) for rule_id in rules]
    return {"at": now.isoformat(), "rules": report, "fired": sum(r["fired"] for r in report),
            "failed": sum(r["failed"] for r in report), "seconds": round(time.perf_counter() - started, 2)}


def _run_rule(engine: Engine, rule_id: int, now: datetime, batch: int) -> dict:
    """One rule: a set-based scan for the records that may be due, then batches of them, each fired in its own
    transaction after checking again that it is due (the scan read without blocking anyone, so it may be stale)."""
    out = {"rule_id": rule_id, "rule": None, "fired": 0, "failed": 0}
    try:
        with read_scope(engine) as session:
            rule = session.get(AutomationRule, rule_id)
            out["rule"], trigger = rule.name, TRIGGERS[rule.trigger]
            ids = sorted(session.execute(trigger.scan(session, rule, now)).scalars().all())
        for lo in range(0, len(ids), batch):
            with session_scope(engine) as session:
                rule = session.get(AutomationRule, rule_id)
                if not rule.active or rule.deleted_at is not None or TRIGGERS[rule.trigger] is not trigger:
                    break  # switched off, or made another rule, since the run began
                firings = [fire(session, rule=rule, entity=trigger.entity(rule.trigger_params), record_id=d.record_id,
                                occasion=d.occasion, occasion_at=d.began, now=now)
                           for d in trigger.due(session, rule, now, ids[lo:lo + batch])]
            written = [f for f in firings if f is not None]  # None: a concurrent run fired it first
            out["fired"] += sum(f.outcome == "ok" for f in written)
            out["failed"] += sum(f.outcome == "failed" for f in written)
    except CRMError as exc:  # the rule no longer makes sense (its date field was archived): say so, go on
        out["error"] = exc.message
    return out
