"""Each role's home shows the real numbers of a small hand-made CRM."""
from datetime import datetime, time, timedelta

import pytest
from sqlmodel import select

from crm import db
from crm.clock import utcnow
from crm.models import (
    Activity, ActivityKind, Company, Contact, Deal, DealStatus, Lifecycle, Pipeline, Role, Segment, Stage, Team, User,
)
from tests.pages.apptest import no_exception, sections, signed_in


def stage(s, name: str, pipeline: str = "New business") -> Stage:
    return s.exec(select(Stage).join(Pipeline).where(Stage.name == name, Pipeline.name == pipeline)).one()


@pytest.fixture
def crm(people):
    """East team: Max (manager) and Rita (rep). Otto (rep) is on West and must not count for Max."""
    now = utcnow()
    today = datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)
    rep, manager = people[Role.REP], people[Role.MANAGER]
    with db.session_scope() as s:
        west = Team(name="West")
        s.add(west)
        s.flush()
        otto = User(email="otto@example.com", full_name="Otto Outsider", role="rep", team_id=west.id)
        acme = Company(name="Acme Corp")
        s.add_all([otto, acme])
        s.flush()
        ana = Contact(first_name="Ana", last_name="Lima", lifecycle_stage=Lifecycle.LEAD, email_opt_in=True)
        s.add_all([
            ana,
            Contact(first_name="Bo", lifecycle_stage=Lifecycle.CUSTOMER, do_not_contact=True,
                    created_at=now - timedelta(days=60)),  # old: not new in the last 30 days
            Contact(first_name="Cy", lifecycle_stage=Lifecycle.MQL, email_opt_in=True),
            Contact(first_name="Gone", lifecycle_stage=Lifecycle.LEAD, email_opt_in=True, deleted_at=now),
        ])
        s.flush()

        def deal(title, amount, stage_name, owner, pipeline="New business", **extra):
            st = stage(s, stage_name, pipeline)
            s.add(Deal(title=title, amount=amount, stage_id=st.id, pipeline_id=st.pipeline_id, owner_id=owner,
                       company_id=acme.id, **extra))

        deal("Acme renewal", 1000, "Proposal", rep)  # 40 % -> 400
        deal("Beta pilot", 500, "Qualification", rep, rep_probability=0.5)  # the rep's 50 % beats the stage's 10 %
        deal("Epsilon upsell", 800, "Quoted", rep, pipeline="Renewals & upsell")  # 60 % -> 480
        deal("Gamma won", 2000, "Closed won", rep, status=DealStatus.WON, closed_at=now)  # won: not open
        deal("Old deleted", 999, "Proposal", rep, deleted_at=now)  # deleted: never counted
        deal("Delta expansion", 3000, "Negotiation", manager)  # 65 % -> 1950
        deal("Zeta West", 10_000, "Proposal", otto.id)  # another team

        def task(subject, due_at, assignee=rep, **extra):
            s.add(Activity(kind=extra.pop("kind", ActivityKind.TASK), subject=subject, due_at=due_at,
                           assignee_id=assignee, contact_id=ana.id, **extra))

        task("Call Acme back", now - timedelta(days=2))
        task("Send the proposal", today + timedelta(minutes=1))  # boundary: still today, even if already past
        task("Prepare the QBR", today + timedelta(days=3))
        task("Far future", today + timedelta(days=30))  # beyond the next seven days
        task("Already done", now - timedelta(days=1), done_at=now)
        task("Logged call", now - timedelta(days=1), kind=ActivityKind.CALL)
        task("Max's own task", now - timedelta(days=1), assignee=manager)
        s.add_all([Segment(name="Warm leads"), Segment(name="Churn risk"), Segment(name="VIP list", kind="static"),
                   Segment(name="Old", deleted_at=now)])
    return people


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_rep_sees_own_open_deals_and_tasks(crm):
    at = signed_in(crm[Role.REP]).run()
    no_exception(at)
    assert metrics(at) == {"Open deals": "3", "Open amount": "2,300", "Weighted amount": "1,130", "Open tasks": "3"}
    deals = at.dataframe[0].value
    assert sorted(deals["title"]) == ["Acme renewal", "Beta pilot", "Epsilon upsell"]
    assert sections(at) == {"Overdue": ["Call Acme back"], "Due today": ["Send the proposal"],
                            "Next 7 days": ["Prepare the QBR"]}
    assert [link.proto.label for link in at.get("page_link")].count("Ana Lima") == 3  # each task links its contact


def test_manager_sees_team_pipeline_by_stage_and_rep(crm):
    at = signed_in(crm[Role.MANAGER]).run()
    no_exception(at)
    assert metrics(at) == {"Open deals": "4", "Open pipeline": "5,300", "Weighted pipeline": "3,080"}
    assert len(at.get("plotly_chart")) == 1
    by_stage = at.dataframe[0].value
    assert [tuple(r) for r in by_stage[["pipeline", "stage", "deals", "amount"]].itertuples(index=False)] == [
        ("New business", "Qualification", 1, 500), ("New business", "Proposal", 1, 1000),
        ("New business", "Negotiation", 1, 3000), ("Renewals & upsell", "Quoted", 1, 800)]
    reps = at.dataframe[1].value.set_index("rep")
    assert list(reps.index) == ["Max Manager", "Rita Rep"]
    assert reps.loc["Rita Rep", "open_deals"] == 3
    assert reps.loc["Rita Rep", "open_amount"] == 2300
    assert reps.loc["Rita Rep", "won_this_quarter"] == 2000
    assert round(reps.loc["Max Manager", "weighted"]) == 1950


def test_marketer_sees_contacts_by_stage_and_segments(crm):
    at = signed_in(crm[Role.MARKETER]).run()
    no_exception(at)
    assert metrics(at) == {"Contacts": "3", "Opted in to email": "2", "Do not contact": "1",
                           "New in the last 30 days": "2", "Dynamic segments": "2", "Static segments": "1"}
    assert len(at.get("plotly_chart")) == 1


def test_admin_sees_record_counts_and_recent_changes(crm):
    at = signed_in(crm[Role.ADMIN]).run()
    no_exception(at)
    assert metrics(at) == {"Active users": "5", "Contacts": "3", "Companies": "1", "Open deals": "5"}
    recent = at.dataframe[0].value
    assert {"create", "user"} <= set(recent["action"]) | set(recent["entity"])
    assert "Ada Admin" in set(recent["who"])


def test_empty_home_says_so(people):
    at = signed_in(people[Role.REP]).run()
    no_exception(at)
    assert "No open tasks — nice." in [s.value for s in at.success]
    assert "No open deals yet." in [i.value for i in at.info]
    at = signed_in(people[Role.MANAGER]).run()
    assert "Your team has no open deals." in [i.value for i in at.info]
    assert metrics(at)["Open pipeline"] == "0"


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_home_shows_new_numbers_on_the_next_run_after_a_write(people):
    """The page caches by data version: a write through the service layer is visible at once, with no TTL wait."""
    from crm.contacts import create_contact
    from crm.models import ContactInput
    from crm.permissions import load_actor

    at = signed_in(people[Role.MARKETER])
    at.run()
    no_exception(at)
    assert _metric(at, "Contacts") == "0"
    at.run()
    assert _metric(at, "Contacts") == "0"  # served from the cache
    with db.session_scope() as s:
        create_contact(session=s, actor=load_actor(s, people[Role.ADMIN]), data=ContactInput(first_name="Nia"))
    at.run()
    assert _metric(at, "Contacts") == "1"
