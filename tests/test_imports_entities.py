"""Imports of companies, deals, products, orders, activities, tickets and users, on SQLite and PostgreSQL."""
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from crm.db import read_scope
from crm.models import (
    Activity, Company, Deal, DealLineItem, DealStageHistory, Order, OrderLine, Pipeline, Product, Stage, Team, Ticket,
    User,
)
from tests.test_imports import count, csv, run


def reasons(summary) -> list[tuple[int, str, str]]:
    return [(p.row, p.column, p.reason) for p in summary.problems]


# Companies -------------------------------------------------------------------------------------------------------

def test_parents_may_come_later_in_the_file_and_a_rejected_parent_is_named(engine, admin, tmp_path):
    data = csv("Name,Parent,Industry,Domain",
               "Child One,Holding,Software,child1.example",      # its parent is row 4, further down
               "Child Two,Broken Parent,Retail,",                # its parent's row is rejected
               "Holding,,Finance,holding.example",
               "Broken Parent,,technolgy,")                       # boundary: a misspelt known industry
    summary = run(engine, "companies", data, who=admin, tmp=tmp_path)
    assert (summary.created, summary.rejected) == (2, 2)
    assert reasons(summary) == [
        (3, "Parent", "unknown company 'Broken Parent'; row 5 of this file, which would have created it, was rejected"),
        (5, "Industry", "unknown industry 'technolgy' (did you mean 'Technology'?); a new industry must not look "
                        "like a misspelt known one")]
    with read_scope(engine) as s:
        parents = dict(s.execute(select(Company.name, Company.parent_id)).all())
        ids = dict(s.execute(select(Company.name, Company.id)).all())
    assert parents == {"Child One": ids["Holding"], "Holding": None}


def test_a_new_industry_unlike_any_known_one_is_accepted_in_its_own_spelling(engine, admin, tmp_path):
    summary = run(engine, "companies", csv("Name,Industry", "Acme,Aerospace", "Beta,software"), who=admin, tmp=tmp_path)
    assert summary.created == 2
    with read_scope(engine) as s:
        assert sorted(s.execute(select(Company.industry)).scalars()) == ["Aerospace", "Software"]


def test_companies_upsert_by_domain_and_optionally_by_name(engine, admin, tmp_path):
    run(engine, "companies", csv("Name,Website", "Acme,https://www.acme.example/about"), who=admin, tmp=tmp_path)
    by_domain = run(engine, "companies", csv("Name,Website,City", "ACME Inc,acme.example,Lyon"), who=admin,
                    tmp=tmp_path)
    assert (by_domain.created, by_domain.updated) == (0, 1)
    mapping = {"columns": {"Name": "name", "City": "city"}, "options": {"match_company_by_name": True}}
    by_name = run(engine, "companies", csv("Name,City", "acme inc,Paris", "Newco,Rome"), who=admin, tmp=tmp_path,
                  mapping=mapping)
    assert (by_name.created, by_name.updated) == (1, 1)
    without = run(engine, "companies", csv("Name,City", "acme inc,Paris"), who=admin, tmp=tmp_path)
    assert without.created == 1  # names are not a key unless the mapping says so


def test_scales_and_country_names(engine, admin, tmp_path):
    mapping = {"columns": {"account": "name", "revenue": "annual_revenue", "office": "country", "staff": "employees"},
               "scale": {"revenue": 1_000_000}}
    data = csv("account,revenue,office,staff", "Acme,1.5,United States,12", "Beta,2,Philipines,3", "Cy,1,TH,2.5")
    summary = run(engine, "companies", data, who=admin, tmp=tmp_path, mapping=mapping)
    assert summary.created == 1
    assert reasons(summary) == [(3, "office", "unknown country 'Philipines' (did you mean 'Philippines'?)"),
                                (4, "staff", "'2.5' is not a whole number")]
    with read_scope(engine) as s:
        acme = s.execute(select(Company)).scalar_one()
    assert (acme.annual_revenue, acme.country, acme.employees) == (1_500_000, "US", 12)


# Products --------------------------------------------------------------------------------------------------------

