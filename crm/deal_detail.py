"""What the deal page shows beside the deal itself: stage history with time in each stage, line items, contacts,
activities and tasks. Read-only; check read rights with crm.deals.get_deal first."""
from datetime import datetime

import pandas as pd
from sqlmodel import Session, select

from crm.clock import as_utc, utcnow
from crm.models import Activity, Contact, DealContact, DealLineItem, DealStageHistory, Product, Stage, User


def stage_history(*, session: Session, deal_id: int, now: datetime | None = None) -> pd.DataFrame:
    """One row per stage the deal entered, oldest first, with the days spent there (up to now for the current one)."""
    now = now or utcnow()
    rows = session.exec(select(DealStageHistory, Stage.name, User.full_name)
                        .join(Stage, Stage.id == DealStageHistory.stage_id)
                        .join(User, User.id == DealStageHistory.changed_by_id, isouter=True)
                        .where(DealStageHistory.deal_id == deal_id)
                        .order_by(DealStageHistory.entered_at, DealStageHistory.id)).all()
    out = []
    for h, stage, who in rows:
        entered, exited = as_utc(h.entered_at), as_utc(h.exited_at)
        out.append({"stage": stage, "entered": entered, "left": exited, "current": exited is None,
                    "days": round(((exited or now) - entered).total_seconds() / 86_400, 1), "by": who or "system"})
    return pd.DataFrame(out, columns=["stage", "entered", "left", "current", "days", "by"])


def line_items(*, session: Session, deal_id: int) -> pd.DataFrame:
    rows = session.exec(select(DealLineItem, Product.name).join(Product, Product.id == DealLineItem.product_id)
                        .where(DealLineItem.deal_id == deal_id).order_by(DealLineItem.id)).all()
    out = [{"product": name, "quantity": li.quantity, "unit price": li.unit_price, "discount": li.discount,
            "total": round(li.quantity * li.unit_price * (1 - li.discount), 2)} for li, name in rows]
    return pd.DataFrame(out, columns=["product", "quantity", "unit price", "discount", "total"])


def deal_contacts(*, session: Session, deal_id: int) -> pd.DataFrame:
    rows = session.exec(select(DealContact.role, Contact.id, Contact.first_name, Contact.last_name, Contact.email,
                               Contact.job_title)
                        .join(Contact, Contact.id == DealContact.contact_id)
                        .where(DealContact.deal_id == deal_id, Contact.deleted_at.is_(None))
                        .order_by(DealContact.id)).all()
    out = [{"id": cid, "name": f"{first} {last}".strip(), "role": role, "email": email, "job title": title}
           for role, cid, first, last, email, title in rows]
    return pd.DataFrame(out, columns=["id", "name", "role", "email", "job title"])


def open_tasks(*, session: Session, deal_id: int) -> pd.DataFrame:
    rows = session.exec(select(Activity, User.full_name).join(User, User.id == Activity.assignee_id, isouter=True)
                        .where(Activity.deal_id == deal_id, Activity.kind == "task", Activity.done_at.is_(None),
                               Activity.deleted_at.is_(None))
                        .order_by(Activity.due_at)).all()
    out = [{"due": as_utc(a.due_at), "task": a.subject, "assignee": who} for a, who in rows]
    return pd.DataFrame(out, columns=["due", "task", "assignee"])
