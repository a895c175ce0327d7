"""The catalogue of what a segment can test, per entity, and how each test becomes SQL.

Each `Field` has a key (what definitions store), a label and group (what the builder shows), a kind (which operators
and values it takes, `crm.segments.definition.OPS_BY_KIND`) and a function that turns a checked condition into a SQL
condition on the entity's table. Custom fields join the catalogue at run time, as `cf.contact.<key>` and
`cf.company.<key>`, limited to the fields the actor's role may see.
"""
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, union
from sqlmodel import Session

from crm.customfields import list_field_defs
from crm.models import (
    Activity, BehaviorEvent, Company, CompanyTag, Contact, ContactTag, CustomFieldValue, Deal, DealContact, Entity,
    EventKind, FieldType, Lifecycle, Order, OrderLine, PredictionScore, SurveyResponse, User,
)
from crm.permissions import Actor
from crm.segments.predicates import NEGATIVE, aggregate, compare, member, relative

NPS_CATEGORIES = {"promoter": (9, 10), "passive": (7, 8), "detractor": (0, 6)}
CROSS_SELL_MODEL = "cross-sell"


@dataclass(frozen=True)
class Checked:
    """A condition whose values were checked and converted for its field (crm.segments.compiler)."""
    op: str
    value: Any = None
    upper: Any = None
    param: Any = None
    days: int | None = None


@dataclass(frozen=True)
class Context:
    session: Session
    actor: Actor
    entity: str  # contact | company
    now: datetime

    @property
    def table(self):
        return Contact if self.entity == "contact" else Company


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    group: str  # where the builder lists it: Contact, Company, Behaviour, Commerce, Deals, Surveys, Scores, Custom
    kind: str  # text | choice | number | date | bool | set | days_since | count
    build: Callable[[Context, Checked], Any]
    choices: tuple = ()  # fixed vocabulary of a choice field (empty: free values, e.g. countries)
    param: str | None = None  # what `param` names: product | pipeline | offer window ...
    needs_days: bool = False  # counts over a window: "web visits in the last N days"
    values: str | None = None  # where the builder finds a set's or choice's options: tags, products, users, ...
    entities: tuple[str, ...] = ("contact",)


# --- columns of the entity itself, and of a contact's company ------------------------------------------------------

def _column(name: str, *, text: bool = False, moment: bool = False):
    """A column of the entity's table; `moment`: a timestamp, compared with whole days."""
    def build(ctx: Context, c: Checked):
        column = getattr(ctx.table, name)
        if c.op in ("in_last", "in_next", "more_than_days_ago"):
            return relative(column, c.op, c.days, ctx.now)
        return compare(column, c.op, c.value, c.upper, text=text, by_day=moment)
    return build


def _company_column(name: str, *, text: bool = False):
    """A contact's company's attribute; contacts without a company have no value (so they match negative tests)."""
    def build(ctx: Context, c: Checked):
        positive = NEGATIVE.get(c.op, c.op)
        companies = select(Company.id).where(compare(getattr(Company, name), positive, c.value, c.upper, text=text))
        return member(Contact.company_id, companies, negative=c.op in NEGATIVE)
    return build


def _owner(ctx: Context, c: Checked):
    return compare(ctx.table.owner_id, c.op, c.value, c.upper)


def _team(ctx: Context, c: Checked):
    positive = NEGATIVE.get(c.op, c.op)
    if positive == "is_not_empty":
        users = select(User.id).where(User.team_id.is_not(None))
    else:
        users = select(User.id).where(User.team_id.in_(c.value if positive == "in" else [c.value]))
    return member(ctx.table.owner_id, users, negative=c.op in NEGATIVE)


def _tags(ctx: Context, c: Checked):
    link, key = (ContactTag, ContactTag.contact_id) if ctx.entity == "contact" else (CompanyTag, CompanyTag.company_id)
    return _set(ctx.table.id, c, lambda ids: select(key).where(link.tag_id.in_(ids)))


def _set(key, c: Checked, members_of: Callable[[list], Any]):
    """has_any / has_all / has_none of the values, given the subquery of keys having any of some values."""
    if c.op == "has_all":
        return and_(*(member(key, members_of([v])) for v in c.value))
    return member(key, members_of(c.value), negative=c.op == "has_none")


# --- behaviour --------------------------------------------------------------------------------------------------

