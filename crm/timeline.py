"""One timeline per contact or company: activities, tracked behaviour, orders, tickets, surveys and changes, newest first."""
from datetime import datetime
from itertools import groupby

from pydantic import BaseModel
from sqlalchemy import or_
from sqlmodel import Session, select

from crm.clock import as_utc
from crm.models import (
    Activity, AuditLog, BehaviorEvent, Contact, Order, OrderLine, Product, SurveyResponse, Ticket, User,
)

# The kinds a timeline can be filtered by, and the group each belongs to.
KINDS = {
    "call": "activities", "email": "activities", "meeting": "activities", "note": "activities", "task": "activities",
    "web_visit": "behaviour", "email_open": "behaviour", "email_click": "behaviour", "form_submission": "behaviour",
    "offer_viewed": "behaviour", "order": "orders", "ticket": "tickets", "survey": "surveys", "change": "changes",
}
GROUPS = sorted(set(KINDS.values()))


class TimelineItem(BaseModel):
    at: datetime
    kind: str
    group: str
    title: str
    detail: str | None = None
    by: str | None = None
    record: str | None = None  # "activity:12", "deal:3": what the item links to


def _item(at, kind: str, title: str, detail=None, by=None, record=None) -> TimelineItem:
    return TimelineItem(at=as_utc(at), kind=kind, group=KINDS[kind], title=title, detail=detail, by=by, record=record)


def _activities(session: Session, where, limit: int, kinds: set[str]) -> list[TimelineItem]:
    wanted = [k for k in kinds if KINDS[k] == "activities"]
    if not wanted:
        return []
    when = Activity.occurred_at
    rows = session.exec(select(Activity, User.full_name).join(User, User.id == Activity.owner_id, isouter=True)
                        .where(where, Activity.deleted_at.is_(None), Activity.kind.in_(wanted))
                        .order_by(when.desc().nulls_last(), Activity.id.desc()).limit(limit)).all()
    items = []
    for a, who in rows:
        if a.kind == "task":
            state = "done" if a.done_at else f"due {as_utc(a.due_at):%Y-%m-%d}" if a.due_at else "open"
            items.append(_item(a.done_at or a.created_at, "task", f"Task: {a.subject} ({state})", a.body, who,
                               f"activity:{a.id}"))
        else:
            items.append(_item(a.occurred_at or a.created_at, a.kind, a.subject, a.body, who, f"activity:{a.id}"))
    return items


def _events(session: Session, contact_ids, limit: int, kinds: set[str]) -> list[TimelineItem]:
    wanted = [k for k in kinds if KINDS[k] == "behaviour"]
    if not wanted:
        return []
    rows = session.exec(select(BehaviorEvent).where(BehaviorEvent.contact_id.in_(contact_ids),
                                                    BehaviorEvent.kind.in_(wanted))
                        .order_by(BehaviorEvent.occurred_at.desc()).limit(limit)).all()
    label = {"web_visit": "Visited", "email_open": "Opened email", "email_click": "Clicked email",
             "form_submission": "Submitted form", "offer_viewed": "Viewed offer"}
    return [_item(e.occurred_at, e.kind, f"{label[e.kind]} {e.offer or e.campaign or e.url or ''}".strip(),
                  e.url if e.offer or e.campaign else None) for e in rows]


def _orders(session: Session, where, limit: int) -> list[TimelineItem]:
    orders = session.exec(select(Order).where(where, Order.deleted_at.is_(None))
                          .order_by(Order.ordered_at.desc().nulls_last(), Order.id.desc()).limit(limit)).all()
    products: dict[int, list[str]] = {}
    if orders:
        for order_id, name in session.exec(select(OrderLine.order_id, Product.name).join(Product)
                                           .where(OrderLine.order_id.in_([o.id for o in orders]))).all():
            products.setdefault(order_id, []).append(name)
    return [_item(o.ordered_at or o.created_at, "order", f"Order {o.total:,.2f} {o.currency} ({o.status})",
                  ", ".join(products.get(o.id, [])) or None, record=f"order:{o.id}") for o in orders]


def _tickets(session: Session, where, limit: int) -> list[TimelineItem]:
    rows = session.exec(select(Ticket).where(where, Ticket.deleted_at.is_(None))
                        .order_by(Ticket.opened_at.desc()).limit(limit)).all()
    return [_item(t.opened_at, "ticket", f"Ticket: {t.subject} ({t.status})",
                  f"resolved {as_utc(t.resolved_at):%Y-%m-%d %H:%M}" if t.resolved_at else f"{t.priority} priority, "
                  f"via {t.channel}", record=f"ticket:{t.id}") for t in rows]


