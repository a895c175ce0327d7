"""Deal use cases: create, edit, move between stages, win and lose, and the model/rep probability rule."""
from datetime import date, datetime

from pydantic import BaseModel
from sqlalchemy import or_
from sqlmodel import Session, select

from crm.audit import apply_changes, audit, check_version, created_fields, load_for_update
from crm.clock import utcnow
from crm.errors import CRMError, NotFound, ValidationFailed
from crm.models import (
    Company, Contact, Deal, DealContact, DealStageHistory, DealStatus, ForecastCategory, LostReason, Pipeline, Stage, User,
)
from crm.permissions import Actor, readable_owner_ids, require, require_edit, require_read
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
    _entered_stage(session, deal.id)
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


class DealView(BaseModel):
    """One deal as the pipeline pages show it: names resolved, and the probability the rep sees."""
    id: int
    title: str
    pipeline_id: int
    pipeline: str
    stage_id: int
    stage: str
    status: DealStatus
    amount: float
    currency: str
    expected_close: date | None
    closed_at: datetime | None
    owner_id: int | None
    owner: str | None
    company_id: int | None
    company: str | None
    contact_id: int | None
    forecast_category: ForecastCategory
    stage_probability: float
    rep_probability: float | None
    model_probability: float | None
    lost_reason_id: int | None
    lost_reason: str | None
    source: str | None
    next_step: str | None
    stage_entered_at: datetime | None
    version: int

    @property
    def probability(self) -> float:
        """Odoo's rule: the rep's figure once they set one; otherwise the model's; otherwise the stage default."""
        return shown_probability(self.rep_probability, self.model_probability, self.stage_probability)


def shown_probability(rep: float | None, model: float | None, stage: float) -> float:
    if rep is not None:
        return rep
    return model if model is not None else stage


class DealChanges(BaseModel):
    """The fields a rep edits on the board, the table and the detail page. Only the fields given are changed."""
    title: str | None = None
    stage_id: int | None = None
    amount: float | None = None
    expected_close: date | None = None
    rep_probability: float | None = None
    forecast_category: ForecastCategory | None = None
    next_step: str | None = None
    lost_reason_id: int | None = None  # required when the stage given is a lost stage


def get_deal(*, session: Session, actor: Actor, deal_id: int) -> DealView:
    views = deal_views(session, [deal_id])
    if not views:
        raise NotFound(f"Deal {deal_id} does not exist (or was deleted)")
    require_read(session, actor, "deals", views[0].owner_id, "this deal")
    return views[0]


def deal_views(session: Session, deal_ids: list[int]) -> list[DealView]:
    """The live deals among these ids, in the given order (no permission check: callers scope the ids)."""
    if not deal_ids:
        return []
    stmt = (select(Deal, Pipeline.name, Stage.name, Stage.probability, User.full_name, Company.name, LostReason.name)
            .join(Pipeline, Pipeline.id == Deal.pipeline_id).join(Stage, Stage.id == Deal.stage_id)
            .join(User, User.id == Deal.owner_id, isouter=True).join(Company, Company.id == Deal.company_id, isouter=True)
            .join(LostReason, LostReason.id == Deal.lost_reason_id, isouter=True)
            .where(Deal.id.in_(deal_ids), Deal.deleted_at.is_(None)))
    found = {d.id: DealView(id=d.id, title=d.title, pipeline_id=d.pipeline_id, pipeline=p, stage_id=d.stage_id,
                            stage=s, status=DealStatus(d.status), amount=d.amount, currency=d.currency,
                            expected_close=d.expected_close, closed_at=d.closed_at, owner_id=d.owner_id, owner=o,
                            company_id=d.company_id, company=c, contact_id=d.contact_id,
                            forecast_category=ForecastCategory(d.forecast_category), stage_probability=sp,
                            rep_probability=d.rep_probability, model_probability=d.model_probability,
                            lost_reason_id=d.lost_reason_id, lost_reason=lr, source=d.source, next_step=d.next_step,
                            stage_entered_at=d.stage_entered_at, version=d.version)
             for d, p, s, sp, o, c, lr in session.exec(stmt).all()}
    return [found[i] for i in deal_ids if i in found]