def _days_since(source_key, moment, *where):
    """Days since the last event: tested as "some event after now − N days" or "none", never by computing it per
    contact; contacts with none count as infinitely long ago (they match "more than", "is empty" = never)."""
    def build(ctx: Context, c: Checked):
        def within(days: float, strict: bool):
            since = ctx.now - timedelta(days=days)
            return select(source_key).where(*where, moment > since if strict else moment >= since)
        key = ctx.table.id
        if c.op in ("is_empty", "is_not_empty"):
            return member(key, select(source_key).where(*where, moment.is_not(None)), negative=c.op == "is_empty")
        if c.op == "lt":
            return member(key, within(c.value, True))
        if c.op == "lte":
            return member(key, within(c.value, False))
        if c.op == "gt":
            return member(key, within(c.value, False), negative=True)
        if c.op == "gte":
            return member(key, within(c.value, True), negative=True)
        return and_(member(key, within(c.value, True), negative=True), member(key, within(c.upper, False)))
    return build


def _event_days_since(kind: EventKind):
    return _days_since(BehaviorEvent.contact_id, BehaviorEvent.occurred_at, BehaviorEvent.kind == kind.value)


def _web_visits(ctx: Context, c: Checked):
    since = ctx.now - timedelta(days=c.days)
    grouped = (select(BehaviorEvent.contact_id).where(BehaviorEvent.kind == EventKind.WEB_VISIT.value,
                                                       BehaviorEvent.occurred_at >= since,
                                                       BehaviorEvent.occurred_at <= ctx.now)
               .group_by(BehaviorEvent.contact_id))
    return aggregate(Contact.id, grouped, func.count(), c.op, c.value, c.upper)


def _offer_viewed(ctx: Context, c: Checked):
    window = [BehaviorEvent.occurred_at >= ctx.now - timedelta(days=c.days)] if c.days else []
    return _set(Contact.id, c, lambda offers: select(BehaviorEvent.contact_id).where(
        BehaviorEvent.kind == EventKind.OFFER_VIEWED.value, BehaviorEvent.offer.in_(offers), *window))


# --- commerce and deals -------------------------------------------------------------------------------------------

def _order_key(ctx: Context):
    return Order.contact_id if ctx.entity == "contact" else Order.company_id


def _orders(ctx: Context, *where):
    key = _order_key(ctx)
    return select(key).where(Order.deleted_at.is_(None), Order.status == "completed", key.is_not(None), *where)


def _owns_product(ctx: Context, c: Checked):
    return _set(ctx.table.id, c, lambda products: _orders(ctx).join(OrderLine, OrderLine.order_id == Order.id)
                .where(OrderLine.product_id.in_(products)))


def _order_count(ctx: Context, c: Checked):
    return aggregate(ctx.table.id, _orders(ctx).group_by(_order_key(ctx)), func.count(), c.op, c.value, c.upper)


def _order_total(ctx: Context, c: Checked):
    return aggregate(ctx.table.id, _orders(ctx).group_by(_order_key(ctx)), func.sum(Order.total), c.op, c.value,
                     c.upper)


def _last_order(ctx: Context, c: Checked):
    dated = _orders(ctx, Order.ordered_at.is_not(None))
    if c.op in ("is_empty", "is_not_empty"):
        return member(ctx.table.id, dated, negative=c.op == "is_empty")
    last = func.max(Order.ordered_at)
    test = relative(last, c.op, c.days, ctx.now) if c.days else compare(last, c.op, c.value, c.upper, by_day=True)
    return member(ctx.table.id, dated.group_by(_order_key(ctx)).having(test))


def _deal_keys(ctx: Context, *where):
    """Keys of the records on live deals matching `where`: a contact as the deal's contact or linked to it."""
    live = (Deal.deleted_at.is_(None), *where)
    if ctx.entity == "company":
        return select(Deal.company_id).where(*live, Deal.company_id.is_not(None))
    primary = select(Deal.contact_id).where(*live, Deal.contact_id.is_not(None))
    linked = select(DealContact.contact_id).join(Deal, Deal.id == DealContact.deal_id).where(*live)
    return union(primary, linked)


def _open_deal(column):
    def build(ctx: Context, c: Checked):
        return _set(ctx.table.id, c, lambda ids: _deal_keys(ctx, Deal.status == "open", column.in_(ids)))
    return build


def _won_deals(ctx: Context, c: Checked):
    key = Deal.contact_id if ctx.entity == "contact" else Deal.company_id
    grouped = select(key).where(Deal.deleted_at.is_(None), Deal.status == "won", key.is_not(None)).group_by(key)
    return aggregate(ctx.table.id, grouped, func.count(), c.op, c.value, c.upper)


# --- surveys and scores ---------------------------------------------------------------------------------------------

