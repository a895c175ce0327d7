"""Customer KPIs: acquisition cost, email-list growth, NPS, churn and time to resolve tickets (docs/kpis_customers.md).

Every metric counts only live contacts the actor may read, narrowed to `flt.segment_id`'s members when it is set;
the period is [flt.since, flt.until). Facts are read from their own indexes and checked against their contacts in
one go (`_counted_fact`) or by primary key (a correlated EXISTS), so a short period touches few rows even at a
million contacts. CAC reads its new customers from the KPI cube when it can (crm/kpis/cube.py).

Shared definitions:
- an order *counts* when it is completed and not deleted; undated (migrated) orders count as older than any period;
- a *customer at time t* (churn) has a counted order in [t − 365 days, t).
"""
import calendar
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import ColumnElement, and_, case, exists, func, literal, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from crm.errors import ValidationFailed
from crm.frames import select_frame
from crm.kpis import cube
from crm.kpis.base import KpiFilter, Metric, cube_owners, month_span
from crm.kpis.cube_facts import PERIOD_MONTHS
from crm.models import Contact, ListSubscriptionEvent, MarketingSpend, Order, SurveyResponse, Ticket, User
from crm.models.vocab import SubscriptionAction, SurveyKind, TicketStatus
from crm.permissions import Actor, readable_owner_ids
from crm.segments.service import get_segment, members_condition
from crm.sqlfuncs import epoch, unindexed

COMPLETED = "completed"
ACTIVE_WINDOW = timedelta(days=365)  # a customer has a counted order in the year before (churn)
NO_CHANNEL = "(none)"  # the channel of a contact without a source
COMPANY_WIDE = "Marketing spend has no owner: it is company-wide, while new customers count only the contacts you see."
SUB, UNSUB = SubscriptionAction.SUBSCRIBE.value, SubscriptionAction.UNSUBSCRIBE.value


# --- scope ----------------------------------------------------------------------------------------------------------

def _contact_conditions(session: Session, actor: Actor, flt: KpiFilter) -> tuple[list, bool]:
    """WHERE conditions on Contact for the contacts a metric counts, and whether they are narrower than all."""
    conditions = [Contact.deleted_at.is_(None)]
    readable = readable_owner_ids(session, actor, "contacts")
    if readable is not None:
        conditions.append(Contact.owner_id.in_(readable))
    if flt.segment_id is not None:
        segment = get_segment(session=session, actor=actor, segment=flt.segment_id)
        if segment.entity != "contact":
            raise ValidationFailed("segment", f"{segment.name!r} is a {segment.entity} segment, not a contact one")
        conditions.append(members_condition(session=session, actor=actor, segment=segment))
    return conditions, readable is not None or flt.segment_id is not None


def _counted(contact_id, conditions: list):
    """The fact's contact is one the metric counts (a primary-key probe per fact)."""
    return exists(select(Contact.id).where(Contact.id == contact_id, *conditions).correlate_except(Contact))


def _counted_fact(session: Session, actor: Actor, flt: KpiFilter, contact_id) -> tuple[ColumnElement, bool]:
    """A condition on a fact's contact_id: its contact is one the metric counts; and whether those contacts are
    narrower than all.

    Tens of thousands of facts in a period are checked against their contacts once rather than by a probe each:
    for everyone, the contact is not among the deleted ones (ix_contact_deleted, read once); for a team or one
    person, it is among their live contacts (read once from the owner index, and unindexed on the fact, so that
    SQLite still starts from the period). A segment's condition can be anything: then a probe per fact."""
    if flt.segment_id is not None:
        conditions, narrowed = _contact_conditions(session, actor, flt)
        return _counted(contact_id, conditions), narrowed
    deleted = aliased(Contact, name="deleted")
    deleted_ids = select(deleted.id).where(deleted.deleted_at.is_not(None))
    readable = readable_owner_ids(session, actor, "contacts")
    if readable is None:
        return contact_id.not_in(deleted_ids), False
    live = select(Contact.id).where(Contact.owner_id.in_(readable), Contact.id.not_in(deleted_ids))
    return unindexed(contact_id).in_(live), True


