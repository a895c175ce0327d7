"""The KPI cube: additive measures per day and contact owner, kept up to date by the service layer.

Why: the customer KPIs (lifetime value, upsell, net new revenue, churn, list growth, predicted lifetime value) span
the whole order history, which is a million orders at the large size; read from the cube they are a sum over a few
hundred rows. What each contact adds is defined in crm/kpis/cube_facts.py.

How it stays exact: before a write changes a contact's orders, order lines, list events, owner, source or deletion,
`stash` computes what the contact adds to the cube as the database has it then; before the commit, `settle`
computes it again and adds the difference. crm/kpis/upkeep.py calls both from session events, so the cube commits
(or rolls back) with the write. `rebuild` recomputes everything (after the demo generator, or `python -m crm kpis
rebuild`).

Readers use the cube only when `ready(session)`; until the first rebuild (an old database just upgraded), the KPIs
compute from the base tables.
"""
from collections.abc import Iterable
from datetime import date

import pandas as pd
from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from crm.kpis.cube_facts import contributions
from crm.models import Contact, DataVersion, ListSubscriptionEvent, Order, OrderLine
from crm.models.kpi import KpiCube

ALL, NO_OWNER = -1, 0
READY = "kpi_cube"  # a data_version row: present once the cube has been built
KEY = ["measure", "owner_id", "day", "key"]
STASHED, BEFORE = "kpi_cube_stashed", "kpi_cube_before"  # session.info: contacts stashed, their rows before
COMPLETED = "completed"
CHUNK = 500  # ids per IN (...) list
REBUILD_CONTACTS = 100_000  # contacts computed at a time by rebuild


# --- reading ------------------------------------------------------------------------------------------------------

ENABLED = True  # tests switch it off to check that both ways give the same numbers


def ready(session: Session) -> bool:
    """Whether the cube has been built (and so is kept up to date)."""
    return session.get(DataVersion, READY) is not None


def enabled(session: Session) -> bool:
    """Whether KPIs should read the cube."""
    return ENABLED and ready(session)


def _owners(owners: Iterable[int] | None) -> list[int]:
    return [ALL] if owners is None else sorted(set(owners))


def total(session: Session, measure: str, owners: Iterable[int] | None, *, since: date | None = None,
          until: date | None = None, key: str | None = None) -> float:
    """Σ measure over days in [since, until) for the owners (None: everyone)."""
    return float(session.execute(_select(func.coalesce(func.sum(KpiCube.value), 0.0), measure, owners, since, until,
                                         key)).scalar_one())


def totals(session: Session, measures: list[str], owners: Iterable[int] | None, *, since: date | None = None,
           until: date | None = None, by: str | None = None) -> pd.DataFrame:
    """Σ of each measure over [since, until), one column per measure, grouped by "key" or "day" (or one row)."""
    group = [] if by is None else [getattr(KpiCube, by)]
    stmt = select(*group, KpiCube.measure, func.sum(KpiCube.value)).where(
        KpiCube.measure.in_(measures), KpiCube.owner_id.in_(_owners(owners)), *_days(since, until))
    rows = session.execute(stmt.group_by(*group, KpiCube.measure)).all()
    # A few hundred rows at most: plain dicts, not pivot_table (which cost more than the query).
    if by is None:
        found = {measure: value for measure, value in rows}
        return pd.DataFrame([[float(found.get(m, 0.0)) for m in measures]], columns=measures)
    wide: dict = {}
    for group_key, measure, value in rows:
        wide.setdefault(group_key, dict.fromkeys(measures, 0.0))[measure] = float(value)
    frame = pd.DataFrame.from_dict(wide, orient="index", columns=measures).sort_index()
    return frame.rename_axis(by).reset_index()


def active(session: Session, owners: Iterable[int] | None, day: date, spans: str = "active") -> int:
    """Contacts active at midnight of `day` (an order in the 365 days before), from the span starts and ends before
    it (cube_facts.active_spans); spans="retained": active then and 365 days before."""
    both = totals(session, [f"{spans}_start", f"{spans}_end"], owners, until=day).iloc[0]
    return int(round(both.iloc[0] - both.iloc[1]))


def _days(since: date | None, until: date | None) -> list:
    return [*([KpiCube.day >= since] if since else []), *([KpiCube.day < until] if until else [])]


def _select(column, measure: str, owners, since, until, key):
    where = [KpiCube.measure == measure, KpiCube.owner_id.in_(_owners(owners)), *_days(since, until)]
    if key is not None:
        where.append(KpiCube.key == key)
    return select(column).where(*where)


# --- keeping it up to date ----------------------------------------------------------------------------------------

def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


def _naive(series: pd.Series) -> pd.Series:
    """Timestamps as naive UTC (SQLite returns naive UTC, PostgreSQL aware)."""
    return pd.to_datetime(series, utc=True).dt.tz_localize(None)


def _frame(session: Session, stmt, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in session.execute(stmt).all()], columns=columns)