def _surveys(session: Session, contact_ids, limit: int) -> list[TimelineItem]:
    rows = session.exec(select(SurveyResponse).where(SurveyResponse.contact_id.in_(contact_ids))
                        .order_by(SurveyResponse.answered_at.desc()).limit(limit)).all()
    return [_item(s.answered_at, "survey", f"{s.kind.upper()} answer: {s.score}", s.comment) for s in rows]


def _changes(session: Session, entity: str, record_id: int, limit: int) -> list[TimelineItem]:
    """Audit rows grouped into one item per save: who changed which fields from what to what."""
    rows = session.exec(select(AuditLog, User.full_name).join(User, User.id == AuditLog.actor_id, isouter=True)
                        .where(AuditLog.entity == entity, AuditLog.record_id == record_id)
                        .order_by(AuditLog.id.desc()).limit(limit * 10)).all()
    items = []
    for (at, action, who, context), group in groupby(rows, key=lambda r: (r[0].at, r[0].action, r[1], r[0].context)):
        fields = [row for row, _ in group]
        changed = [f for f in fields if f.field]
        if action == "create":
            title, detail = f"Created {entity}", None
        elif changed:
            title = f"{action.capitalize()}: {', '.join(sorted({f.field for f in changed}))}"
            detail = "; ".join(f"{f.field}: {f.old_value or '—'} → {f.new_value or '—'}" for f in reversed(changed))
        else:
            title, detail = action.capitalize(), None
        if context:
            title += f" ({context})"
        items.append(_item(at, "change", title, detail, who or "system"))
    return items[:limit]


def contact_timeline(*, session: Session, contact_id: int, kinds: set[str] | None = None,
                     limit: int = 100) -> list[TimelineItem]:
    """Everything that happened with one contact, newest first. Check read rights first (crm.contacts.get_contact)."""
    kinds = set(kinds or KINDS)
    ids = [contact_id]
    items = _activities(session, Activity.contact_id == contact_id, limit, kinds) + _events(session, ids, limit, kinds)
    if "order" in kinds:
        items += _orders(session, Order.contact_id == contact_id, limit)
    if "ticket" in kinds:
        items += _tickets(session, Ticket.contact_id == contact_id, limit)
    if "survey" in kinds:
        items += _surveys(session, ids, limit)
    if "change" in kinds:
        items += _changes(session, "contact", contact_id, limit)
    return sorted(items, key=lambda i: i.at, reverse=True)[:limit]


def company_timeline(*, session: Session, company_id: int, kinds: set[str] | None = None, limit: int = 100,
                     readable_owners: list[int] | None = None) -> list[TimelineItem]:
    """Everything that happened with a company and those of its contacts whose owners are in `readable_owners`
    (None: all; see crm.permissions.readable_owner_ids), newest first."""
    kinds = set(kinds or KINDS)
    people = select(Contact.id).where(Contact.company_id == company_id)
    if readable_owners is not None:
        people = people.where(Contact.owner_id.in_(readable_owners))
    items = _activities(session, or_(Activity.company_id == company_id, Activity.contact_id.in_(people)), limit, kinds)
    items += _events(session, people, limit, kinds)
    if "order" in kinds:
        items += _orders(session, or_(Order.company_id == company_id, Order.contact_id.in_(people)), limit)
    if "ticket" in kinds:
        items += _tickets(session, or_(Ticket.company_id == company_id, Ticket.contact_id.in_(people)), limit)
    if "survey" in kinds:
        items += _surveys(session, people, limit)
    if "change" in kinds:
        items += _changes(session, "company", company_id, limit)
    return sorted(items, key=lambda i: i.at, reverse=True)[:limit]


def deal_timeline(*, session: Session, deal_id: int, kinds: set[str] | None = None,
                  limit: int = 100) -> list[TimelineItem]:
    """A deal's activities, tasks and changes (stage moves included), newest first. Check read rights first
    (crm.deals.get_deal)."""
    kinds = set(kinds or KINDS)
    items = _activities(session, Activity.deal_id == deal_id, limit, kinds)
    if "change" in kinds:
        items += _changes(session, "deal", deal_id, limit)
    return sorted(items, key=lambda i: i.at, reverse=True)[:limit]
