"""Incomplete records: live contacts and companies missing important or required fields, most valuable first.

Important fields are fixed here (below); required ones are the custom fields marked required. A record's value is
what is at stake if it stays incomplete:
- a contact: the amount of its open deals (`deal.contact_id`) + the revenue of its orders (live, completed) + its
  lead score (0-100, so among contacts without deals or orders the likelier buyers come first);
- a company: the amount of its open deals + the revenue of its orders.
Fill-in goes through the normal edit use cases (crm.contacts.update_contact, crm.companies.update_company) with the
version each row carries, so a record changed meanwhile raises the usual EditConflict. The ranking is one query.
"""
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import ColumnElement, String, and_, case, exists, func, or_, select
from sqlmodel import Session

from crm.errors import ValidationFailed
from crm.frames import result_frame
from crm.hygiene.jobs import editable, require_hygiene
from crm.kpis.revenue import COMPLETED
from crm.models import Company, Contact, CustomFieldDef, CustomFieldValue, Deal, DealStatus, Order
from crm.permissions import Actor
from crm.sqlfuncs import unindexed

IMPORTANT = {
    "contact": {"first_name": "First name", "last_name": "Last name", "email": "Email", "phone": "Phone",
                "company_id": "Company", "job_title": "Job title", "country": "Country", "owner_id": "Owner"},
    "company": {"domain": "Domain", "industry": "Industry", "country": "Country", "employees": "Employees",
                "owner_id": "Owner"},
}
_MODELS = {"contact": Contact, "company": Company}
_KEYS = {"contact": (Deal.contact_id, Order.contact_id), "company": (Deal.company_id, Order.company_id)}


@dataclass
class IncompleteReport:
    entity: str
    total: int  # incomplete records the actor may edit
    missing_counts: dict[str, int] = field(default_factory=dict)  # field label -> records missing it
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)  # id, name, value parts, value, missing, version


def _empty(column) -> ColumnElement:
    text = isinstance(getattr(column.type, "impl", column.type), String)  # SQLModel wraps String in AutoString
    return or_(column.is_(None), column == "") if text else column.is_(None)


def _required_fields(session: Session, entity: str) -> list[tuple[int, str, str]]:
    """(id, key, label) of the live custom fields that are required on this entity."""
    return session.execute(select(CustomFieldDef.id, CustomFieldDef.key, CustomFieldDef.label).where(
        CustomFieldDef.entity == entity, CustomFieldDef.required.is_(True), CustomFieldDef.deleted_at.is_(None))
        .order_by(CustomFieldDef.position, CustomFieldDef.id)).all()


def _missing_tests(session: Session, entity: str) -> dict[str, ColumnElement]:
    """Label -> SQL test that the record lacks it, for the important fields and the required custom fields."""
    model = _MODELS[entity]
    tests = {label: _empty(getattr(model, name)) for name, label in IMPORTANT[entity].items()}
    for field_id, key, label in _required_fields(session, entity):
        label = label if label not in tests else f"{label} ({key})"
        tests[label] = ~exists().where(CustomFieldValue.field_id == field_id, CustomFieldValue.record_id == model.id)
    return tests


def _value_parts(entity: str):
    """Subqueries of each record's open deal amount and order revenue, keyed by record id."""
    deal_key, order_key = _KEYS[entity]
    deals = (select(deal_key.label("key"), func.sum(Deal.amount).label("open_deals"))
             .where(Deal.status == DealStatus.OPEN, Deal.deleted_at.is_(None), deal_key.is_not(None))
             .group_by(deal_key).subquery())
    orders = (select(order_key.label("key"), func.sum(Order.total).label("revenue"))
              .where(Order.status == COMPLETED, Order.deleted_at.is_(None), order_key.is_not(None))
              .group_by(order_key).subquery())
    return deals, orders


def incomplete_records(*, session: Session, actor: Actor, entity: str = "contact", page: int = 1,
                       page_size: int = 50) -> IncompleteReport:
    """The incomplete records the actor may edit, ranked by value (ties: lowest id first), with what each lacks."""
    require_hygiene(actor, "list incomplete records")
    if entity not in _MODELS:
        raise ValidationFailed("entity", "choose contact or company")
    model, tests = _MODELS[entity], _missing_tests(session, entity)
    # unindexed: SQLite would otherwise walk the partial index of live contacts and read the rows out of order
    # (8 s against 1.2 s for the counts on the large demo); the scan must read every row anyway.
    scope = and_(unindexed(model.deleted_at).is_(None), editable(session, actor, model.owner_id),
                 or_(*tests.values()))
    counts = session.execute(select(func.count(), *[func.sum(case((t, 1), else_=0)) for t in tests.values()])
                             .select_from(model).where(scope)).one()
    page, page_size = max(1, page), min(max(1, page_size), 500)
    return IncompleteReport(entity=entity, total=counts[0],
                            missing_counts={label: n or 0 for label, n in zip(tests, counts[1:])},
                            rows=_ranked(session, entity, scope, tests, page, page_size))


def _ranked(session: Session, entity: str, scope: ColumnElement, tests: dict[str, ColumnElement], page: int,
            page_size: int) -> pd.DataFrame:
    model = _MODELS[entity]
    deals, orders = _value_parts(entity)
    open_deals, revenue = func.coalesce(deals.c.open_deals, 0.0), func.coalesce(orders.c.revenue, 0.0)
    value = open_deals + revenue + (func.coalesce(Contact.lead_score, 0.0) if entity == "contact" else 0.0)
    name = (Contact.first_name + " " + Contact.last_name) if entity == "contact" else Company.name
    extra = [func.coalesce(Contact.lead_score, 0.0).label("lead_score")] if entity == "contact" else []
    flags = [case((t, 1), else_=0).label(f"m{i}") for i, t in enumerate(tests.values())]
    stmt = (select(model.id, name.label("name"), open_deals.label("open_deals"), revenue.label("revenue"), *extra,
                   value.label("value"), model.version, *flags)
            .select_from(model).join(deals, deals.c.key == model.id, isouter=True)
            .join(orders, orders.c.key == model.id, isouter=True)
            .where(scope).order_by(value.desc(), model.id).offset((page - 1) * page_size).limit(page_size))
    frame = result_frame(session.execute(stmt))
    labels = list(tests)
    frame["missing"] = [[labels[i] for i in range(len(labels)) if row[f"m{i}"]] for _, row in frame.iterrows()]
    frame["name"] = frame["name"].str.strip()
    return frame.drop(columns=[f"m{i}" for i in range(len(labels))])