def _latest_survey(kind: str):
    """Each contact's latest answer of one kind (the newest by time, then by id)."""
    rank = func.row_number().over(partition_by=SurveyResponse.contact_id,
                                  order_by=(SurveyResponse.answered_at.desc(), SurveyResponse.id.desc()))
    return select(SurveyResponse.contact_id, SurveyResponse.score, rank.label("rank")).where(
        SurveyResponse.kind == kind).subquery()


def _nps_category(ctx: Context, c: Checked):
    latest = _latest_survey("nps")
    positive = NEGATIVE.get(c.op, c.op)
    if positive == "is_not_empty":
        test = latest.c.score.is_not(None)
    else:
        names = c.value if positive == "in" else [c.value]
        test = or_(*(latest.c.score.between(*NPS_CATEGORIES[n]) for n in names))
    answered = select(latest.c.contact_id).where(latest.c.rank == 1, test)
    return member(Contact.id, answered, negative=c.op in NEGATIVE)


def _csat(ctx: Context, c: Checked):
    latest = _latest_survey("csat")
    if c.op in ("is_empty", "is_not_empty"):
        return member(Contact.id, select(latest.c.contact_id), negative=c.op == "is_empty")
    return member(Contact.id, select(latest.c.contact_id).where(latest.c.rank == 1,
                                                                 compare(latest.c.score, c.op, c.value, c.upper)))


def _cross_sell(ctx: Context, c: Checked):
    scored = select(PredictionScore.record_id).where(
        PredictionScore.model == CROSS_SELL_MODEL, PredictionScore.entity == ctx.entity,
        PredictionScore.product_id == c.param)
    if c.op in ("is_empty", "is_not_empty"):
        return member(ctx.table.id, scored, negative=c.op == "is_empty")
    return member(ctx.table.id, scored.where(compare(PredictionScore.probability, c.op, c.value, c.upper)))


# --- custom fields ------------------------------------------------------------------------------------------------

_VALUE = {FieldType.TEXT: ("value_text", "text"), FieldType.DROPDOWN: ("value_text", "text"),
          FieldType.NUMBER: ("value_number", "number"), FieldType.DATE: ("value_date", "date"),
          FieldType.CHECKBOX: ("value_bool", "bool")}


def _custom(field_id: int, column: str, kind: str, on_company_of_contact: bool):
    def build(ctx: Context, c: Checked):
        value = getattr(CustomFieldValue, column)
        key = Contact.company_id if on_company_of_contact else ctx.table.id
        records = select(CustomFieldValue.record_id).where(CustomFieldValue.field_id == field_id)
        if c.op == "is":  # a checkbox never set counts as unchecked
            return member(key, records.where(value.is_(True)), negative=not c.value)
        if c.op in ("in_last", "in_next", "more_than_days_ago"):
            return member(key, records.where(relative(value, c.op, c.days, ctx.now, dates=True)))
        positive = NEGATIVE.get(c.op, c.op)
        test = compare(value, positive, c.value, c.upper, text=kind == "text")
        return member(key, records.where(test), negative=c.op in NEGATIVE)
    return build


# --- the catalogue ------------------------------------------------------------------------------------------------

