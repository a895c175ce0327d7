"""Lead-scoring rules: rows an admin edits (fit and engagement points). Admin use cases, audited.

A fit rule gives its points once when its condition matches the contact or the contact's company:
  {"field": "industry" | "country", "in": [...]}                       (case-insensitive)
  {"field": "employees" | "annual_revenue", "min": a, "max": b}        (min <= value < max; either bound optional)
  {"field": "job_title", "contains": ["vp", "director"]}               (any word, case-insensitive)
  {"field": "custom.<key>", "in": [...]} | min/max | {"equals": true}  (a contact custom field, by its type)
An engagement rule gives its points per behaviour event of one kind in the last `window_days`, each event weighted
0.5 ** (age_days / half_life_days) (no decay without a half-life), capped at `max_points` when given:
  {"event": "email_click", "window_days": 90, "max_points": 15}
Engagement points must be positive, so more (or more recent) engagement never lowers a score; fit rules may be
negative (a poor-fit industry).
"""
import math

from pydantic import BaseModel
from sqlmodel import Session, select

from crm.audit import apply_changes, audit, check_version, created_fields, load_for_update
from crm.clock import utcnow
from crm.errors import ValidationFailed
from crm.models import CustomFieldDef, Entity, EventKind, FieldType, LeadScoreRule
from crm.permissions import Actor, require
from crm.validation import require_text

KINDS = ("fit", "engagement")
SET_FIELDS = ("industry", "country")
RANGE_FIELDS = ("employees", "annual_revenue")
TEXT_FIELDS = ("job_title",)
MAX_POINTS = 100.0
MAX_DAYS = 3650.0


class LeadRuleView(BaseModel):
    id: int
    name: str
    kind: str
    condition: dict
    points: float
    half_life_days: float | None
    active: bool
    version: int


def _view(rule: LeadScoreRule) -> LeadRuleView:
    return LeadRuleView.model_validate(rule, from_attributes=True)


def list_rules(*, session: Session) -> list[LeadRuleView]:
    """Every live rule, fit rules first, then by name (readable by every signed-in role)."""
    rules = session.exec(select(LeadScoreRule).where(LeadScoreRule.deleted_at.is_(None))).all()
    order = {kind: i for i, kind in enumerate(KINDS)}
    return sorted((_view(r) for r in rules), key=lambda r: (order.get(r.kind, 9), r.name.lower()))


