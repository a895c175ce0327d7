"""The kanban board and deals table: columns, totals, scope, filters, and the stuck flag on a hand-made history."""
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import select

from crm.board import BoardFilter, deal_table, is_stuck, pipeline_board
from crm.stage_stats import is_stale, refresh_stage_stats, stage_stats, stuck_thresholds
from crm.db import read_scope, session_scope
from crm.errors import PermissionDenied
from crm.models import Deal, DealStageHistory, Pipeline
from tests.factories import actor, make_team, make_user, stage_named

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _pipeline(engine) -> int:
    with read_scope(engine) as s:
        return s.exec(select(Pipeline.id).where(Pipeline.name == "New business")).one()


def _add(engine, owner: int, stage: str, *, amount: float = 100.0, close: date | None = None, status="open",
         entered: datetime = NOW - timedelta(days=3), path: list[tuple[str, float]] = ()) -> int:
    """A deal in `stage`; `path` lists earlier stages and the days spent in each, oldest first."""
    with session_scope(engine) as s:
        pipeline = _pipeline(engine)
        current = stage_named(s, stage)
        deal = Deal(title=f"{stage} {amount}", pipeline_id=pipeline, stage_id=current.id, amount=amount,
                    expected_close=close, owner_id=owner, status=status, stage_entered_at=entered,
                    closed_at=entered if status != "open" else None)
        s.add(deal)
        s.flush()
        start = entered - timedelta(days=sum(d for _, d in path))
        for name, days in path:
            s.add(DealStageHistory(deal_id=deal.id, stage_id=stage_named(s, name).id, entered_at=start,
                                   exited_at=start + timedelta(days=days)))
            start += timedelta(days=days)
        s.add(DealStageHistory(deal_id=deal.id, stage_id=current.id, entered_at=entered))
        return deal.id


def test_the_stuck_threshold_is_the_75th_percentile_of_won_deals_time_in_the_stage(engine):
    rep = make_user(engine, "rep")
    for days in (2, 4, 6, 8, 10):  # linear p75 of 2, 4, 6, 8, 10: position 0.75 × 4 = 3, i.e. 8
        _add(engine, rep, "Closed won", status="won", path=[("Proposal", days)])
    _add(engine, rep, "Closed lost", status="lost", path=[("Proposal", 100)])  # lost deals do not count
    for days in (1, 2, 3, 4):  # only four won deals passed through Discovery: too few to judge
        _add(engine, rep, "Closed won", status="won", path=[("Discovery", days)])
    with read_scope(engine) as s:
        thresholds = stuck_thresholds(s)
        proposal, discovery = stage_named(s, "Proposal").id, stage_named(s, "Discovery").id
        lost = {r.stage_id: r for r in stage_stats(s) if r.outcome == "lost"}
    assert thresholds[proposal] == pytest.approx(8.0)
    assert discovery not in thresholds
    assert proposal not in lost  # one lost deal: too few for a figure
    assert is_stuck(8.5, 8.0) and not is_stuck(8.0, 8.0) and not is_stuck(None, 8.0) and not is_stuck(99, None)


def test_the_board_flags_a_deal_that_sat_too_long(engine):
    rep = make_user(engine, "rep")
    for days in (2, 4, 6, 8, 10):
        _add(engine, rep, "Closed won", status="won", path=[("Proposal", days)])
    fresh = _add(engine, rep, "Proposal", entered=NOW - timedelta(days=5))
    old = _add(engine, rep, "Proposal", entered=NOW - timedelta(days=9))
    with read_scope(engine) as s:
        board = pipeline_board(session=s, actor=actor(engine, rep), flt=BoardFilter(_pipeline(engine)), now=NOW)
    cards = {c.id: c for col in board.columns for c in col.cards}
    assert (cards[fresh].stuck, cards[old].stuck) == (False, True)
    assert cards[old].days_in_stage == 9.0