def _fields() -> list[Field]:
    both, company = ("contact", "company"), ("company",)
    text = {"kind": "text"}
    out = [
        Field("first_name", "First name", "Contact", build=_column("first_name", text=True), **text),
        Field("last_name", "Last name", "Contact", build=_column("last_name", text=True), **text),
        Field("email", "Email", "Contact", build=_column("email", text=True), **text),
        Field("phone", "Phone", "Contact", build=_column("phone", text=True), **text),
        Field("job_title", "Job title", "Contact", build=_column("job_title", text=True), **text),
        Field("source", "Source", "Contact", build=_column("source", text=True), **text),
        Field("lifecycle_stage", "Lifecycle stage", "Contact", "choice", _column("lifecycle_stage"),
              choices=tuple(s.value for s in Lifecycle)),
        Field("email_opt_in", "Email opt-in", "Consent", "bool", _column("email_opt_in")),
        Field("do_not_contact", "Do not contact", "Consent", "bool", _column("do_not_contact")),
        Field("lead_score", "Lead score", "Scores", "number", _column("lead_score")),
        Field("last_engaged_at", "Last engaged", "Behaviour", "date", _column("last_engaged_at", moment=True)),
        Field("name", "Name", "Company", build=_column("name", text=True), entities=company, **text),
        Field("domain", "Domain", "Company", build=_column("domain", text=True), entities=company, **text),
        Field("industry", "Industry", "Company", build=_column("industry", text=True), entities=company, **text),
        Field("employees", "Employees", "Company", "number", _column("employees"), entities=company),
        Field("annual_revenue", "Annual revenue", "Company", "number", _column("annual_revenue"), entities=company),
        Field("company.name", "Company name", "Company", build=_company_column("name", text=True), **text),
        Field("company.industry", "Company industry", "Company", build=_company_column("industry", text=True),
              **text),
        Field("company.employees", "Company employees", "Company", "number", _company_column("employees")),
        Field("company.annual_revenue", "Company annual revenue", "Company", "number",
              _company_column("annual_revenue")),
        Field("company.country", "Company country", "Company", "choice", _company_column("country"),
              values="countries"),
        Field("country", "Country", "Location", "choice", _column("country"), values="countries", entities=both),
        Field("city", "City", "Location", build=_column("city", text=True), entities=both, **text),
        Field("owner", "Owner", "Owner and team", "choice", _owner, values="users", entities=both),
        Field("team", "Owner's team", "Owner and team", "choice", _team, values="teams", entities=both),
        Field("created_at", "Created", "Contact", "date", _column("created_at", moment=True), entities=both),
        Field("tags", "Tags", "Tags", "set", _tags, values="tags", entities=both),
        Field("days_since_web_visit", "Days since the last web visit", "Behaviour", "days_since",
              _event_days_since(EventKind.WEB_VISIT)),
        Field("days_since_email_click", "Days since the last email click", "Behaviour", "days_since",
              _event_days_since(EventKind.EMAIL_CLICK)),
        Field("days_since_email_open", "Days since the last email open", "Behaviour", "days_since",
              _event_days_since(EventKind.EMAIL_OPEN)),
        Field("days_since_form", "Days since the last form submission", "Behaviour", "days_since",
              _event_days_since(EventKind.FORM_SUBMISSION)),
        Field("days_since_activity", "Days since the last logged activity", "Behaviour", "days_since",
              _days_since(Activity.contact_id, func.coalesce(Activity.occurred_at, Activity.done_at),
                          Activity.deleted_at.is_(None), Activity.contact_id.is_not(None))),
        Field("web_visits", "Web visits in the last N days", "Behaviour", "count", _web_visits, needs_days=True),
        Field("offer_viewed", "Viewed offer", "Behaviour", "set", _offer_viewed, values="offers"),
        Field("owns_product", "Owns product", "Commerce", "set", _owns_product, values="products", entities=both),
        Field("order_count", "Number of orders", "Commerce", "count", _order_count, entities=both),
        Field("order_total", "Order total", "Commerce", "count", _order_total, entities=both),
        Field("last_order_date", "Last order date", "Commerce", "date", _last_order, entities=both),
        Field("open_deal_pipeline", "Has an open deal in pipeline", "Deals", "set", _open_deal(Deal.pipeline_id),
              values="pipelines", entities=both),
        Field("open_deal_stage", "Has an open deal in stage", "Deals", "set", _open_deal(Deal.stage_id),
              values="stages", entities=both),
        Field("won_deals", "Won deals", "Deals", "count", _won_deals, entities=both),
        Field("nps_category", "NPS category (latest answer)", "Surveys", "choice", _nps_category,
              choices=tuple(NPS_CATEGORIES)),
        Field("csat", "CSAT (latest answer, 1–5)", "Surveys", "number", _csat),
        Field("cross_sell", "Cross-sell likelihood (0–1) for product", "Scores", "number", _cross_sell,
              param="product", values="products", entities=both),
    ]
    return out


FIXED = {f.key: f for f in _fields()}


def custom_fields(session: Session, actor: Actor, entity: str) -> dict[str, Field]:
    """The custom fields this actor may see, as catalogue entries: the entity's own, and for contacts also their
    company's (`cf.company.<key>`)."""
    out = {}
    sources = [(entity, False)] + ([("company", True)] if entity == "contact" else [])
    for owner, via_company in sources:
        for d in list_field_defs(session=session, actor=actor, entity=Entity(owner)):
            column, kind = _VALUE[FieldType(d.field_type)]
            choices = tuple(d.options) if FieldType(d.field_type) == FieldType.DROPDOWN else ()
            out[f"cf.{owner}.{d.key}"] = Field(
                f"cf.{owner}.{d.key}", d.label if owner == entity else f"Company: {d.label}", "Custom fields",
                "choice" if choices else kind, _custom(d.id, column, kind, via_company), choices=choices,
                entities=(entity,))
    return out


def catalogue(session: Session, actor: Actor, entity: str) -> dict[str, Field]:
    """Every field a definition for `entity` may use, for this actor."""
    fixed = {k: f for k, f in FIXED.items() if entity in f.entities}
    return {**fixed, **custom_fields(session, actor, entity)}


