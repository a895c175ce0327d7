"""Deal use cases. This part: create a deal (from a contact or company), and list the deals around a record."""
from datetime import date, datetime

from pydantic import BaseModel
from sqlalchemy import or_
from sqlmodel import Session, select

from crm.audit import audit, created_fields
from crm.clock import utcnow
from crm.errors import ValidationFailed
from crm.models import Company, Contact, Deal, DealContact, DealStageHistory, DealStatus, Pipeline, Stage, User
from crm.permissions import Actor, readable_owner_ids, require_edit, require_read
from crm.validation import require_text


class DealInput(BaseModel):
    title: str = ""
    pipeline_id: int | None = None  # the default pipeline when empty
    stage_id: int | None = None  # the pipeline's first open stage when empty
    amount: float = 0.0
    currency: str = "USD"
    expected_close: date | None = None
    owner_id: int | None = None
    company_id: int | None = None
    contact_id: int | None = None
    source: str | None = None
    next_step: str | None = None


class DealRow(BaseModel):
    id: int
    title: str
    pipeline: str
    stage: str
    status: DealStatus
    amount: float
    currency: str
    expected_close: date | None
    closed_at: datetime | None
    owner: str | None
    version: int


def _pipeline_and_stage(session: Session, data: DealInput) -> tuple[Pipeline, Stage]:
    if data.pipeline_id is None:
        pipeline = session.exec(select(Pipeline).where(Pipeline.deleted_at.is_(None))
                                .order_by(Pipeline.is_default.desc(), Pipeline.position)).first()
    else:
        pipeline = session.get(Pipeline, data.pipeline_id)
    if pipeline is None or pipeline.deleted_at is not None:
        raise ValidationFailed("pipeline_id", "choose an existing pipeline")
    stages = session.exec(select(Stage).where(Stage.pipeline_id == pipeline.id, Stage.deleted_at.is_(None))
                          .order_by(Stage.position)).all()
    if data.stage_id is None:
        stage = next((s for s in stages if not s.is_won and not s.is_lost), None)
    else:
        stage = next((s for s in stages if s.id == data.stage_id), None)
    if stage is None:
        raise ValidationFailed("stage_id", f"choose a stage of the pipeline {pipeline.name!r}")
    if stage.is_won or stage.is_lost:
        raise ValidationFailed("stage_id", "a new deal starts in an open stage; close it afterwards")
    return pipeline, stage


def create_deal(*, session: Session, actor: Actor, data: DealInput) -> DealRow:
    """Open a deal in a pipeline's stage, linked to a contact and/or company; records its first stage entry."""
    title = require_text(data.title, field="title", max_length=200)
    if not data.amount >= 0:
        raise ValidationFailed("amount", "must be zero or more")
    currency = (data.currency or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ValidationFailed("currency", "a three-letter code such as USD")
    owner_id = data.owner_id or actor.id
    owner = session.get(User, owner_id)
    if owner is None or not owner.active:
        raise ValidationFailed("owner_id", f"user {owner_id} is not an active user")
    require_edit(session, actor, "deals", owner_id, "a deal owned by that user")
    pipeline, stage = _pipeline_and_stage(session, data)
    company_id = data.company_id
    if data.contact_id is not None:
        contact = session.get(Contact, data.contact_id)
        if contact is None or contact.deleted_at is not None:
            raise ValidationFailed("contact_id", f"contact {data.contact_id} does not exist")
        require_read(session, actor, "contacts", contact.owner_id, "this contact")
        company_id = company_id if company_id is not None else contact.company_id
    if company_id is not None and session.get(Company, company_id) is None:
        raise ValidationFailed("company_id", f"company {company_id} does not exist")
    now = utcnow()
    deal = Deal(title=title, pipeline_id=pipeline.id, stage_id=stage.id, amount=float(data.amount), currency=currency,
                expected_close=data.expected_close, owner_id=owner_id, company_id=company_id,
                contact_id=data.contact_id, stage_entered_at=now,
                source=require_text(data.source, field="source", max_length=60, required=False),
                next_step=require_text(data.next_step, field="next_step", max_length=300, required=False))
    session.add(deal)
    session.flush()
    session.add(DealStageHistory(deal_id=deal.id, stage_id=stage.id, entered_at=now, changed_by_id=actor.id))
    if data.contact_id is not None:
        session.add(DealContact(deal_id=deal.id, contact_id=data.contact_id, role="primary"))
    audit(session, actor_id=actor.id, entity="deal", record_id=deal.id, action="create",
          changes=created_fields(deal), record_version=deal.version)
    return DealRow(id=deal.id, title=deal.title, pipeline=pipeline.name, stage=stage.name, status=DealStatus.OPEN,
                   amount=deal.amount, currency=deal.currency, expected_close=deal.expected_close, closed_at=None,
                   owner=owner.full_name, version=deal.version)


def deals_around(*, session: Session, actor: Actor, contact_id: int | None = None,
                 company_id: int | None = None, limit: int = 200) -> list[DealRow]:
    """The deals of a contact (as primary contact or linked) or of a company that the actor may read, open first."""
    stmt = (select(Deal, Pipeline.name, Stage.name, User.full_name)
            .join(Pipeline, Pipeline.id == Deal.pipeline_id).join(Stage, Stage.id == Deal.stage_id)
            .join(User, User.id == Deal.owner_id, isouter=True).where(Deal.deleted_at.is_(None)))
    if contact_id is not None:
        linked = select(DealContact.deal_id).where(DealContact.contact_id == contact_id)
        stmt = stmt.where(or_(Deal.contact_id == contact_id, Deal.id.in_(linked)))
    if company_id is not None:
        stmt = stmt.where(Deal.company_id == company_id)
    readable = readable_owner_ids(session, actor, "deals")
    if readable is not None:
        stmt = stmt.where(Deal.owner_id.in_(readable))
    rows = session.exec(stmt.order_by((Deal.status == DealStatus.OPEN).desc(), Deal.expected_close.desc(),
                                      Deal.id.desc()).limit(limit)).all()
    return [DealRow(id=d.id, title=d.title, pipeline=p, stage=s, status=DealStatus(d.status), amount=d.amount,
                    currency=d.currency, expected_close=d.expected_close, closed_at=d.closed_at, owner=o,
                    version=d.version) for d, p, s, o in rows]