def test_products_upsert_by_name_ignoring_case(engine, admin, tmp_path):
    run(engine, "products", csv("product,series,sales_price", "GTX Pro,GTX,4821"), who=admin, tmp=tmp_path)
    again = run(engine, "products", csv("product,series,sales_price", "GTX Pro,GTX,4821", "gtx  pro,GTX,5000"),
                who=admin, tmp=tmp_path)
    assert (again.unchanged, again.rejected) == (1, 1)
    assert "same name as row 2" in again.problems[0].reason
    with read_scope(engine) as s:
        assert s.execute(select(Product.list_price)).scalars().all() == [4821]


# Deals -----------------------------------------------------------------------------------------------------------

@pytest.fixture
def catalogue(engine, admin, tmp_path):
    run(engine, "products", csv("Name,Price", "GTX Pro,4821", "MG Special,55"), who=admin, tmp=tmp_path)
    run(engine, "companies", csv("Name,Domain", "Acme,acme.example"), who=admin, tmp=tmp_path)
    run(engine, "users", csv("Name,Email", "Rita Rep,rita@example.com"), who=admin, tmp=tmp_path)


DEALS = csv(
    "ID,Owner,Product,Company,Stage,Opened,Closed,Value,Lost reason",
    "D1,Rita Rep,GTX Pro,Acme,Closed won,2024-01-10,2024-03-01,4500,",
    "D2,rita@example.com,MG Special,,Discovery,2024-02-01,,,",           # open: amount from the product line
    "D3,Rita Rep,GTX Pro,acme.example,Closed lost,2024-01-05,2024-02-01,0,price",
    "D4,Rita Rep,GTXPro,Acme,Closed won,2024-01-10,2024-03-01,10,",      # a misspelt product
    "D5,Rita Rep,GTX Pro,Acme,Closed won,2024-01-10,,10,",               # won without a close date
    "D6,Rita Rep,GTX Pro,Acme,Discovery,2024-01-10,2024-03-01,,",        # open with a close date
    "D7,Rita Rep,GTX Pro,Acme,Closed won,2024-03-10,2024-03-01,10,",     # closed before it opened
    "D8,Rita Rep,GTX Pro,Acme,Proposal,2024-03-10,,10,Price",            # a lost reason on an open deal
    "D9,Rita Rep,GTX Pro,Acme,Prospecting,2024-03-10,,10,",              # not a stage of the pipeline
)


def test_deals_with_closed_history_lines_and_reasons(engine, admin, tmp_path, catalogue):
    summary = run(engine, "deals", DEALS, who=admin, tmp=tmp_path)
    assert (summary.created, summary.rejected) == (3, 6)
    assert reasons(summary) == [
        (5, "Product", "unknown product 'GTXPro' (did you mean 'GTX Pro'?)"),
        (6, "Closed", "is required for a won deal"),
        (7, "Closed", "an open deal has no close date (or the stage should be won/lost)"),
        (8, "Closed", "is before the deal was opened"),
        (9, "Lost reason", "only a lost deal has a lost reason"),
        (10, "Stage", "unknown stage 'Prospecting' in the pipeline 'New business'")]
    with read_scope(engine) as s:
        deals = {d.external_id: d for d in s.execute(select(Deal)).scalars()}
        stage = {st.id: st.name for st in s.execute(select(Stage)).scalars()}
        history = s.execute(select(DealStageHistory.deal_id, DealStageHistory.stage_id, DealStageHistory.entered_at,
                                   DealStageHistory.exited_at).order_by(DealStageHistory.id)).all()
        lines = s.execute(select(DealLineItem.deal_id, DealLineItem.quantity, DealLineItem.unit_price)).all()
    won, open_, lost = deals["D1"], deals["D2"], deals["D3"]
    assert (won.status, won.amount, won.forecast_category, stage[won.stage_id]) == ("won", 4500, "closed", "Closed won")
    assert won.created_at == datetime(2024, 1, 10, tzinfo=UTC) and won.closed_at == datetime(2024, 3, 1, tzinfo=UTC)
    assert (open_.status, open_.amount, open_.title, open_.company_id) == ("open", 55, "MG Special", None)
    assert (lost.status, lost.lost_reason_id is not None, lost.title) == ("lost", True, "Acme – GTX Pro")
    won_history = [(stage[st], entered.date().isoformat(), exited and exited.date().isoformat())
                   for deal, st, entered, exited in history if deal == won.id]
    assert won_history == [("Qualification", "2024-01-10", "2024-03-01"), ("Closed won", "2024-03-01", None)]
    assert [(stage[st], exited) for deal, st, _, exited in history if deal == open_.id] == [("Discovery", None)]
    assert sorted((q, p) for _, q, p in lines) == [(1, 55), (1, 4821), (1, 4821)]


