"""Rule-based lead points: fit conditions, decayed engagement worked by hand, reasons, direction, the bulk write."""
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from crm.db import session_scope
from crm.errors import NotFound
from crm.ml.lead import explain_lead, rule_scores, update_lead_scores
from crm.ml.lead.rules import decayed_points
from crm.models import AuditLog, BehaviorEvent, Company, Contact, CustomFieldDef, CustomFieldValue, LeadScoreRule

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def add_rule(engine, name, kind, condition, points, half_life=None):
    with session_scope(engine) as s:  # rows as an admin's save_rule leaves them (its validation is tested apart)
        s.add(LeadScoreRule(name=name, kind=kind, condition=condition, points=points, half_life_days=half_life))


def add_contact(engine, *, title=None, country=None, industry=None, employees=None, revenue=None, deleted=False,
                clicks_days_ago=()) -> int:
    with session_scope(engine) as s:
        company = None
        if industry or employees or revenue:
            company = Company(name=f"Co {industry}", industry=industry, employees=employees, annual_revenue=revenue)
            s.add(company)
            s.flush()
        contact = Contact(first_name="Ada", last_name="Lovelace", job_title=title, country=country,
                          company_id=company.id if company else None, deleted_at=NOW if deleted else None,
                          created_at=NOW - timedelta(days=400))
        s.add(contact)
        s.flush()
        s.add_all(BehaviorEvent(contact_id=contact.id, kind="email_click", occurred_at=NOW - timedelta(days=d))
                  for d in clicks_days_ago)
        return contact.id


def scores(engine, now=NOW):
    return rule_scores(engine, now=now).set_index("contact_id")


def test_decay_by_hand():
    # 4 points a click, half-life 30 days, 90-day window: 4 x (1 + 1/2 + 1/4) = 7; the 100-day-old click is outside.
    assert decayed_points(4, [0, 30, 60, 100], window_days=90, half_life_days=30) == pytest.approx(7.0)
    assert decayed_points(4, [0, 30, 60], window_days=90, half_life_days=30, max_points=5) == 5  # capped
    assert decayed_points(4, [0, 30, 60], window_days=90, half_life_days=None) == 12  # no decay
    assert decayed_points(4, [15], window_days=90, half_life_days=30) == pytest.approx(4 / 2 ** 0.5)
    assert decayed_points(4, [90], window_days=90, half_life_days=30) == pytest.approx(0.5)  # boundary: inside


def test_engagement_points_decay_in_the_database(engine):
    add_rule(engine, "Email clicks", "engagement", {"event": "email_click", "window_days": 90}, 4, 30)
    lead = add_contact(engine, clicks_days_ago=[0, 30, 60, 100, -5])  # -5: a click after `now` is not read
    row = scores(engine).loc[lead]
    assert row.engagement_points == pytest.approx(7.0, abs=0.01)
    assert row.fit_points == 0 and row.points == pytest.approx(7.0, abs=0.01)
    assert row.reasons == "Email clicks (3 in 90 d) +7.0"


def test_fit_conditions_and_reasons(engine):
    add_rule(engine, "Target industry", "fit", {"field": "industry", "in": ["Software"]}, 15)
    add_rule(engine, "Mid-size", "fit", {"field": "employees", "min": 200, "max": 1000}, 10)
    add_rule(engine, "Budget", "fit", {"field": "annual_revenue", "min": 1e7}, 10)
    add_rule(engine, "Senior title", "fit", {"field": "job_title", "contains": ["vp", "director"]}, 15)
    add_rule(engine, "DACH", "fit", {"field": "country", "in": ["DE", "AT", "CH"]}, 5)
    add_rule(engine, "Student", "fit", {"field": "job_title", "contains": ["student"]}, -10)
    ideal = add_contact(engine, title="VP of Sales", country="DE", industry="software", employees=200, revenue=2e7)
    edge = add_contact(engine, title="Sales Director", industry="Retail", employees=1000)  # boundary: max is excluded
    student = add_contact(engine, title="Student")
    gone = add_contact(engine, title="VP", deleted=True)
    frame = scores(engine)
    assert gone not in frame.index
    assert frame.loc[ideal].points == 55
    # fit rules first, then engagement; by name within each
    assert frame.loc[ideal].reasons == ("Budget +10.0; DACH +5.0; Mid-size +10.0; Senior title +15.0; "
                                        "Target industry +15.0")
    assert frame.loc[edge].points == 15 and frame.loc[edge].reasons == "Senior title +15.0"
    assert frame.loc[student].points == -10 and frame.loc[student].reasons == "Student -10.0"


