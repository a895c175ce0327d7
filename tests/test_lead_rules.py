"""Lead-score rules: admin-only CRUD, validation naming the field, versions and audit."""
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlmodel import select

from crm.db import session_scope
from crm.errors import EditConflict, PermissionDenied, ValidationFailed
from crm.lead_rules import DEFAULT_RULES, delete_rule, list_rules, save_rule, seed_default_rules, validate_rule
from crm.models import AuditLog, CustomFieldDef
from tests.factories import actor, make_user

CLICKS = {"event": "email_click", "window_days": 90, "max_points": 15}


def _audit(engine, action: str) -> list[AuditLog]:
    with session_scope(engine) as s:
        rows = s.exec(select(AuditLog).where(AuditLog.entity == "lead_score_rule", AuditLog.action == action))
        return list(rows.all())


def test_admin_creates_edits_and_deletes_a_rule_with_audit(engine, admin):
    with session_scope(engine) as s:
        rule = save_rule(session=s, actor=admin, name="Email clicks", kind="engagement", condition=CLICKS, points=3,
                         half_life_days=30)
    assert rule.version == 1 and rule.condition == CLICKS
    assert {a.field for a in _audit(engine, "create")} >= {"name", "kind", "condition", "points", "half_life_days"}
    with session_scope(engine) as s:
        edited = save_rule(session=s, actor=admin, name="Email clicks", kind="engagement", condition=CLICKS, points=4,
                           half_life_days=30, rule_id=rule.id, seen_version=1)
    assert edited.version == 2 and edited.points == 4
    [change] = _audit(engine, "update")
    assert (change.field, change.old_value, change.new_value, change.actor_id) == ("points", "3.0", "4.0", admin.id)
    with session_scope(engine) as s:
        delete_rule(session=s, actor=admin, rule_id=rule.id, seen_version=2)
        assert list_rules(session=s) == []
    assert _audit(engine, "delete")[0].field == "deleted_at"


def test_a_stale_version_is_a_conflict_naming_who_changed_what(engine, admin):
    with session_scope(engine) as s:
        rule = save_rule(session=s, actor=admin, name="Forms", kind="engagement",
                         condition={"event": "form_submission", "window_days": 180}, points=10)
        save_rule(session=s, actor=admin, name="Forms", kind="engagement",
                  condition={"event": "form_submission", "window_days": 180}, points=12, rule_id=rule.id,
                  seen_version=1)
    with pytest.raises(EditConflict, match="points"), session_scope(engine) as s:
        save_rule(session=s, actor=admin, name="Forms", kind="engagement",
                  condition={"event": "form_submission", "window_days": 180}, points=8, rule_id=rule.id, seen_version=1)


def test_only_admins_change_rules(engine):
    for role in ("rep", "manager", "marketer"):
        someone = actor(engine, make_user(engine, role))
        with pytest.raises(PermissionDenied), session_scope(engine) as s:
            save_rule(session=s, actor=someone, name="Senior", kind="fit",
                      condition={"field": "job_title", "contains": ["vp"]}, points=10)


BAD = [  # kind, condition, points, half-life, the field the error names
    ("fit", {"field": "salary", "in": ["x"]}, 5, None, "condition.field"),  # not a whitelisted field
    ("fit", {"field": "industry", "in": []}, 5, None, "condition.in"),  # an empty list matches nothing
    ("fit", {"field": "employees", "min": 500, "max": 100}, 5, None, "condition.max"),  # an empty range
    ("fit", {"field": "employees"}, 5, None, "condition.min"),  # no bound at all
    ("fit", {"field": "industry", "in": ["Software"], "sql": "1"}, 5, None, "condition"),  # unknown key
    ("fit", {"field": "industry", "in": ["Software"]}, 5, 30, "half_life_days"),  # fit never decays
    ("fit", {"field": "industry", "in": ["Software"]}, 0, None, "points"),
    ("fit", {"field": "industry", "in": ["Software"]}, 101, None, "points"),  # boundary: 100 is the most
    ("fit", {"field": "custom.budget", "min": 1}, 5, None, "condition.field"),  # no such custom field
    ("engagement", {"event": "phone_call", "window_days": 30}, 5, None, "condition.event"),
    ("engagement", {"event": "web_visit", "window_days": 0}, 5, None, "condition.window_days"),
    ("engagement", {"event": "web_visit", "window_days": 30}, -2, None, "points"),  # engagement only adds
    ("engagement", {"event": "web_visit", "window_days": 30}, 2, 0, "half_life_days"),
    ("engagement", {"event": "web_visit", "window_days": 30, "max_points": -1}, 2, None, "condition.max_points"),
    ("nurture", {"event": "web_visit", "window_days": 30}, 2, None, "kind"),
]


