"""Role home queries, on a hand-made fixture: exact totals, real counts beyond the list limit."""
from datetime import UTC, datetime, timedelta

from crm.db import read_scope, session_scope
from crm.home import marketer_home, rep_home, team_pipeline
from crm.models import Activity, Contact, Deal, DealStatus
from tests.factories import actor, make_user, stage_named

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _task(user, due):
    return Activity(kind="task", subject=f"due {due:%d %H:%M}", assignee_id=user, owner_id=user, due_at=due)


def test_rep_home_counts_every_task_and_deal_even_past_the_list_limit(engine):
    rep = make_user(engine, "rep", team="East")
    with session_scope(engine) as s:
        proposal = stage_named(s, "Proposal")  # stage default probability 0.4
        s.add_all([
            _task(rep, NOW - timedelta(days=3)), _task(rep, NOW - timedelta(days=1)),
            _task(rep, NOW.replace(hour=0, minute=0) - timedelta(seconds=1)),   # 23:59:59 yesterday: overdue
            _task(rep, NOW.replace(hour=0, minute=0)),                          # midnight today: due today
            _task(rep, NOW + timedelta(hours=3)),
            _task(rep, NOW + timedelta(days=2)),
            _task(rep, NOW + timedelta(days=9)),                                # beyond 7 days: not listed
            Activity(kind="task", subject="done", assignee_id=rep, due_at=NOW - timedelta(days=1), done_at=NOW),
        ])
        s.add_all([
            Deal(title="A", pipeline_id=proposal.pipeline_id, stage_id=proposal.id, owner_id=rep, amount=1000),
            Deal(title="B", pipeline_id=proposal.pipeline_id, stage_id=proposal.id, owner_id=rep, amount=500,
                 rep_probability=0.9, model_probability=0.1),  # the rep's override wins over the model
            Deal(title="C", pipeline_id=proposal.pipeline_id, stage_id=proposal.id, owner_id=rep, amount=200,
                 model_probability=0.25),                       # no override: the model wins over the stage
            Deal(title="Won", pipeline_id=proposal.pipeline_id, stage_id=proposal.id, owner_id=rep, amount=9999,
                 status=DealStatus.WON),
        ])
    with read_scope(engine) as s:
        home = rep_home(session=s, actor=actor(engine, rep), now=NOW, limit=2)
    assert (home.overdue_count, home.due_today_count, home.upcoming_count) == (3, 2, 1)
    assert len(home.overdue) == 2 and len(home.due_today) == 2  # lists are capped, counts are not
    assert home.open_deal_count == 3 and len(home.open_deals) == 2
    assert home.open_amount == 1700
    assert home.weighted_amount == 1000 * 0.4 + 500 * 0.9 + 200 * 0.25  # 900


def test_team_pipeline_shows_only_the_managers_team(engine):
    east_rep, west_rep = make_user(engine, "rep", team="East"), make_user(engine, "rep", team="West")
    manager = make_user(engine, "manager", team="East")
    with session_scope(engine) as s:
        stage = stage_named(s, "Discovery")
        s.add_all([Deal(title="E", pipeline_id=stage.pipeline_id, stage_id=stage.id, owner_id=east_rep, amount=100),
                   Deal(title="W", pipeline_id=stage.pipeline_id, stage_id=stage.id, owner_id=west_rep, amount=700)])
    with read_scope(engine) as s:
        frame = team_pipeline(session=s, actor=actor(engine, manager))
    assert frame[["stage", "deals", "amount"]].to_dict("records") == [{"stage": "Discovery", "deals": 1, "amount": 100}]


def test_marketer_home_counts_consent_and_ignores_deleted_contacts(engine):
    marketer = make_user(engine, "marketer")
    with session_scope(engine) as s:
        s.add_all([Contact(first_name="In", email_opt_in=True), Contact(first_name="Out", do_not_contact=True),
                   Contact(first_name="Gone", email_opt_in=True, deleted_at=NOW)])
    with read_scope(engine) as s:
        data = marketer_home(session=s, actor=actor(engine, marketer))
    assert (data.total, data.opted_in, data.do_not_contact) == (2, 1, 1)