def _counted_order():
    return [Order.status == COMPLETED, Order.deleted_at.is_(None)]


# --- 7 customer acquisition cost ------------------------------------------------------------------------------------

def month_shares(flt: KpiFilter) -> dict[date, float]:
    """The first day of each month the period overlaps, with the share of that month's days inside the period."""
    shares, month = {}, flt.start.replace(day=1)
    while month <= flt.end:
        days = calendar.monthrange(month.year, month.month)[1]
        after = month + timedelta(days=days)
        inside = (min(after, flt.end + timedelta(days=1)) - max(month, flt.start)).days
        shares[month] = inside / days
        month = after
    return shares


def _spend_by_channel(session: Session, flt: KpiFilter) -> pd.DataFrame:
    shares = month_shares(flt)
    if not shares:
        return pd.DataFrame({"channel": [], "spend": []})
    share = case(*((MarketingSpend.month == m, s) for m, s in shares.items()), else_=0.0)
    stmt = (select(MarketingSpend.channel.label("channel"), func.sum(MarketingSpend.amount * share).label("spend"))
            .where(MarketingSpend.month.in_(list(shares))).group_by(MarketingSpend.channel))
    return select_frame(session, stmt)


def _new_customers(flt: KpiFilter):
    """Contacts whose first counted order falls in the period: (contact_id, first_order_at)."""
    earlier = aliased(Order, name="earlier")
    before = select(earlier.id).where(earlier.contact_id == Order.contact_id, earlier.status == COMPLETED,
                                      earlier.deleted_at.is_(None),
                                      or_(earlier.ordered_at.is_(None), earlier.ordered_at < flt.since))
    return (select(Order.contact_id.label("contact_id"), func.min(Order.ordered_at).label("first_order_at"))
            .where(*_counted_order(), Order.ordered_at >= flt.since, Order.ordered_at < flt.until,
                   Order.contact_id.is_not(None), ~before.exists())
            .group_by(Order.contact_id).subquery("new_customer"))


