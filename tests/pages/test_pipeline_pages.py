"""The pipeline board, the deals table and the deal page through AppTest: moving, losing with a reason, inline
edits with a forced conflict, and the model-versus-rep probability."""
from datetime import date, timedelta

import pytest
from sqlmodel import select

from crm import db
from crm.deals import DealChanges, DealInput, create_deal, get_deal, record_model_scores, update_deal
from crm.models import LostReason, Role
from crm.permissions import load_actor
from tests.pages.apptest import no_exception, signed_in
from tests.pages.test_admin import errors, fill, submit
from ui.navigation import DEAL, PIPELINE


@pytest.fixture
def deals(people) -> dict[str, int]:
    """Three open deals of the rep's, in the default pipeline's first stage; one of the manager's."""
    close = date.today() + timedelta(days=20)
    with db.session_scope() as s:
        rep = load_actor(s, people[Role.REP])
        ids = {title: create_deal(session=s, actor=rep, data=DealInput(title=title, amount=amount,
                                                                        expected_close=close)).id
               for title, amount in [("Acme robots", 5000), ("Beta <b>bold</b>", 300), ("Gamma", 1200)]}
        ids["Max's"] = create_deal(session=s, actor=load_actor(s, people[Role.MANAGER]), data=DealInput(
            title="Max's", amount=50)).id
    return ids


def _deal(deal_id: int, user_id: int):
    with db.read_scope() as s:
        return get_deal(session=s, actor=load_actor(s, user_id), deal_id=deal_id)


def pipeline_page(user_id: int):
    at = signed_in(user_id).run()
    at.switch_page(PIPELINE.path).run()
    no_exception(at)
    return at


def _move_box(at, deal_id: int):
    return next(b for b in at.selectbox if b.key and b.key.startswith(f"board_move_{deal_id}_"))


def test_the_rep_sees_their_deals_on_the_board_with_counts(deals, people):
    at = pipeline_page(people[Role.REP])
    shown = {link.label.replace("\\", "") for link in at.get("page_link")}
    assert {"Acme robots", "Gamma"} <= shown
    assert "Max's" not in shown  # reps start on their own deals
    assert "3 deals · 6,500" in [c.value for c in at.caption]


def test_moving_a_deal_is_one_choice_on_the_board(deals, people):
    at = pipeline_page(people[Role.REP])
    with db.read_scope() as s:
        from tests.factories import stage_named
        proposal = stage_named(s, "Proposal").id
    _move_box(at, deals["Gamma"]).select(proposal).run()
    no_exception(at)
    assert _deal(deals["Gamma"], people[Role.REP]).stage == "Proposal"
    assert _move_box(at, deals["Gamma"]).value == proposal  # the card now sits in its new column


def test_dropping_a_deal_on_lost_asks_why_and_then_closes_it(deals, people):
    at = pipeline_page(people[Role.REP])
    with db.read_scope() as s:
        from tests.factories import stage_named
        lost = stage_named(s, "Closed lost").id
        price = s.exec(select(LostReason.id).where(LostReason.name == "Price")).one()
    _move_box(at, deals["Gamma"]).select(lost).run()
    assert _deal(deals["Gamma"], people[Role.REP]).status == "open"  # nothing happens without a reason
    at.button(key="FormSubmitter:board_lost_form-Mark lost").click().run()
    no_exception(at)
    assert _deal(deals["Gamma"], people[Role.REP]).status == "open"
    assert any("Lost reason" in e and "say why" in e for e in errors(at))
    at.selectbox(key="board_lost_reason").select(price)
    at.button(key="FormSubmitter:board_lost_form-Mark lost").click().run()
    no_exception(at)
    gamma = _deal(deals["Gamma"], people[Role.REP])
    assert (gamma.status, gamma.lost_reason) == ("lost", "Price")


def test_the_table_saves_good_rows_and_reports_the_conflicting_one(deals, people):
    at = pipeline_page(people[Role.REP])
    table = at.data_editor[0].value
    rows = {title: i for i, title in enumerate(table["title"])}
    with db.session_scope() as s:  # meanwhile, someone else saves Gamma
        update_deal(session=s, actor=load_actor(s, people[Role.MANAGER]), deal_id=deals["Gamma"], seen_version=1,
                    changes=DealChanges(amount=999))
    at.session_state["deal_table_editor"] = {"edited_rows": {
        rows["Acme robots"]: {"amount": 7000, "forecast_category": "commit", "rep_probability": 80},
        rows["Gamma"]: {"next_step": "Call the CFO"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    at.button(key="deal_table_save").click().run()
    no_exception(at)
    acme, gamma = _deal(deals["Acme robots"], people[Role.REP]), _deal(deals["Gamma"], people[Role.REP])
    assert (acme.amount, acme.forecast_category, acme.rep_probability) == (7000, "commit", 0.8)
    assert (gamma.amount, gamma.next_step) == (999, None)
    assert any("1 row(s) were not saved" in e for e in errors(at))
    failures = next(d.value for d in at.dataframe if "problem" in d.value.columns)
    assert failures["deal"].tolist() == ["Gamma"] and "changed after you opened it" in failures["problem"][0]


def deal_page(deal_id: int, user_id: int):
    at = signed_in(user_id).run()
    at.switch_page(DEAL.path)
    at.query_params["id"] = str(deal_id)
    at.run()
    no_exception(at)
    return at


def test_the_deal_page_shows_model_beside_rep_and_restores_the_model(deals, people):
    with db.session_scope() as s:
        record_model_scores(session=s, scores={deals["Acme robots"]: 0.42}, model="test")
    at = deal_page(deals["Acme robots"], people[Role.REP])
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Shown probability"], metrics["Model"], metrics["Rep"]) == ("42%", "42%", "not set")
    fill(at, **{f"deal_prob_{deals['Acme robots']}_percent": 75})
    at = submit(at, f"deal_prob_{deals['Acme robots']}_save")
    no_exception(at)
    assert _deal(deals["Acme robots"], people[Role.REP]).probability == 0.75
    at = submit(at, f"deal_prob_reset_{deals['Acme robots']}")
    no_exception(at)
    acme = _deal(deals["Acme robots"], people[Role.REP])
    assert (acme.rep_probability, acme.probability) == (None, 0.42)


def test_losing_on_the_deal_page_needs_a_reason(deals, people):
    at = deal_page(deals["Acme robots"], people[Role.REP])
    at = submit(at, f"deal_lose_{deals['Acme robots']}_save")
    assert any("Lost reason" in e for e in errors(at))
    assert _deal(deals["Acme robots"], people[Role.REP]).status == "open"
    at = submit(at, f"deal_win_{deals['Acme robots']}_save")
    no_exception(at)
    assert _deal(deals["Acme robots"], people[Role.REP]).status == "won"


def test_deal_titles_are_text_not_markup(deals, people):
    at = deal_page(deals["Beta <b>bold</b>"], people[Role.REP])
    assert at.title[0].value == "Beta \\<b\\>bold\\</b\\>"


def test_a_rep_cannot_open_a_deal_of_another_team(deals, people):
    with db.session_scope() as s:
        from crm.models import UserCreate
        from crm.users import create_user
        outsider = create_user(session=s, actor=load_actor(s, people[Role.ADMIN]), data=UserCreate(
            email="out@example.com", full_name="Out Sider", role=Role.REP, password="correct horse battery staple"))
    at = deal_page(deals["Gamma"], outsider.id)
    assert any("may not see" in e for e in errors(at))


def test_the_marketer_has_no_pipeline_page(people):
    at = signed_in(people[Role.MARKETER]).run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):  # not registered for marketers
        at.switch_page(PIPELINE.path)