def _contributions(session: Session, where) -> pd.DataFrame:
    """cube_facts.contributions of the contacts `where(contact_id column)` picks, as the database has them now."""
    c, o, line, e = (t.__table__.c for t in (Contact, Order, OrderLine, ListSubscriptionEvent))
    contacts = _frame(session, select(c.id, func.coalesce(c.owner_id, NO_OWNER), c.source)
                      .where(where(c.id), c.deleted_at.is_(None)), ["id", "owner_id", "source"])
    counted = (o.status == COMPLETED) & o.deleted_at.is_(None)
    orders = _frame(session, select(o.id, o.contact_id, o.ordered_at, o.total, counted).where(where(o.contact_id)),
                    ["id", "contact_id", "ordered_at", "total", "counted"])
    orders = orders.astype({"counted": bool, "total": float}).assign(ordered_at=_naive(orders["ordered_at"]))
    lines = _frame(session, select(line.order_id, line.product_id).join_from(
        OrderLine.__table__, Order.__table__, o.id == line.order_id).where(where(o.contact_id)),
        ["order_id", "product_id"])
    events = _frame(session, select(e.id, e.contact_id, e.list_name, e.action, e.occurred_at)
                    .where(where(e.contact_id)), ["id", "contact_id", "list_name", "action", "occurred_at"])
    events["occurred_at"] = _naive(events["occurred_at"])
    return contributions(contacts, orders, lines, events)


def _with_everyone(rows: pd.DataFrame) -> pd.DataFrame:
    """Each owner's rows and, under ALL, their sum."""
    both = pd.concat([rows, rows.assign(owner_id=ALL)], ignore_index=True)
    return both.groupby(KEY, as_index=False)["value"].sum()


def _add(session: Session, deltas: pd.DataFrame) -> None:
    """kpi_cube += deltas, one upsert per row, in key order (so concurrent writers lock rows in the same order)."""
    deltas = deltas[deltas["value"] != 0].sort_values(KEY)
    if deltas.empty:
        return
    table: Table = KpiCube.__table__
    dialect_insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    stmt = dialect_insert(table)
    stmt = stmt.on_conflict_do_update(index_elements=KEY, set_={"value": table.c.value + stmt.excluded.value})
    session.execute(stmt, deltas[[*KEY, "value"]].to_dict("records"))


def stash(session: Session, contact_ids: Iterable[int]) -> None:
    """Before a write changes these contacts: remember what they add to the cube now (once per transaction), and
    lock them on PostgreSQL so that two transactions never refresh one contact from the same starting point."""
    if not enabled_for_writes(session):
        return
    seen = session.info.setdefault(STASHED, set())
    ids = sorted({int(i) for i in contact_ids if i is not None} - seen)
    if not ids:
        return
    seen.update(ids)
    for chunk in _chunks(ids):
        if session.get_bind().dialect.name != "sqlite":
            session.execute(select(Contact.id).where(Contact.id.in_(chunk)).with_for_update())
        before = _contributions(session, lambda column: column.in_(chunk))
        session.info.setdefault(BEFORE, []).append(before.assign(value=-before["value"]))


def settle(session: Session) -> None:
    """Before the commit: add (now − before) of every stashed contact to the cube."""
    ids, before = sorted(session.info.pop(STASHED, set())), session.info.pop(BEFORE, [])
    if not ids:
        return
    after = [_contributions(session, lambda column: column.in_(chunk)) for chunk in _chunks(ids)]
    deltas = pd.concat([*before, *after], ignore_index=True)
    _add(session, _with_everyone(deltas.groupby(KEY, as_index=False)["value"].sum()))


def forget(session: Session) -> None:
    session.info.pop(STASHED, None)
    session.info.pop(BEFORE, None)


def enabled_for_writes(session: Session) -> bool:
    """The cube is kept once it has been built (whatever ENABLED says: that only switches reading)."""
    return ready(session)


def rebuild(session: Session) -> dict:
    """Recompute the whole cube from the base tables; marks it ready. Returns counts for the caller to report."""
    session.execute(delete(KpiCube))
    top = session.execute(select(func.max(Contact.id))).scalar() or 0
    parts = [_contributions(session, lambda column: column.between(low, low + REBUILD_CONTACTS - 1))
             for low in range(0, top + 1, REBUILD_CONTACTS)]
    rows = _with_everyone(pd.concat(parts, ignore_index=True)) if parts else pd.DataFrame(columns=[*KEY, "value"])
    rows = rows[rows["value"] != 0]
    if len(rows):
        session.execute(KpiCube.__table__.insert(), rows[[*KEY, "value"]].to_dict("records"))
    if session.get(DataVersion, READY) is None:
        session.add(DataVersion(name=READY, value=1))
    session.flush()
    return {"contacts": top, "cube_rows": len(rows)}


def contacts_of_orders(session: Session, order_ids: Iterable[int]) -> set[int]:
    ids = sorted({int(i) for i in order_ids if i is not None})
    found: set[int] = set()
    for chunk in _chunks(ids):
        found |= {c for (c,) in session.execute(select(Order.contact_id).where(Order.id.in_(chunk))).all()
                  if c is not None}
    return found


__all__ = ["ALL", "NO_OWNER", "ready", "enabled", "total", "totals", "active", "stash", "settle", "forget", "rebuild",
           "contacts_of_orders"]