def _new_by_channel(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """channel, new_customers: the channels with new customers in the period. From the KPI cube's first orders when
    it can answer (a sum over a few rows per day); else from the orders, one probe for an earlier order each."""
    usable, owners = cube_owners(session, actor, flt)
    if usable:
        found = cube.totals(session, ["new_customers"], owners, since=flt.start, until=flt.until.date(), by="key")
        out = pd.DataFrame({"channel": found["key"], "new_customers": found["new_customers"].round().astype(int)})
        return out[out["new_customers"] > 0]  # a refreshed cube can keep rows that sum to zero
    conditions, _ = _contact_conditions(session, actor, flt)
    new = _new_customers(flt)
    channel = func.coalesce(Contact.source, NO_CHANNEL).label("channel")
    return select_frame(session, select(channel, func.count().label("new_customers")).select_from(new)
                        .join(Contact, Contact.id == new.c.contact_id).where(*conditions).group_by(channel))


def cac_by_channel(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """channel, spend (money), new_customers, cac (money, NaN without new customers): one row per channel that
    had spend or new customers in the period, by channel. A contact's channel is its `source`."""
    out = _spend_by_channel(session, flt).merge(_new_by_channel(session, actor, flt), on="channel", how="outer")
    out = out.fillna({"spend": 0.0, "new_customers": 0}).astype({"spend": float, "new_customers": int})
    out["cac"] = out["spend"] / out["new_customers"].where(out["new_customers"] > 0)
    return out.sort_values("channel", ignore_index=True)


def customer_acquisition_cost(session: Session, actor: Actor, flt: KpiFilter) -> Metric:
    """Customer acquisition cost (money): marketing spend in the period ÷ new customers in the period.

    New customer: a contact whose first completed, non-deleted order is dated in the period (an undated order
    counts as earlier, so its contact is never new). Spend: each channel's monthly amounts, prorated by the days of
    the month inside the period (15 of 30 days → half). Per channel, new customers are matched on the contact's
    source. Zero new customers → None. Spend is company-wide; for an actor who sees only some contacts, or a
    segment, `detail["note"]` says so.
    """
    _, narrowed = _contact_conditions(session, actor, flt)
    table = cac_by_channel(session, actor, flt)
    spend, new = float(table["spend"].sum()), int(table["new_customers"].sum())
    by_channel = {channel: {"spend": float(spend), "new_customers": int(n), "cac": None if pd.isna(cac) else float(cac)}
                  for channel, spend, n, cac in zip(table["channel"], table["spend"], table["new_customers"],
                                                    table["cac"])}
    detail = {"by_channel": by_channel, **({"note": COMPANY_WIDE} if narrowed else {})}
    return Metric("cac", "Customer acquisition cost", spend / new if new else None, "money", spend, new, detail)


def cac_records(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """The new customers behind CAC: contact_id, name, channel, owner_id, first_order_at."""
    conditions, _ = _contact_conditions(session, actor, flt)
    new = _new_customers(flt)
    stmt = (select(new.c.contact_id, _name(), func.coalesce(Contact.source, NO_CHANNEL).label("channel"),
                   Contact.owner_id, new.c.first_order_at)
            .join(Contact, Contact.id == new.c.contact_id).where(*conditions).order_by(new.c.first_order_at))
    return select_frame(session, stmt)


def _name():
    return (Contact.first_name + literal(" ") + Contact.last_name).label("name")


# --- 8 email-list growth --------------------------------------------------------------------------------------------

def _subscription_changes(session: Session, actor: Actor, flt: KpiFilter, list_name: str | None):
    """Events up to the period's end with `effective`: the event changed its (contact, list) pair's state. A
    pair starts unsubscribed; a repeated subscribe (or unsubscribe) changes nothing."""
    e = ListSubscriptionEvent
    previous = func.lag(e.action).over(partition_by=(e.contact_id, e.list_name), order_by=(e.occurred_at, e.id))
    where = [e.occurred_at < flt.until, _counted_fact(session, actor, flt, e.contact_id)[0]]
    if list_name is not None:
        where.append(e.list_name == list_name)
    events = select(e.id, e.contact_id, e.list_name, e.action, e.occurred_at, previous.label("previous")).where(*where)
    events = events.subquery("event")
    return events, events.c.action != func.coalesce(events.c.previous, UNSUB)


def email_list_growth_by_list(session: Session, actor: Actor, flt: KpiFilter, *, list_name: str | None = None) -> pd.DataFrame:
    """list_name, size_at_start, subscribed, unsubscribed, growth (ratio, NaN for an empty list): one row per list."""
    usable, owners = cube_owners(session, actor, flt)
    if usable:
        out = _list_growth_from_cube(session, owners, flt, list_name)
    else:
        out = _list_growth_from_events(session, actor, flt, list_name)
    net = out["subscribed"] - out["unsubscribed"]
    out["growth"] = net / out["size_at_start"].where(out["size_at_start"] > 0)
    return out


def _list_growth_from_cube(session: Session, owners, flt: KpiFilter, list_name: str | None) -> pd.DataFrame:
    """The same table from the cube's counts of state changes (list_sub, list_unsub) and events per list."""
    measures = ["list_sub", "list_unsub", "list_events"]
    before = cube.totals(session, measures, owners, until=flt.start, by="key").set_index("key")
    inside = cube.totals(session, measures, owners, since=flt.start, until=flt.until.date(), by="key").set_index("key")
    lists = sorted(set(before.index[before["list_events"] > 0]) | set(inside.index[inside["list_events"] > 0]))
    if list_name is not None:
        lists = [name for name in lists if name == list_name]
    before, inside = before.reindex(lists, fill_value=0.0), inside.reindex(lists, fill_value=0.0)
    return pd.DataFrame({"list_name": lists,
                         "size_at_start": (before["list_sub"] - before["list_unsub"]).round().astype(int).to_numpy(),
                         "subscribed": inside["list_sub"].round().astype(int).to_numpy(),
                         "unsubscribed": inside["list_unsub"].round().astype(int).to_numpy()})


def _list_growth_from_events(session: Session, actor: Actor, flt: KpiFilter, list_name: str | None) -> pd.DataFrame:
    ev, effective = _subscription_changes(session, actor, flt, list_name)
    before, inside = ev.c.occurred_at < flt.since, ev.c.occurred_at >= flt.since

    def total(*conditions, then=1):
        return func.coalesce(func.sum(case((and_(effective, *conditions), then), else_=0)), 0)

    stmt = (select(ev.c.list_name, (total(before, ev.c.action == SUB) - total(before, ev.c.action == UNSUB))
                   .label("size_at_start"),
                   total(inside, ev.c.action == SUB).label("subscribed"),
                   total(inside, ev.c.action == UNSUB).label("unsubscribed"))
            .group_by(ev.c.list_name).order_by(ev.c.list_name))
    return select_frame(session, stmt).astype({"size_at_start": int, "subscribed": int, "unsubscribed": int})


def email_list_growth(session: Session, actor: Actor, flt: KpiFilter, *, list_name: str | None = None) -> Metric:
    """Email-list growth rate (ratio): (new subscribers − unsubscribes in the period) ÷ list size at its start.

    Per (contact, list) pair the subscription state follows its events in time order (ties by id); only events that
    change the state count, so a repeated subscribe is not a new subscriber. List size: pairs subscribed just before
    `since`. All lists (the default) add up pairs, so a contact on two lists counts twice; `list_name` picks one.
    An empty list at the start → None. Events of deleted or unreadable contacts never count.
    """
    table = email_list_growth_by_list(session, actor, flt, list_name=list_name)
    size = int(table["size_at_start"].sum())
    subscribed, unsubscribed = int(table["subscribed"].sum()), int(table["unsubscribed"].sum())
    by_list = {r.list_name: {"size_at_start": int(r.size_at_start), "subscribed": int(r.subscribed),
                             "unsubscribed": int(r.unsubscribed), "growth": None if pd.isna(r.growth) else float(r.growth)}
               for r in table.itertuples()}
    net = subscribed - unsubscribed
    return Metric("email_list_growth", "Email-list growth", net / size if size else None, "ratio", net, size,
                  {"subscribed": subscribed, "unsubscribed": unsubscribed, "by_list": by_list})


def email_list_growth_records(session: Session, actor: Actor, flt: KpiFilter, *,
                              list_name: str | None = None) -> pd.DataFrame:
    """The subscribes and unsubscribes counted in the period: event_id, contact_id, list_name, action, occurred_at."""
    ev, effective = _subscription_changes(session, actor, flt, list_name)
    stmt = (select(ev.c.id.label("event_id"), ev.c.contact_id, ev.c.list_name, ev.c.action, ev.c.occurred_at)
            .where(effective, ev.c.occurred_at >= flt.since).order_by(ev.c.occurred_at, ev.c.id))
    return select_frame(session, stmt)


# --- 9 net promoter score -------------------------------------------------------------------------------------------

def _latest_answers(session: Session, actor: Actor, flt: KpiFilter, bucket=None):
    """Each contact's latest NPS answer in the period (per bucket when given), as (id, contact_id, score,
    answered_at, bucket)."""
    s = SurveyResponse
    counted, _ = _counted_fact(session, actor, flt, s.contact_id)
    partition = (s.contact_id,) if bucket is None else (s.contact_id, bucket)
    rank = func.row_number().over(partition_by=partition, order_by=(s.answered_at.desc(), s.id.desc()))
    columns = [s.id, s.contact_id, s.score, s.answered_at, *(() if bucket is None else (bucket.label("bucket"),))]
    ranked = (select(*columns, rank.label("rank"))
              .where(s.kind == SurveyKind.NPS.value, s.answered_at >= flt.since, s.answered_at < flt.until, counted)
              .subquery("ranked"))
    return ranked, ranked.c.rank == 1


def _nps_counts(ranked):
    promoter, detractor = ranked.c.score >= 9, ranked.c.score <= 6
    return (func.count().label("responses"), func.sum(case((promoter, 1), else_=0)).label("promoters"),
            func.sum(case((detractor, 1), else_=0)).label("detractors"))


def net_promoter_score(session: Session, actor: Actor, flt: KpiFilter) -> Metric:
    """Net promoter score (score, −100..100): % promoters (9–10) − % detractors (0–6) among answers.

    One answer per contact: their latest NPS answer in the period (ties by id), so a contact asked twice is not
    counted twice. Passives (7–8) count only in the denominator. No answers → None.
    """
    ranked, latest = _latest_answers(session, actor, flt)
    n, promoters, detractors = session.execute(select(*_nps_counts(ranked)).where(latest)).one()
    promoters, detractors = promoters or 0, detractors or 0
    value = 100.0 * (promoters - detractors) / n if n else None
    return Metric("nps", "Net promoter score", value, "score", promoters - detractors, n,
                  {"promoters": promoters, "passives": n - promoters - detractors, "detractors": detractors})


def nps_trend(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """month (first day), responses, promoters, passives, detractors, nps (NaN without answers): one row per
    calendar month the period overlaps (clipped to the period), each contact's latest answer in that month."""
    months = list(month_shares(flt))
    ends = [_midnight(m) for m in months[1:]]
    # One month has no boundaries inside it, and CASE needs at least one WHEN.
    bucket = case(*((SurveyResponse.answered_at < end, i) for i, end in enumerate(ends)), else_=len(ends)) \
        if ends else literal(0)
    ranked, latest = _latest_answers(session, actor, flt, bucket)
    found = select_frame(session, select(ranked.c.bucket, *_nps_counts(ranked)).where(latest)
                         .group_by(ranked.c.bucket))
    out = pd.DataFrame({"bucket": range(len(months)), "month": months})
    out = out.merge(found, on="bucket", how="left").drop(columns="bucket")
    out = out.fillna(0).astype({"responses": int, "promoters": int, "detractors": int})
    out["passives"] = out["responses"] - out["promoters"] - out["detractors"]
    out["nps"] = 100.0 * (out["promoters"] - out["detractors"]) / out["responses"].where(out["responses"] > 0)
    return out[["month", "responses", "promoters", "passives", "detractors", "nps"]]


def _midnight(day: date):
    return KpiFilter(day, day).since


def nps_records(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """The answers NPS counts: response_id, contact_id, name, score, group, answered_at."""
    ranked, latest = _latest_answers(session, actor, flt)
    group = case((ranked.c.score >= 9, "promoter"), (ranked.c.score <= 6, "detractor"), else_="passive")
    stmt = (select(ranked.c.id.label("response_id"), ranked.c.contact_id, _name(), ranked.c.score,
                   group.label("group"), ranked.c.answered_at)
            .join(Contact, Contact.id == ranked.c.contact_id).where(latest).order_by(ranked.c.answered_at))
    return select_frame(session, stmt)


# --- 10 churn -------------------------------------------------------------------------------------------------------

def _customers_at_start(session: Session, actor: Actor, flt: KpiFilter):
    """Customers at `since`, one row each: contact_id, last_order_at (before since), lost (1 if not a customer at
    `until`, i.e. no counted order in [until − 365 days, until))."""
    was = case((Order.ordered_at < flt.since, Order.ordered_at))
    still = case((Order.ordered_at >= flt.until - ACTIVE_WINDOW, 1), else_=0)
    per = (select(Order.contact_id.label("contact_id"), func.max(was).label("last_order_at"),
                  (1 - func.max(still)).label("lost"))
           .where(*_counted_order(), Order.ordered_at >= flt.since - ACTIVE_WINDOW, Order.ordered_at < flt.until,
                  Order.contact_id.is_not(None))
           .group_by(Order.contact_id).subquery("customer"))
    return per, [per.c.last_order_at.is_not(None), _counted_fact(session, actor, flt, per.c.contact_id)[0]]


def churn_rate(session: Session, actor: Actor, flt: KpiFilter) -> Metric:
    """Churn rate (ratio): customers lost ÷ customers at the period start.

    A contact is a customer at time t when it has a completed, non-deleted order dated in [t − 365 days, t).
    Customers at the start: customers at `since`. Lost: those of them who are no longer customers at `until` (no
    such order in the year before `until`). Undated orders are ignored. No customers at the start → None.
    """
    usable, owners = cube_owners(session, actor, flt)
    n = month_span(flt)
    if usable and n in PERIOD_MONTHS:  # customers at since = active at since; lost_n counts the lost ones
        customers = cube.active(session, owners, flt.start)
        lost = int(round(cube.total(session, f"lost_{n}", owners, since=flt.start, until=flt.start + timedelta(days=1))))
    else:
        per, where = _customers_at_start(session, actor, flt)
        customers, lost = session.execute(select(func.count(), func.sum(per.c.lost)).where(*where)).one()
        lost = lost or 0
    return Metric("churn_rate", "Churn rate", lost / customers if customers else None, "ratio", lost, customers,
                  {"window_days": ACTIVE_WINDOW.days})


def churn_records(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """The customers at the period start: contact_id, name, owner_id, last_order_at (before the start), lost."""
    per, where = _customers_at_start(session, actor, flt)
    stmt = (select(per.c.contact_id, _name(), Contact.owner_id, per.c.last_order_at, per.c.lost)
            .join(Contact, Contact.id == per.c.contact_id).where(*where).order_by(per.c.contact_id))
    out = select_frame(session, stmt)
    return out.astype({"lost": bool})


# --- 11 mean time to resolve ----------------------------------------------------------------------------------------

def _resolved_tickets(session: Session, actor: Actor, flt: KpiFilter) -> list:
    """WHERE conditions on Ticket for the tickets MTTR averages."""
    where = [Ticket.deleted_at.is_(None), Ticket.status == TicketStatus.RESOLVED.value,
             Ticket.resolved_at >= flt.since, Ticket.resolved_at < flt.until, Ticket.resolved_at >= Ticket.opened_at]
    # A ticket follows its contact's visibility; one without a contact counts only for an unrestricted view.
    linked, narrowed = _counted_fact(session, actor, flt, Ticket.contact_id)
    where.append(linked if narrowed else or_(Ticket.contact_id.is_(None), linked))
    if flt.owner_id is not None:
        where.append(Ticket.owner_id == flt.owner_id)
    elif flt.team_id is not None:
        where.append(Ticket.owner_id.in_(select(User.id).where(User.team_id == flt.team_id)))
    return where


def _hours():
    return (epoch(Ticket.resolved_at) - epoch(Ticket.opened_at)) / 3600.0


def mean_time_to_resolve(session: Session, actor: Actor, flt: KpiFilter) -> Metric:
    """Mean time to resolve (hours): the mean of resolved_at − opened_at over tickets resolved in the period.

    Counted: live tickets whose status is resolved now (reopened and open tickets are out) and whose resolved_at
    falls in the period and is not before opened_at. Team and owner filters apply to the ticket's owner; a ticket
    counts only if its contact does (tickets without a contact only when the actor sees every contact and no
    segment is chosen). No such tickets → None.
    """
    n, mean = session.execute(select(func.count(), func.avg(_hours())).where(*_resolved_tickets(session, actor, flt))).one()
    return Metric("mttr", "Mean time to resolve", float(mean) if n else None, "hours", None, n, {"tickets": n})


def mean_time_to_resolve_records(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """The tickets behind MTTR: ticket_id, subject, contact_id, owner_id, opened_at, resolved_at, hours."""
    stmt = (select(Ticket.id.label("ticket_id"), Ticket.subject, Ticket.contact_id, Ticket.owner_id, Ticket.opened_at,
                   Ticket.resolved_at, _hours().label("hours"))
            .where(*_resolved_tickets(session, actor, flt)).order_by(Ticket.resolved_at, Ticket.id))
    return select_frame(session, stmt)


METRICS = {
    "cac": customer_acquisition_cost,
    "email_list_growth": email_list_growth,
    "nps": net_promoter_score,
    "churn_rate": churn_rate,
    "mttr": mean_time_to_resolve,
}
