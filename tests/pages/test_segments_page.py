"""The segments page through AppTest: a marketer builds a 3-condition segment, sees the live count, saves it and
exports it; reps do not get the page."""
import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import select

from crm import db
from crm.clock import utcnow
from crm.demo import DEMO_LOGINS, generate_demo
from crm.models import Contact, Segment, SegmentMember, SegmentSnapshot, User
from tests.pages.apptest import no_exception, signed_in
from ui.navigation import SEGMENTS, pages_for


@pytest.fixture
def demo(crm_db):
    generate_demo(crm_db, size="small", seed=5)
    with db.read_scope() as s:
        return {role: s.exec(select(User.id).where(User.email == email)).one() for role, email in DEMO_LOGINS.items()}


def segments_page(user_id: int):
    at = signed_in(user_id).run()
    at.switch_page(SEGMENTS.path).run()
    no_exception(at)
    return at


def fields(at):
    return [s for s in at.selectbox if s.label == "Field"]


def ops(at):
    return [s for s in at.selectbox if s.label == "Test"]


def add_condition(at):
    next(b for b in at.button if b.label == "Add a condition").click().run()
    no_exception(at)


def test_a_marketer_builds_saves_and_exports_a_segment(demo):
    at = segments_page(demo["marketer"])
    # 1: lifecycle stage is any of customer
    ops(at)[0].set_value("in").run()
    next(m for m in at.multiselect if m.label == "Values").select("customer").run()
    # 2: country is US
    add_condition(at)
    fields(at)[1].set_value("country").run()
    ops(at)[1].set_value("equals").run()
    next(s for s in at.selectbox if s.label == "Value").set_value("US").run()
    # 3: email opt-in is yes
    add_condition(at)
    fields(at)[2].set_value("email_opt_in").run()
    no_exception(at)
    with db.read_scope() as s:  # the same question asked directly of the table
        expected = s.exec(select(func.count()).select_from(Contact).where(
            Contact.deleted_at.is_(None), Contact.lifecycle_stage == "customer", Contact.country == "US",
            Contact.email_opt_in.is_(True))).one()
    assert expected > 0
    assert next(m for m in at.metric if m.label == "Matching contacts").value == f"{expected:,}"
    sample = next(d.value for d in at.dataframe if "Lifecycle stage" in d.value.columns)
    assert set(sample["Lifecycle stage"]) == {"customer"} and set(sample["Country"]) == {"US"}

    at.text_input(key="seg_save_name").input("US customers who opted in")  # sent with the form's submit
    at.button(key="FormSubmitter:seg_save-Save segment").click().run()
    no_exception(at)
    with db.read_scope() as s:
        segment = s.exec(select(Segment)).one()
    assert segment.kind == "dynamic" and len(segment.definition["groups"][0]["conditions"]) == 3

    at.button(key="seg_export_go").click().run()
    no_exception(at)
    _, data, filename, *_ = at.session_state["seg_export_file"]
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert filename.endswith(".csv") and len(rows) <= expected
    assert all(r["lifecycle_stage"] == "customer" and r["country"] == "US" for r in rows)
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values() if v)
    with db.read_scope() as s:
        snapshot = s.exec(select(SegmentSnapshot)).one()
    assert snapshot.purpose == "export" and snapshot.member_count == len(rows)
    assert not snapshot.include_do_not_contact


def test_an_incomplete_condition_says_what_is_missing(demo):
    at = segments_page(demo["marketer"])
    ops(at)[0].set_value("in").run()  # no value chosen yet
    no_exception(at)
    assert any("choose at least one value" in i.value for i in at.info)
    assert not [m for m in at.metric if m.label == "Matching contacts"]


def test_only_roles_that_manage_segments_get_the_page(demo):
    assert SEGMENTS in pages_for("marketer") and SEGMENTS in pages_for("admin")
    assert SEGMENTS not in pages_for("rep") and SEGMENTS not in pages_for("manager")


def test_rfm_and_clusters_become_segments(demo):
    at = segments_page(demo["marketer"])
    at.toggle(key="rfm_on").set_value(True).run()
    no_exception(at)
    summary = next(d.value for d in at.dataframe if "mean_monetary" in d.value.columns)
    group = at.selectbox(key="rfm_group").value
    members = int(summary.set_index("group").loc[group, "count"])
    at.button(key="FormSubmitter:rfm_save-Save the group as a static segment").click().run()
    no_exception(at)
    at.toggle(key="cl_on").set_value(True).run()
    no_exception(at)
    clusters = next(d.value for d in at.dataframe if "description" in d.value.columns)
    assert clusters["description"].str.len().gt(0).all() and clusters["size"].sum() > 0
    at.button(key="FormSubmitter:cl_save-Save the cluster as a static segment").click().run()
    no_exception(at)
    with db.read_scope() as s:
        saved = {x.name: x for x in s.exec(select(Segment)).all()}
        sizes = {name: len(s.exec(select(SegmentMember.record_id).where(SegmentMember.segment_id == x.id)).all())
                 for name, x in saved.items()}
    rfm_name = next(n for n in saved if n.startswith("RFM "))
    cluster_name = next(n for n in saved if n.startswith("Cluster "))
    assert saved[rfm_name].definition["group"] == group and sizes[rfm_name] == members
    assert saved[cluster_name].definition["analytic"] == "clusters"
    assert sizes[cluster_name] == int(clusters.set_index("cluster").loc[1, "size"])


def test_an_admin_hands_a_segment_to_a_team_and_a_marketer_may_not(demo):
    from crm.permissions import load_actor
    from crm.segments.service import create_segment

    with db.session_scope() as s:
        admin = load_actor(s, demo["admin"])
        create_segment(session=s, actor=admin, name="Recent leads", definition={"groups": [{"conditions": [
            {"field": "lifecycle_stage", "op": "equals", "value": "lead"},
            {"field": "created_at", "op": "in_last", "days": 30}]}]})
        members = s.exec(select(Contact.id).where(Contact.deleted_at.is_(None), Contact.lifecycle_stage == "lead",
                                                 Contact.created_at >= utcnow() - timedelta(days=30))).all()
    at = segments_page(demo["marketer"])
    assert any("needs the right to edit every contact" in c.value for c in at.caption)
    at = segments_page(demo["admin"])
    team = at.selectbox(key="seg_assign_team").value
    at.button(key="FormSubmitter:seg_assign_form-Assign owners").click().run()
    no_exception(at)
    assert any(x.value.startswith("Assigned: ") for x in at.success)
    with db.read_scope() as s:
        reps = set(s.exec(select(User.id).where(User.team_id == team, User.role == "rep", User.active)).all())
        owners = set(s.exec(select(Contact.owner_id).where(Contact.id.in_(members))).all())
    assert members and owners <= reps and len(owners) == min(len(reps), len(members))
