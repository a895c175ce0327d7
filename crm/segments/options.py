"""What the builder offers for each field's values, and a definition in words.

Values are ids where names can repeat (users, stages) and names elsewhere; the compiler accepts either.
"""
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from crm.models import BehaviorEvent, Company, Contact, Product, Tag, Team, User
from crm.permissions import Actor
from crm.pipelines import list_pipelines
from crm.segments.definition import NO_VALUE_OPS, OP_LABELS, Definition
from crm.segments.fields import Field, catalogue

MAX_OPTIONS = 500


def value_options(session: Session, actor: Actor) -> dict[str, list[tuple[Any, str]]]:
    """(value, label) pairs for each kind of named value a field can take."""
    pipelines = list_pipelines(session=session)
    countries = {c for c in session.exec(select(Contact.country).distinct().where(Contact.country.is_not(None)))}
    countries |= {c for c in session.exec(select(Company.country).distinct().where(Company.country.is_not(None)))}
    return {
        "tags": [(n, n) for n in session.exec(select(Tag.name).where(Tag.deleted_at.is_(None))
                                              .order_by(func.lower(Tag.name)))],
        "products": [(i, n) for i, n in session.exec(select(Product.id, Product.name)
                                                     .where(Product.deleted_at.is_(None)).order_by(Product.name))],
        "pipelines": [(p.id, p.name) for p in pipelines],
        "stages": [(s.id, f"{p.name} · {s.name}") for p in pipelines for s in p.stages
                   if not (s.is_won or s.is_lost)],
        "users": [(i, n) for i, n in session.exec(select(User.id, User.full_name).where(User.active)
                                                  .order_by(User.full_name))],
        "teams": [(i, n) for i, n in session.exec(select(Team.id, Team.name).order_by(Team.name))],
        "offers": [(o, o) for o in session.exec(select(BehaviorEvent.offer).distinct()
                                                .where(BehaviorEvent.offer.is_not(None))
                                                .order_by(BehaviorEvent.offer).limit(MAX_OPTIONS))],
        "countries": [(c, c) for c in sorted(countries)],
    }


def describe(session: Session, actor: Actor, definition: Definition | dict) -> str:
    """The definition in words, e.g. "Lifecycle stage is any of customer, opportunity and Country is US, or …"."""
    definition = Definition.parse(definition) if isinstance(definition, dict) else definition
    if not definition.groups:
        return f"every {definition.entity} you may read"
    fields = catalogue(session, actor, definition.entity)
    names = {kind: dict(pairs) for kind, pairs in value_options(session, actor).items()}
    groups = []
    for group in definition.groups:
        parts = [_words(fields.get(c.field), c, names) for c in group.conditions]
        groups.append(" and ".join(parts) or "everyone")
    return " — or — ".join(f"({g})" if len(groups) > 1 else g for g in groups)


def _words(field: Field | None, c, names: dict) -> str:
    label = field.label if field else c.field
    if field and field.param and c.param is not None:
        label += f" {_name(field, c.param, names)}"
    op = OP_LABELS.get(c.op, c.op)
    if c.op in NO_VALUE_OPS:
        return f"{label} {op}"
    if c.op in ("in_last", "in_next", "more_than_days_ago"):
        return f"{label} {op.replace('N', str(c.days or c.value))}"
    values = c.value if isinstance(c.value, (list, tuple)) else [c.value]
    shown = ", ".join("yes" if v is True else "no" if v is False else str(_name(field, v, names)) for v in values)
    upper = f" and {c.upper}" if c.op == "between" else ""
    window = f" (last {c.days} days)" if c.days and c.op not in ("in_last", "in_next", "more_than_days_ago") else ""
    return f"{label} {op} {shown}{upper}{window}"


def _name(field: Field | None, value, names: dict):
    if field is None or field.values not in names:
        return value
    lookup = names[field.values]
    try:
        return lookup.get(int(value), value) if str(value).isdigit() else value
    except (TypeError, ValueError):
        return value
