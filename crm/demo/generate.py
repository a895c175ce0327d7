"""generate_demo: fill an empty CRM with a large, realistic and reproducible history."""
import time
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Connection, Engine, Table, literal, select

from crm.demo import commerce, contacts as contact_rows, directory, engagement, extras, pipeline, pipeline_rows, service
from crm.demo.context import Ctx, Progress, make_ctx
from crm.demo.people import DEMO_PASSWORD, Staff, build_staff
from crm.demo.pools import LOCALES, LocalePool, build_pool
from crm.demo.sizes import SIZES
from crm.demo.writer import Frame, bulk_load
from crm.db import session_scope
from crm.errors import CRMError
from crm.kpis import cube
from crm.models import (
    Activity, BehaviorEvent, Company, CompanyTag, Contact, ContactTag, CustomFieldDef, CustomFieldValue, DataVersion,
    Deal, DealContact, DealLineItem, DealStageHistory, ListSubscriptionEvent, MarketingSpend, Order, OrderLine,
    Product, Quota, SearchToken, StageStat, SurveyResponse, Tag, Team, Ticket, User,
)
from crm.search import rebuild_search_index
from crm.security import hash_password
from crm.stage_stats import refresh_stage_stats

PHONE_POOL_CAP = 20_000  # is_valid_number costs ~25 µs, so larger countries at size large share numbers
# Parents before children, so every foreign key points at a row that already exists.
TABLES: list[Table] = [m.__table__ for m in (
    Team, User, Product, Tag, CustomFieldDef, Company, Contact, Deal, DealStageHistory, DealLineItem, DealContact,
    Activity, BehaviorEvent, Order, OrderLine, Ticket, SurveyResponse, MarketingSpend, ListSubscriptionEvent, Quota,
    ContactTag, CompanyTag, CustomFieldValue)]


def generate_demo(engine: Engine, *, size: str = "small", seed: int = 42, progress: Progress | None = None) -> dict:
    """Fill an EMPTY, migrated database (reference data already seeded by crm.schema.seed_reference_data).

    The same seed on the same day gives the same rows; timestamps count back from today 00:00 UTC. `progress`,
    if given, is called as progress(step, done, total). Returns rows written per table and "elapsed_seconds".
    """
    if size not in SIZES:
        raise CRMError(f"unknown demo size {size!r}; choose one of {', '.join(SIZES)}")
    started = time.perf_counter()
    with engine.connect() as conn:
        _require_empty(conn)  # fail fast, before minutes of generation
        refs, reasons = pipeline.load_pipelines(conn)
    frames = build_frames(make_ctx(SIZES[size], seed, progress), refs, reasons)
    with bulk_load(engine, progress) as writer:
        _require_empty(writer.conn)  # again under the write lock: nobody slipped rows in meanwhile
        for table, frame in frames:
            writer.write(table, frame)
        writer.counts[SearchToken.__tablename__] = rebuild_search_index(writer.conn)
        _bump_data_version(writer.conn)
    with session_scope(engine) as session:  # what the nightly cron would have stored: stage durations
        writer.counts[StageStat.__tablename__] = len(refresh_stage_stats(session=session))
    with session_scope(engine) as session:  # the bulk load bypassed the session: build the KPI cube from it
        writer.counts["kpi_cube"] = cube.rebuild(session)["cube_rows"]
    return {**writer.counts, "elapsed_seconds": round(time.perf_counter() - started, 2)}


def _require_empty(conn: Connection) -> None:
    for table in [Contact.__table__] + [t for t in TABLES if t is not Contact.__table__]:
        if conn.execute(select(literal(1)).select_from(table).limit(1)).first() is not None:
            what = "contacts" if table is Contact.__table__ else f"rows in {table.name}"
            raise CRMError(f"the database already has {what}; demo data only goes into an empty CRM "
                           "(start from a new database)")


def _bump_data_version(conn: Connection) -> None:
    table = DataVersion.__table__
    bumped = conn.execute(table.update().where(table.c.name == "global").values(value=table.c.value + 1)).rowcount
    if not bumped:
        conn.execute(table.insert().values(name="global", value=1))


def _pools(ctx: Ctx) -> list[LocalePool]:
    seeds = ctx.rng.integers(0, 2**31, len(LOCALES)).tolist()
    pools = []
    for i, (locale, seed) in enumerate(zip(LOCALES, seeds)):
        phones = min(int(ctx.size.contacts * locale.weight * 1.1) + 20, PHONE_POOL_CAP)
        pools.append(build_pool(locale, seed=seed, n=ctx.size.pool, phones=phones))
        ctx.report("name pools", i + 1, len(LOCALES))
    return pools


def _touches(n: int, activity: Frame, event: Frame) -> tuple[np.ndarray, np.ndarray]:
    """Per contact: how many past activities and events, and when the latest one happened (-1 if never)."""
    past = ~np.isnat(activity["done_at"])
    contact = np.r_[activity["contact_id"][past], event["contact_id"]] - 1
    when = np.r_[activity["done_at"][past].astype(np.int64), event["occurred_at"].astype(np.int64)]
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, contact, when)
    return np.bincount(contact, minlength=n), last