def test_custom_field_rule(engine):
    with session_scope(engine) as s:
        field = CustomFieldDef(entity="contact", key="budget", label="Budget", field_type="number")
        s.add(field)
        s.flush()
        field_id = field.id
    add_rule(engine, "Budget 50k+", "fit", {"field": "custom.budget", "min": 50_000}, 20)
    rich, poor = add_contact(engine), add_contact(engine)
    with session_scope(engine) as s:
        s.add_all([CustomFieldValue(field_id=field_id, record_id=rich, value_number=80_000),
                   CustomFieldValue(field_id=field_id, record_id=poor, value_number=10_000)])
    frame = scores(engine)
    assert (frame.loc[rich].points, frame.loc[poor].points) == (20, 0)


def test_more_recent_engagement_never_lowers_the_score(engine):
    add_rule(engine, "Email clicks", "engagement", {"event": "email_click", "window_days": 90, "max_points": 10}, 3, 30)
    add_rule(engine, "Visits", "engagement", {"event": "web_visit", "window_days": 30}, 1)  # no decay
    pairs = [(89, 1), (200, 60), (45, 44), (120, 0), (91, 90)]  # (older, newer) days ago; 90 is the window's edge
    leads = [(add_contact(engine, clicks_days_ago=[old, 100]), add_contact(engine, clicks_days_ago=[new, 100]),
              add_contact(engine, clicks_days_ago=[old, 100, new])) for old, new in pairs]
    frame = scores(engine)
    for stale, fresh, more in leads:
        assert frame.loc[fresh].points >= frame.loc[stale].points
        assert frame.loc[more].points >= frame.loc[stale].points
    assert frame.loc[leads[-1][1]].points > frame.loc[leads[-1][0]].points  # 90 days counts, 91 does not


def test_update_writes_clipped_rule_points_without_editing_contacts(engine, tmp_path):
    add_rule(engine, "Email clicks", "engagement", {"event": "email_click", "window_days": 90}, 40)
    add_rule(engine, "Student", "fit", {"field": "job_title", "contains": ["student"]}, -10)
    hot, cold = add_contact(engine, clicks_days_ago=[0, 1, 2]), add_contact(engine, title="Student")
    with session_scope(engine) as s:
        before = {c.id: (c.version, c.updated_at) for c in s.exec(select(Contact)).all()}
    report = update_lead_scores(engine, now=NOW, root=tmp_path)
    assert (report["source"], report["contacts"], report["changed"]) == ("rules", 2, 2)
    with session_scope(engine) as s:
        after = {c.id: c for c in s.exec(select(Contact)).all()}
        runs = s.exec(select(AuditLog).where(AuditLog.entity == "model", AuditLog.action == "score")).all()
    assert (after[hot].lead_score, after[cold].lead_score) == (100, 0)  # 40 x ~2.95 clipped; -10 clipped
    assert {i: (c.version, c.updated_at) for i, c in after.items()} == before  # a score is not an edit
    assert len(runs) == 1 and "2 contacts scored" in runs[0].context
    assert update_lead_scores(engine, now=NOW, root=tmp_path)["changed"] == 0  # unchanged rows are not rewritten


def test_a_renamed_contact_keeps_its_points(engine):
    add_rule(engine, "Senior title", "fit", {"field": "job_title", "contains": ["vp"]}, 15)
    add_rule(engine, "Email clicks", "engagement", {"event": "email_click", "window_days": 90}, 3, 30)
    lead = add_contact(engine, title="VP Sales", clicks_days_ago=[3, 40])
    before = scores(engine).loc[lead]
    with session_scope(engine) as s:
        s.get(Contact, lead).first_name = "Augusta"
    assert scores(engine).loc[lead].equals(before)


def test_explain_a_deleted_contact_is_not_found(engine, tmp_path):
    lead = add_contact(engine, deleted=True)
    with pytest.raises(NotFound):
        explain_lead(engine, lead, root=tmp_path, now=NOW)


def test_explain_without_a_model_gives_the_points_and_reasons(engine, tmp_path):
    add_rule(engine, "Senior title", "fit", {"field": "job_title", "contains": ["chief"]}, 15)
    lead = add_contact(engine, title="Chief Executive Officer")
    explained = explain_lead(engine, lead, root=tmp_path, now=NOW)
    assert explained["rules"]["points"] == 15 and explained["rules"]["text"] == "Senior title +15.0"
    assert explained["model"] is None and explained["score_source"] == "rules"