def test_deal_reimport_is_a_no_op_and_a_stage_change_extends_the_history(engine, admin, tmp_path, catalogue):
    run(engine, "deals", DEALS, who=admin, tmp=tmp_path)
    again = run(engine, "deals", DEALS, who=admin, tmp=tmp_path)
    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, 3, 6)
    moved = run(engine, "deals", csv("ID,Stage,Closed", "D2,Closed won,2024-04-01"), who=admin, tmp=tmp_path)
    assert moved.updated == 1
    with read_scope(engine) as s:
        deal = s.execute(select(Deal).where(Deal.external_id == "D2")).scalar_one()
        rows = s.execute(select(Stage.name, DealStageHistory.exited_at).join(Stage)
                         .where(DealStageHistory.deal_id == deal.id).order_by(DealStageHistory.id)).all()
    assert (deal.status, deal.version) == ("won", 2)
    assert rows == [("Discovery", datetime(2024, 4, 1, tzinfo=UTC)), ("Closed won", None)]


def test_status_column_and_stage_must_agree(engine, admin, tmp_path, catalogue):
    data = csv("ID,Status,Stage,Closed", "S1,won,,2024-01-02", "S2,lost,Closed won,2024-01-02", "S3,open,,")
    summary = run(engine, "deals", data, who=admin, tmp=tmp_path)
    assert reasons(summary) == [(3, "Status", "lost contradicts the stage 'Closed won', which is won")]
    with read_scope(engine) as s:
        assert dict(s.execute(select(Deal.external_id, Deal.status)).all()) == {"S1": "won", "S3": "open"}


def test_a_pipeline_is_created_only_when_the_mapping_asks(engine, admin, tmp_path, catalogue):
    spec = {"name": "Maven", "stages": [{"name": "Prospecting", "probability": 0.1},
                                        {"name": "Engaging", "probability": 0.4},
                                        {"name": "Won", "probability": 1, "is_won": True},
                                        {"name": "Lost", "probability": 0, "is_lost": True}]}
    mapping = {"columns": {"ID": "external_id", "Stage": "stage", "Closed": "closed_at"},
               "options": {"create_pipeline": spec}}
    data = csv("ID,Stage,Closed", "M1,Engaging,", "M2,Won,2024-05-01")
    summary = run(engine, "deals", data, who=admin, tmp=tmp_path, mapping=mapping)
    assert (summary.created, summary.also_created) == (2, {"pipeline": 1, "stage": 4})
    assert run(engine, "deals", data, who=admin, tmp=tmp_path, mapping=mapping).also_created == {}
    assert count(engine, Pipeline) == 3


# Orders, activities, tickets --------------------------------------------------------------------------------------

def test_orders_activities_and_tickets_upsert_by_external_id(engine, admin, tmp_path, catalogue):
    run(engine, "contacts", csv("Email,First name", "ann@example.com,Ann"), who=admin, tmp=tmp_path)
    orders = csv("Order ID,Customer email,Product,Qty,Order date", "O1,ann@example.com,GTX Pro,2,2024-05-01",
                 "O2,nobody@example.com,GTX Pro,1,2024-05-01", "O3,ann@example.com,,,2024-05-02")
    first = run(engine, "orders", orders, who=admin, tmp=tmp_path)
    assert (first.created, first.rejected) == (2, 1)
    assert reasons(first) == [(3, "Customer email", "unknown contact 'nobody@example.com'")]
    activities = csv("ID,Type,Subject,Contact email,Date,Done", "A1,Call,Intro call,ann@example.com,2024-05-01 10:00,",
                     "A2,Task,Send quote,ann@example.com,,2024-05-03", "A3,Meeting,Demo,ann@example.com,,2024-05-03")
    acts = run(engine, "activities", activities, who=admin, tmp=tmp_path)
    assert (acts.created, acts.rejected) == (2, 1)
    tickets = csv("Ticket ID,Subject,Requester,Status,Created,Resolved",
                  "T1,Login fails,ann@example.com,resolved,2024-05-01,2024-05-02",
                  "T2,Slow,ann@example.com,open,2024-05-01,2024-05-02", "T3,No date,ann@example.com,open,,")
    tick = run(engine, "tickets", tickets, who=admin, tmp=tmp_path)
    assert (tick.created, tick.rejected) == (1, 2)
    for entity, data in (("orders", orders), ("activities", activities), ("tickets", tickets)):
        again = run(engine, entity, data, who=admin, tmp=tmp_path)
        assert (again.created, again.updated) == (0, 0), entity
    with read_scope(engine) as s:
        order = s.execute(select(Order).where(Order.external_id == "O1")).scalar_one()
        assert (order.total, s.execute(select(OrderLine.quantity)).scalars().all()) == (9642, [2])
        assert s.execute(select(Activity.kind).order_by(Activity.id)).scalars().all() == ["call", "task"]
        assert s.execute(select(Ticket.status)).scalars().all() == ["resolved"]