@dataclass
class World:
    """Everything planned so far: the latent plan objects and the frames already built from them."""
    ctx: Ctx
    staff: Staff
    companies: directory.Companies
    people: directory.Contacts
    spend: tuple[np.ndarray, np.ndarray]
    frames: dict = field(default_factory=dict)


def _plan_directory(ctx: Ctx) -> World:
    """Name pools, staff, companies and contacts (whose final stage waits for their history)."""
    pools = _pools(ctx)
    staff = build_staff(ctx, pools, hash_password(DEMO_PASSWORD))
    spend, months = commerce.plan_spend(ctx)
    companies = directory.plan_companies(ctx, staff)
    people = directory.plan_contacts(ctx, staff, companies, spend, months)
    directory.settle_companies(ctx, companies, people)
    company, domains = directory.company_frame(ctx, companies, pools)
    world = World(ctx, staff, companies, people, (spend, months))
    world.frames.update({Team: staff.teams, User: staff.users, Product: extras.products(ctx), Tag: extras.tags(ctx),
                         CustomFieldDef: extras.custom_field_defs(ctx), Company: company})
    world.frames["identity"] = contact_rows.identity(ctx, people, pools, domains, company["city"])
    return world


def _plan_pipeline(world: World, refs: list[pipeline.PipelineRef], reasons: list[tuple[int, str]]) -> pipeline.Deals:
    """Deals with their stage history, line items, contacts and custom values; quotas sized to the wins."""
    ctx, people = world.ctx, world.people
    deals = pipeline.plan_deals(ctx, world.staff, world.companies, people, refs)
    pipeline.give_demo_rep_deals(world.staff, deals)
    history, stage, entered = pipeline_rows.stage_history(ctx, deals, refs)
    lines, amount = pipeline_rows.line_items(ctx, deals)
    deal = pipeline_rows.deal_frame(ctx, deals, people, refs, [r[0] for r in reasons], stage, entered, amount,
                                    world.frames[Company]["name"])
    rival = [r[0] for r in reasons if "competitor" in r[1].lower()]
    lost_to_rival = np.isin(np.ma.filled(deal["lost_reason_id"], -1), rival)
    world.frames.update({
        Deal: deal, DealStageHistory: history, DealLineItem: lines,
        DealContact: pipeline_rows.deal_contacts(ctx, deals, people),
        Quota: pipeline_rows.quotas(ctx, world.staff, deals, amount),
        CustomFieldValue: extras.custom_field_values(ctx, people, deals, lost_to_rival)})
    return deals


def _plan_engagement(world: World, deals: pipeline.Deals) -> None:
    """Orders, activities, events, service and marketing; then each contact's score and lifecycle stage."""
    ctx, people, companies = world.ctx, world.people, world.companies
    orders, order_lines, purchases = commerce.orders(ctx, people, companies, deals, world.frames[DealLineItem])
    activity = engagement.activities(ctx, world.staff, people, deals)
    event = engagement.events(ctx, people, deals, purchases.offer_views)
    left = service.churned(ctx, purchases)
    tickets, solved = service.tickets(ctx, people, purchases)
    touches, last_touch = _touches(len(people.created), activity, event)
    fit = np.where(people.company >= 0, companies.fit[np.maximum(people.company, 0)], -0.2)
    score = contact_rows.lead_score(ctx, people, touches, fit, last_touch)
    stage = contact_rows.lifecycle(ctx, people, deals, purchases, left, score)
    contact = contact_rows.contact_frame(ctx, people, world.frames.pop("identity"), stage, score, last_touch)
    world.frames.update({
        Contact: contact, Activity: activity, BehaviorEvent: event, Order: orders, OrderLine: order_lines,
        Ticket: tickets, SurveyResponse: service.surveys(ctx, people, purchases, left, solved),
        MarketingSpend: commerce.spend_frame(ctx, *world.spend),
        ListSubscriptionEvent: extras.subscriptions(ctx, people),
        ContactTag: extras.contact_tags(ctx, people, companies, purchases, left, contact["email_opt_in"]),
        CompanyTag: extras.company_tags(ctx, companies)})


def build_frames(ctx: Ctx, refs: list[pipeline.PipelineRef],
                 reasons: list[tuple[int, str]]) -> list[tuple[Table, Frame]]:
    """Plan the whole history in memory, then hand over one frame per table, in TABLES order."""
    world = _plan_directory(ctx)
    ctx.report("planning", 1, 3)
    deals = _plan_pipeline(world, refs, reasons)
    ctx.report("planning", 2, 3)
    _plan_engagement(world, deals)
    ctx.report("planning", 3, 3)
    by_table = {model.__table__: frame for model, frame in world.frames.items()}
    return [(table, by_table[table]) for table in TABLES]
