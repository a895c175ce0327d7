"""The models page and a deal's explanation through AppTest, on the small demo with all three models trained."""
import pytest
from sqlmodel import select

from crm import db
from crm.demo import DEMO_LOGINS, generate_demo
from crm.ml.crosssell import train_cross_sell
from crm.ml.lead import train_lead
from crm.ml.win import train_win
from crm.models import Deal, Product, Segment, SegmentMember, User
from tests.pages.apptest import no_exception, signed_in
from ui.navigation import DEAL, MODELS


@pytest.fixture
def trained(crm_db):
    """The small demo, and each model trained into this test's models folder (CRM_MODELS_DIR)."""
    generate_demo(crm_db, size="small", seed=11)
    summaries = {"win": train_win(crm_db), "cross-sell": train_cross_sell(crm_db), "lead": train_lead(crm_db)}
    with db.read_scope() as s:
        people = {role: s.exec(select(User.id).where(User.email == email)).one() for role, email in DEMO_LOGINS.items()}
    return people, summaries


def products_named() -> list[str]:
    with db.read_scope() as s:
        return list(s.exec(select(Product.name)).all())


def models_page(user_id: int):
    at = signed_in(user_id).run()
    at.switch_page(MODELS.path).run()
    no_exception(at)
    return at


def test_each_model_has_its_card_with_tier_metrics_and_reliability(trained):
    people, summaries = trained
    at = models_page(people["admin"])
    cards = [m.value for m in at.markdown if m.value.startswith("**Tier:**")]
    assert len(cards) == 3 and all("live (champion)" in c for c in cards)
    for summary in summaries.values():
        assert any(summary["tier"] in card for card in cards)
    metric_tables = [d.value for d in at.dataframe if "rows" in d.value.index]
    assert {"model", "stage_default"} <= set(metric_tables[0].columns)  # win: against the stage table
    assert {"model", "popularity", "association_rules"} <= set(metric_tables[1].columns)
    assert len(at.get("plotly_chart")) >= 3  # a reliability curve per model at least
    per_product = next(d.value for d in at.dataframe if "positives" in d.value.columns)
    assert set(per_product["product"]) <= set(products_named())
    assert per_product["positives"].sum() == summaries["cross-sell"]["rows"]["holdout_positives"]
    assert [b.label for b in at.button if b.key and b.key.startswith("retrain_")] == [
        "Retrain win probability", "Retrain cross-sell", "Retrain lead scoring"]


def test_a_marketer_turns_top_buyers_into_a_static_segment(trained):
    people, _ = trained
    at = models_page(people["marketer"])
    assert not [b for b in at.button if b.key and b.key.startswith("retrain_")]  # only admins retrain
    buyers = next(d.value for d in at.dataframe if "evidence" in d.value.columns)
    assert len(buyers) == 100 and buyers["probability"].is_monotonic_decreasing
    at.button(key="FormSubmitter:xs_segment_form-Save as a static segment").click().run()
    no_exception(at)
    with db.read_scope() as s:
        segment = s.exec(select(Segment)).one()
        members = s.exec(select(SegmentMember.record_id).where(SegmentMember.segment_id == segment.id)).all()
    assert segment.kind == "static" and segment.name.startswith("Likely buyers of ")
    assert sorted(members) == sorted(int(i) for i in buyers["id"])


def test_a_deal_explains_its_probability(trained):
    people, _ = trained
    with db.read_scope() as s:
        deal = s.exec(select(Deal.id).where(Deal.owner_id == people["rep"], Deal.status == "open")).first()
    at = signed_in(people["rep"]).run()
    at.switch_page(DEAL.path)
    at.query_params["id"] = str(deal)
    at.run()
    no_exception(at)
    [why] = [e for e in at.expander if e.label.startswith("Why the model says")]
    what_ifs = [m.value for m in why.markdown if m.value.startswith("- ") and "%" in m.value]
    assert any("log a meeting" in w for w in what_ifs) and any("close date" in w for w in what_ifs)


def test_reps_have_no_models_page(trained):
    people, _ = trained
    at = signed_in(people["rep"]).run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(MODELS.path)