def test_records_without_an_external_id_come_with_a_warning(engine, admin, tmp_path):
    summary = run(engine, "activities", csv("Type,Subject", "note,Hello"), who=admin, tmp=tmp_path)
    assert summary.created == 1 and "running this file again would create" in summary.warnings[0]


# Users and teams -------------------------------------------------------------------------------------------------

TEAMS = csv("sales_agent,manager,regional_office", "Anna Snelling,Dustin Brinkmann,Central",
            "Mei-Mei Johns,Dustin Brinkmann,Central", "Violet Mclelland,Cara Losch,East",
            "Zoë Ångström,Dustin Brinkmann,East")  # her manager leads another team
USER_MAPPING = {"columns": {"sales_agent": "full_name", "manager": "manager", "regional_office": "team"},
                "options": {"email_domain": "maven.example", "create_teams": True, "create_managers": True}}


def test_users_teams_and_managers_without_passwords(engine, admin, tmp_path):
    summary = run(engine, "users", TEAMS, who=admin, tmp=tmp_path, mapping=USER_MAPPING)
    assert (summary.created, summary.rejected) == (3, 1)
    assert summary.also_created == {"team": 2, "user (manager)": 2}
    assert reasons(summary) == [(5, "manager", "'Dustin Brinkmann' manages the team 'Central', not this row's team")]
    with read_scope(engine) as s:
        users = {u.email: u for u in s.execute(select(User).where(User.id != admin.id)).scalars()}
        teams = dict(s.execute(select(Team.id, Team.name)).all())
    assert sorted(users) == ["anna.snelling@maven.example", "cara.losch@maven.example",
                             "dustin.brinkmann@maven.example", "mei-mei.johns@maven.example",
                             "violet.mclelland@maven.example"]
    assert all(u.password_hash is None for u in users.values())
    dustin = users["dustin.brinkmann@maven.example"]
    assert (dustin.role, teams[dustin.team_id]) == ("manager", "Central")
    assert users["anna.snelling@maven.example"].role == "rep"
    again = run(engine, "users", TEAMS, who=admin, tmp=tmp_path, mapping=USER_MAPPING)
    assert (again.created, again.unchanged, again.also_created) == (0, 3, {})


def test_users_need_an_email_or_a_domain_to_make_one(engine, admin, tmp_path):
    summary = run(engine, "users", csv("Name,Team", "Ann,Central"), who=admin, tmp=tmp_path)
    assert reasons(summary) == [
        (2, "email", "is required (or set options.email_domain in the mapping to make one from the name)")]
    teams = run(engine, "users", csv("Name,Email,Team", "Ann,ann@example.com,Centrl"), who=admin, tmp=tmp_path)
    assert reasons(teams) == [(2, "Team", "unknown team 'Centrl'; set options.create_teams to create it")]


def test_an_admin_cannot_demote_themself_by_import(engine, admin, tmp_path):
    summary = run(engine, "users", csv("Name,Email,Role", f"Me,{admin.email},rep"), who=admin, tmp=tmp_path)
    assert reasons(summary) == [(2, "Role", "you cannot demote or deactivate yourself; ask another admin")]