def test_validation_names_the_field(engine, admin):
    for kind, condition, points, half_life, field in BAD:
        with pytest.raises(ValidationFailed) as caught, session_scope(engine) as s:
            save_rule(session=s, actor=admin, name="Bad rule", kind=kind, condition=condition, points=points,
                      half_life_days=half_life)
        assert caught.value.field == field, (condition, caught.value)


def test_names_are_unique_among_live_rules(engine, admin):
    fit = {"field": "country", "in": ["de"]}
    with session_scope(engine) as s:
        rule = save_rule(session=s, actor=admin, name="Germany", kind="fit", condition=fit, points=5)
        assert rule.condition == {"field": "country", "in": ["DE"]}  # countries are stored upper-case
    with pytest.raises(ValidationFailed, match="already exists"), session_scope(engine) as s:
        save_rule(session=s, actor=admin, name="germany", kind="fit", condition=fit, points=5)


def test_custom_field_conditions_follow_the_field_type(engine, admin):
    with session_scope(engine) as s:
        s.add(CustomFieldDef(entity="contact", key="budget", label="Budget", field_type="number"))
        s.add(CustomFieldDef(entity="contact", key="plan", label="Plan", field_type="dropdown", options=["pro"]))
    with session_scope(engine) as s:
        save_rule(session=s, actor=admin, name="Budget", kind="fit", condition={"field": "custom.budget", "min": 5e4},
                  points=10)
        save_rule(session=s, actor=admin, name="Plan", kind="fit", condition={"field": "custom.plan", "in": ["pro"]},
                  points=5)
    with pytest.raises(ValidationFailed) as caught, session_scope(engine) as s:
        save_rule(session=s, actor=admin, name="Budget 2", kind="fit",
                  condition={"field": "custom.budget", "in": ["big"]}, points=10)
    assert caught.value.field == "condition.min"


def test_default_rules_are_seeded_once(engine):
    with session_scope(engine) as s:
        assert seed_default_rules(session=s) == len(DEFAULT_RULES)
        assert seed_default_rules(session=s) == 0
        rules = list_rules(session=s)
    assert [r.kind for r in rules] == ["fit"] * 8 + ["engagement"] * 5  # fit rules first
    assert {r.condition.get("event") for r in rules if r.kind == "engagement"} == {
        "web_visit", "email_open", "email_click", "form_submission", "offer_viewed"}
    assert len(_audit(engine, "create")) >= len(DEFAULT_RULES)


values = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.text(max_size=8),
                   st.lists(st.text(max_size=6), max_size=3))
conditions = st.dictionaries(st.sampled_from(["field", "in", "contains", "min", "max", "equals", "event",
                                              "window_days", "max_points", "sql"]),
                             st.one_of(values, st.sampled_from(["industry", "employees", "job_title", "custom.x",
                                                                "web_visit", "email_click"])), max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["fit", "engagement", "x"]), condition=conditions, points=values, half_life=values)
def test_any_rule_input_is_either_valid_or_a_named_field_error(sqlite_engine, kind, condition, points, half_life):
    with session_scope(sqlite_engine) as s:
        try:
            clean = validate_rule(s, name="Rule", kind=kind, condition=condition, points=points,
                                  half_life_days=half_life)
        except ValidationFailed as exc:
            assert exc.field in {"kind", "condition", "points", "half_life_days"} or exc.field.startswith("condition.")
        else:
            assert clean["kind"] == kind and -100 <= clean["points"] <= 100
            assert kind == "fit" or (clean["points"] > 0 and clean["condition"]["window_days"] > 0)