def update_deal(*, session: Session, actor: Actor, deal_id: int, seen_version: int, changes: DealChanges) -> DealView:
    """Change a deal's fields; a new stage is a move: stage history gets a row, and a won or lost stage closes the
    deal (that needs the deals.close right, and a lost stage needs a lost reason). Refuses a stale version."""
    deal = load_for_update(session, Deal, deal_id, label="Deal")
    require_edit(session, actor, "deals", deal.owner_id, "this deal")
    check_version(session, entity="deal", record=deal, seen_version=seen_version)
    given = changes.model_fields_set
    values = edited_values(changes, given)
    if "stage_id" in given and changes.stage_id != deal.stage_id:
        values.update(_stage_move(session, actor, deal, changes))
    elif "lost_reason_id" in given and deal.status == DealStatus.LOST:
        values["lost_reason_id"] = _lost_reason(session, changes.lost_reason_id).id
    if deal.status != DealStatus.OPEN and values.get("status", deal.status) != DealStatus.OPEN:
        values.pop("forecast_category", None)  # a closed deal's category stays "closed"
    diff = apply_changes(deal, values)
    if diff:
        audit(session, actor_id=actor.id, entity="deal", record_id=deal.id, action="update", changes=diff,
              record_version=deal.version)
    session.flush()
    if "stage_id" in diff:
        _entered_stage(session, deal.id)
    return deal_views(session, [deal.id])[0]


def _entered_stage(session: Session, deal_id: int) -> None:
    """A deal entered a stage (on creation or a move): the rules on that stage fire in this transaction."""
    from crm.automations.engine import handle_event  # here: the automations import this module

    handle_event(session=session, event="deal_enters_stage", entity="deal", record_id=deal_id)


def edited_values(changes: DealChanges, given: set[str]) -> dict:
    """The checked values of the fields `given` other than the stage (a rule's "set a field" is checked by it too)."""
    values = {}
    if "title" in given:
        values["title"] = require_text(changes.title, field="title", max_length=200)
    if "amount" in given:
        if changes.amount is None or not changes.amount >= 0:
            raise ValidationFailed("amount", "must be zero or more")
        values["amount"] = float(changes.amount)
    if "expected_close" in given:
        values["expected_close"] = changes.expected_close
    if "rep_probability" in given:
        p = changes.rep_probability
        if p is not None and not 0 <= p <= 1:
            raise ValidationFailed("rep_probability", "must be between 0 % and 100 %")
        values["rep_probability"] = p
    if "forecast_category" in given:
        if changes.forecast_category in (None, ForecastCategory.CLOSED):
            raise ValidationFailed("forecast_category", "choose pipeline, best case, commit or omitted")
        values["forecast_category"] = str(changes.forecast_category)
    if "next_step" in given:
        values["next_step"] = require_text(changes.next_step, field="next_step", max_length=300, required=False)
    return values


def _stage_move(session: Session, actor: Actor, deal: Deal, changes: DealChanges) -> dict:
    stage = session.get(Stage, changes.stage_id) if changes.stage_id is not None else None
    if stage is None or stage.deleted_at is not None or stage.pipeline_id != deal.pipeline_id:
        raise ValidationFailed("stage_id", "choose a stage of this deal's pipeline")
    closing = stage.is_won or stage.is_lost
    if closing or deal.status != DealStatus.OPEN:
        require(actor, "deals.close", "close or reopen deals")
    now = utcnow()
    current = session.exec(select(DealStageHistory).where(DealStageHistory.deal_id == deal.id,
                                                          DealStageHistory.exited_at.is_(None))).all()
    for row in current:
        row.exited_at = now
    session.add(DealStageHistory(deal_id=deal.id, stage_id=stage.id, entered_at=now, changed_by_id=actor.id))
    values: dict = {"stage_id": stage.id, "stage_entered_at": now}
    if stage.is_won:
        values.update(status=str(DealStatus.WON), closed_at=now, lost_reason_id=None,
                      forecast_category=str(ForecastCategory.CLOSED))
    elif stage.is_lost:
        if changes.lost_reason_id is None:
            raise ValidationFailed("lost_reason_id", "say why the deal was lost")
        values.update(status=str(DealStatus.LOST), closed_at=now,
                      lost_reason_id=_lost_reason(session, changes.lost_reason_id).id,
                      forecast_category=str(ForecastCategory.CLOSED))
    elif deal.status != DealStatus.OPEN:  # reopened
        values.update(status=str(DealStatus.OPEN), closed_at=None, lost_reason_id=None,
                      forecast_category=changes.forecast_category and str(changes.forecast_category)
                      or str(ForecastCategory.PIPELINE))
    return values


def _lost_reason(session: Session, reason_id: int | None) -> LostReason:
    reason = session.get(LostReason, reason_id) if reason_id is not None else None
    if reason is None or reason.deleted_at is not None:
        raise ValidationFailed("lost_reason_id", "choose one of the lost reasons")
    return reason