def _number(value, field: str, *, lo: float, hi: float, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationFailed(field, "must be a number")
    if positive and value <= 0:
        raise ValidationFailed(field, "must be greater than 0")
    if not lo <= value <= hi:
        raise ValidationFailed(field, f"must be between {lo:g} and {hi:g}")
    return float(value)


def _words(value, field: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValidationFailed(field, "give a non-empty list of texts")
    return [v.strip() for v in value]


def _range(condition: dict, *, lo: float = 0, hi: float = 1e15) -> dict:
    out = {}
    for bound in ("min", "max"):
        if condition.get(bound) is not None:
            out[bound] = _number(condition[bound], f"condition.{bound}", lo=lo, hi=hi)
    if not out:
        raise ValidationFailed("condition.min", "give a min, a max or both")
    if "min" in out and "max" in out and out["min"] >= out["max"]:
        raise ValidationFailed("condition.max", "must be greater than min")
    return out


def custom_field(session: Session, key: str) -> CustomFieldDef:
    """The live contact custom field a `custom.<key>` condition names."""
    found = session.exec(select(CustomFieldDef).where(CustomFieldDef.entity == Entity.CONTACT,
                                                      CustomFieldDef.key == key,
                                                      CustomFieldDef.deleted_at.is_(None))).first()
    if found is None:
        raise ValidationFailed("condition.field", f"there is no contact custom field {key!r}")
    return found


def _fit_condition(session: Session, condition: dict) -> dict:
    field = condition.get("field")
    allowed = ("field", "in", "contains", "min", "max", "equals")
    if extra := sorted(set(condition) - set(allowed)):
        raise ValidationFailed("condition", f"unknown key(s) {', '.join(extra)}")
    if field in SET_FIELDS:
        words = _words(condition.get("in"), "condition.in")
        return {"field": field, "in": [w.upper() for w in words] if field == "country" else words}
    if field in RANGE_FIELDS:
        return {"field": field, **_range(condition)}
    if field in TEXT_FIELDS:
        return {"field": field, "contains": _words(condition.get("contains"), "condition.contains")}
    if isinstance(field, str) and field.startswith("custom."):
        definition = custom_field(session, field.removeprefix("custom."))
        if definition.field_type == FieldType.NUMBER:
            return {"field": field, **_range(condition, lo=-1e15)}
        if definition.field_type == FieldType.CHECKBOX:
            if not isinstance(condition.get("equals"), bool):
                raise ValidationFailed("condition.equals", "give true or false for a checkbox field")
            return {"field": field, "equals": condition["equals"]}
        if definition.field_type == FieldType.DATE:
            raise ValidationFailed("condition.field", "date custom fields cannot be scored")
        return {"field": field, "in": _words(condition.get("in"), "condition.in")}
    names = ", ".join([*SET_FIELDS, *RANGE_FIELDS, *TEXT_FIELDS, "custom.<key>"])
    raise ValidationFailed("condition.field", f"{field!r} cannot be scored; use one of {names}")


def _engagement_condition(condition: dict) -> dict:
    if extra := sorted(set(condition) - {"event", "window_days", "max_points"}):
        raise ValidationFailed("condition", f"unknown key(s) {', '.join(extra)}")
    event = condition.get("event")
    if event not in list(EventKind):
        raise ValidationFailed("condition.event", f"{event!r} is not an event kind; use one of "
                                                  f"{', '.join(EventKind)}")
    out = {"event": event, "window_days": _number(condition.get("window_days"), "condition.window_days", lo=0,
                                                  hi=MAX_DAYS, positive=True)}
    if condition.get("max_points") is not None:
        out["max_points"] = _number(condition["max_points"], "condition.max_points", lo=0, hi=MAX_POINTS,
                                    positive=True)
    return out


def validate_rule(session: Session, *, name: str, kind: str, condition: dict, points: float,
                  half_life_days: float | None) -> dict:
    """The cleaned values of a rule, or ValidationFailed naming the field."""
    name = require_text(name, field="name", max_length=120)
    if kind not in KINDS:
        raise ValidationFailed("kind", f"{kind!r} is not a rule kind; use fit or engagement")
    if not isinstance(condition, dict):
        raise ValidationFailed("condition", "must be a mapping")
    points = _number(points, "points", lo=-MAX_POINTS, hi=MAX_POINTS)
    if kind == "fit":
        if half_life_days is not None:
            raise ValidationFailed("half_life_days", "only engagement rules decay")
        if points == 0:
            raise ValidationFailed("points", "must not be 0")
        return dict(name=name, kind=kind, condition=_fit_condition(session, condition), points=points,
                    half_life_days=None)
    if points <= 0:
        raise ValidationFailed("points", "engagement rules add points: give more than 0 (use a fit rule to subtract)")
    if half_life_days is not None:
        half_life_days = _number(half_life_days, "half_life_days", lo=0, hi=MAX_DAYS, positive=True)
    return dict(name=name, kind=kind, condition=_engagement_condition(condition), points=points,
                half_life_days=half_life_days)


def _check_unique(session: Session, name: str, rule_id: int | None) -> None:
    live = session.exec(select(LeadScoreRule).where(LeadScoreRule.deleted_at.is_(None))).all()
    if any(r.name.lower() == name.lower() and r.id != rule_id for r in live):
        raise ValidationFailed("name", f"a lead-score rule called {name!r} already exists")


def save_rule(*, session: Session, actor: Actor, name: str, kind: str, condition: dict, points: float,
              half_life_days: float | None = None, rule_id: int | None = None, seen_version: int | None = None,
              active: bool = True) -> LeadRuleView:
    """Create a rule, or change one (the version the admin saw must still be current)."""
    require(actor, "admin.configure", "configure lead scoring")
    values = validate_rule(session, name=name, kind=kind, condition=condition, points=points,
                           half_life_days=half_life_days)
    values["active"] = bool(active)
    _check_unique(session, values["name"], rule_id)
    if rule_id is None:
        rule = LeadScoreRule(**values)
        session.add(rule)
        session.flush()
        audit(session, actor_id=actor.id, entity="lead_score_rule", record_id=rule.id, action="create",
              changes=created_fields(rule), record_version=rule.version)
        return _view(rule)
    rule = load_for_update(session, LeadScoreRule, rule_id, label="Lead-score rule")
    if seen_version is None:
        raise ValidationFailed("seen_version", "give the version you edited")
    check_version(session, entity="lead_score_rule", record=rule, seen_version=seen_version)
    diff = apply_changes(rule, values)
    if diff:
        audit(session, actor_id=actor.id, entity="lead_score_rule", record_id=rule.id, action="update", changes=diff,
              record_version=rule.version)
    return _view(rule)


def delete_rule(*, session: Session, actor: Actor, rule_id: int, seen_version: int) -> None:
    """Soft-delete a rule; scores change at the next `update_lead_scores` run."""
    require(actor, "admin.configure", "configure lead scoring")
    rule = load_for_update(session, LeadScoreRule, rule_id, label="Lead-score rule")
    check_version(session, entity="lead_score_rule", record=rule, seen_version=seen_version)
    diff = apply_changes(rule, {"deleted_at": utcnow()})
    audit(session, actor_id=actor.id, entity="lead_score_rule", record_id=rule.id, action="delete", changes=diff,
          record_version=rule.version)


SENIOR = ["chief", "ceo", "cto", "cfo", "coo", "vp", "vice president", "head of", "director", "founder", "owner"]
# name, kind, condition, points, half-life: an ideal lead scores about 100 (scores are clipped to 0-100).
DEFAULT_RULES = (
    ("Target industry", "fit", {"field": "industry", "in": ["Software", "Financial services", "Telecommunications",
                                                           "Healthcare"]}, 15, None),
    ("Poor-fit industry", "fit", {"field": "industry", "in": ["Government", "Education", "Hospitality"]}, -10, None),
    ("Company of 200+ employees", "fit", {"field": "employees", "min": 200}, 10, None),
    ("Enterprise (1,000+ employees)", "fit", {"field": "employees", "min": 1000}, 5, None),
    ("Budget: revenue of $10M+", "fit", {"field": "annual_revenue", "min": 10_000_000}, 10, None),
    ("Senior title", "fit", {"field": "job_title", "contains": SENIOR}, 15, None),
    ("Manager title", "fit", {"field": "job_title", "contains": ["manager"]}, 5, None),
    ("Student or intern", "fit", {"field": "job_title", "contains": ["student", "intern"]}, -10, None),
    ("Website visits", "engagement", {"event": "web_visit", "window_days": 90, "max_points": 10}, 1, 30),
    ("Email opens", "engagement", {"event": "email_open", "window_days": 60, "max_points": 5}, 0.5, 14),
    ("Email clicks", "engagement", {"event": "email_click", "window_days": 90, "max_points": 15}, 3, 30),
    ("Forms submitted", "engagement", {"event": "form_submission", "window_days": 180, "max_points": 20}, 10, 60),
    ("Offers viewed", "engagement", {"event": "offer_viewed", "window_days": 90, "max_points": 15}, 5, 30),
)


def seed_default_rules(*, session: Session) -> int:
    """Add the default rules when the table has never held any; returns how many were added."""
    if session.exec(select(LeadScoreRule.id).limit(1)).first() is not None:
        return 0
    for name, kind, condition, points, half_life in DEFAULT_RULES:
        rule = LeadScoreRule(**validate_rule(session, name=name, kind=kind, condition=condition, points=points,
                                             half_life_days=half_life))
        session.add(rule)
        session.flush()
        audit(session, actor_id=None, entity="lead_score_rule", record_id=rule.id, action="create",
              changes=created_fields(rule), record_version=rule.version, context="seed")
    return len(DEFAULT_RULES)