def test_the_stored_figures_follow_new_wins_and_age(engine):
    rep = make_user(engine, "rep")
    for days in (2, 4, 6, 8, 10):
        _add(engine, rep, "Closed won", status="won", path=[("Proposal", days)])
    with read_scope(engine) as s:
        before = stuck_thresholds(s)[stage_named(s, "Proposal").id]
    _add(engine, rep, "Closed won", status="won", path=[("Proposal", 50)])
    with read_scope(engine) as s:
        assert is_stale(s)  # 6 won deals against 5 when computed: more than 1 % moved
        after = stuck_thresholds(s)[stage_named(s, "Proposal").id]
    # 2, 4, 6, 8, 10, 50: position 0.75 × 5 = 3.75, so 8 + 0.75 × 2 = 9.5
    assert (before, after) == (pytest.approx(8.0), pytest.approx(9.5))
    with read_scope(engine) as s:
        assert not is_stale(s)
        assert is_stale(s, now=datetime.now(UTC) + timedelta(days=1, minutes=1))
    with session_scope(engine) as s:
        rows = refresh_stage_stats(session=s)
    assert len(rows) == 1 and (rows[0].median_days, rows[0].deals) == (pytest.approx(7.0), 6)


def test_columns_count_and_total_every_matching_deal_but_show_at_most_n_cards(engine):
    rep = make_user(engine, "rep")
    for i in range(4):
        _add(engine, rep, "Discovery", amount=100 + i, close=date(2026, 6, 10 + i))
    _add(engine, rep, "Negotiation", amount=500)
    _add(engine, rep, "Closed won", amount=999, status="won")  # closed: not on the board
    with read_scope(engine) as s:
        board = pipeline_board(session=s, actor=actor(engine, rep), flt=BoardFilter(_pipeline(engine)),
                               per_column=3, now=NOW)
    columns = {c.name: c for c in board.columns}
    assert list(columns) == ["Qualification", "Discovery", "Proposal", "Negotiation"]
    assert (columns["Discovery"].count, columns["Discovery"].amount) == (4, 406)
    assert [c.amount for c in columns["Discovery"].cards] == [100, 101, 102]  # soonest close first
    assert (columns["Negotiation"].count, columns["Qualification"].count) == (1, 0)
    assert {name for _, name, _ in board.closing} == {"Closed won", "Closed lost"}


def test_filters_by_owner_team_close_period_and_amount(engine):
    east, west = make_team(engine, "East"), make_team(engine, "West")
    anna = make_user(engine, "rep", team="East")
    ben = make_user(engine, "rep", team="West")
    manager = make_user(engine, "admin")
    _add(engine, anna, "Proposal", amount=100, close=date(2026, 6, 15))
    _add(engine, anna, "Proposal", amount=900, close=date(2026, 8, 15))
    _add(engine, ben, "Proposal", amount=300, close=date(2026, 6, 20))
    pipeline = _pipeline(engine)

    def amounts(**kw):
        with read_scope(engine) as s:
            frame, total = deal_table(session=s, actor=actor(engine, manager), flt=BoardFilter(pipeline, **kw),
                                      now=NOW)
        assert total == len(frame)
        return sorted(frame["amount"])

    assert amounts() == [100, 300, 900]
    assert amounts(owner_id=anna) == [100, 900]
    assert amounts(team_id=west) == [300] and amounts(team_id=east) == [100, 900]
    assert amounts(close_from=date(2026, 6, 1), close_to=date(2026, 6, 30)) == [100, 300]
    assert amounts(min_amount=200, max_amount=500) == [300]


def test_a_rep_sees_the_team_and_nobody_else(engine):
    anna = make_user(engine, "rep", team="East")
    carl = make_user(engine, "rep", team="East")
    ben = make_user(engine, "rep", team="West")
    for owner in (anna, carl, ben):
        _add(engine, owner, "Proposal")
    pipeline = _pipeline(engine)
    with read_scope(engine) as s:
        frame, total = deal_table(session=s, actor=actor(engine, anna), flt=BoardFilter(pipeline), now=NOW)
        assert total == 2
        with pytest.raises(PermissionDenied):
            pipeline_board(session=s, actor=actor(engine, anna), flt=BoardFilter(pipeline, owner_id=ben), now=NOW)


def test_a_marketer_sees_no_deals(engine):
    rep = make_user(engine, "rep")
    marketer = make_user(engine, "marketer")
    _add(engine, rep, "Proposal")
    with read_scope(engine) as s:
        frame, total = deal_table(session=s, actor=actor(engine, marketer), flt=BoardFilter(_pipeline(engine)),
                                  now=NOW)
    assert total == 0