def _closing_stage(session: Session, deal: Deal, *, won: bool) -> Stage:
    flag = Stage.is_won if won else Stage.is_lost
    stage = session.exec(select(Stage).where(Stage.pipeline_id == deal.pipeline_id, flag, Stage.deleted_at.is_(None))
                         .order_by(Stage.position)).first()
    if stage is None:
        raise ValidationFailed("stage_id", f"this pipeline has no {'won' if won else 'lost'} stage")
    return stage


def move_deal(*, session: Session, actor: Actor, deal_id: int, stage_id: int, seen_version: int,
              lost_reason_id: int | None = None) -> DealView:
    """Move a deal to another stage of its pipeline; records stage history and audit."""
    changes = DealChanges(stage_id=stage_id, lost_reason_id=lost_reason_id)
    return update_deal(session=session, actor=actor, deal_id=deal_id, seen_version=seen_version, changes=changes)


def win_deal(*, session: Session, actor: Actor, deal_id: int, seen_version: int) -> DealView:
    """Close as won: the pipeline's won stage, status won, closed today."""
    stage = _closing_stage(session, load_for_update(session, Deal, deal_id, label="Deal"), won=True)
    return move_deal(session=session, actor=actor, deal_id=deal_id, stage_id=stage.id, seen_version=seen_version)


def lose_deal(*, session: Session, actor: Actor, deal_id: int, seen_version: int, lost_reason_id: int | None) -> DealView:
    """Close as lost, with one of the lost reasons (required)."""
    stage = _closing_stage(session, load_for_update(session, Deal, deal_id, label="Deal"), won=False)
    return move_deal(session=session, actor=actor, deal_id=deal_id, stage_id=stage.id, seen_version=seen_version,
                     lost_reason_id=lost_reason_id)


def restore_model_probability(*, session: Session, actor: Actor, deal_id: int, seen_version: int) -> DealView:
    """Drop the rep's override, so the deal shows the model's probability (or the stage default) again."""
    changes = DealChanges(rep_probability=None)
    return update_deal(session=session, actor=actor, deal_id=deal_id, seen_version=seen_version, changes=changes)


def record_model_scores(*, session: Session, scores: dict[int, float], model: str, actor_id: int | None = None) -> int:
    """Write a scoring run's probabilities to deals' model_probability, and nothing else.

    The rep's override (rep_probability) is never touched, so the shown probability changes only where the rep has
    not set one. A score is not an edit: versions stay as they are (no rep's open form goes stale because the model
    ran), and the run is audited once, with its size, instead of once per deal."""
    for value in scores.values():
        if not 0 <= value <= 1:
            raise ValidationFailed("model_probability", f"{value} is not a probability")
    items = sorted(scores.items())
    for lo in range(0, len(items), 500):
        chunk = dict(items[lo:lo + 500])
        rows = session.exec(select(Deal).where(Deal.id.in_(list(chunk)))).all()
        for deal in rows:
            deal.model_probability = float(chunk[deal.id])
    audit(session, actor_id=actor_id, entity="model", record_id=0, action="score",
          context=f"{model}: {len(items)} deals scored")
    return len(items)


class RowResult(BaseModel):
    """What happened to one row of a table save."""
    deal_id: int
    ok: bool
    message: str = ""
    deal: DealView | None = None


def update_deals(*, session: Session, actor: Actor, edits: list[tuple[int, int, DealChanges]]) -> list[RowResult]:
    """Save several rows of the deals table: each (deal_id, seen_version, changes) in its own savepoint, so a row
    that conflicts or fails validation is reported on that row and the others are saved."""
    results = []
    for deal_id, seen_version, changes in edits:
        savepoint = session.begin_nested()
        try:
            view = update_deal(session=session, actor=actor, deal_id=deal_id, seen_version=seen_version,
                               changes=changes)
        except CRMError as exc:
            savepoint.rollback()
            results.append(RowResult(deal_id=deal_id, ok=False, message=exc.message))
        else:
            savepoint.commit()
            results.append(RowResult(deal_id=deal_id, ok=True, deal=view))
    return results


def newest_open_deal_id(*, session: Session, actor: Actor) -> int | None:
    """The newest open deal the actor may read (what a benchmark or a demo opens first)."""
    stmt = select(Deal.id).where(Deal.status == DealStatus.OPEN, Deal.deleted_at.is_(None))
    readable = readable_owner_ids(session, actor, "deals")
    if readable is not None:
        stmt = stmt.where(Deal.owner_id.in_(readable))
    return session.exec(stmt.order_by(Deal.id.desc()).limit(1)).first()
