"""A definition → one SQL condition on the contact or company table, limited to what the actor may read.

Each condition is checked against the catalogue (field known for the entity, operator allowed for its kind, value
of the right type) and converted; only then does its field build SQL, with every value bound as a parameter. A
check that fails raises ValidationFailed naming the condition (`groups[1].conditions[0].value`) and the reason.
"""
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, true
from sqlmodel import Session, select

from crm.clock import utcnow
from crm.errors import ValidationFailed
from crm.models import Company, Contact, Pipeline, Product, Stage, Tag, Team, User
from crm.permissions import Actor, readable_owner_ids
from crm.segments.definition import (
    DAY_OPS, LIST_OPS, NO_VALUE_OPS, OPS_BY_KIND, OP_LABELS, Condition, Definition, as_date, as_days, as_list,
    as_number, check_shape, where,
)
from crm.segments.fields import Checked, Context, Field, catalogue

AREA = {"contact": "contacts", "company": "contacts"}  # companies are read under the contacts right
# Sets whose values may be given by name: the table, its name column, and whether names ignore case.
NAMED = {"tags": (Tag, Tag.name), "products": (Product, Product.name), "pipelines": (Pipeline, Pipeline.name),
         "stages": (Stage, Stage.name), "users": (User, User.full_name), "teams": (Team, Team.name)}


def compile_definition(session: Session, actor: Actor, definition: Definition | dict, *,
                       now: datetime | None = None) -> ColumnElement:
    """The condition selecting the definition's live records that the actor may read."""
    definition = definition if isinstance(definition, Definition) else Definition.parse(definition)
    check_shape(definition)
    ctx = Context(session, actor, definition.entity, now or utcnow())
    fields = catalogue(session, actor, definition.entity)
    groups = [and_(true(), *(_condition(ctx, fields, c, g, i) for i, c in enumerate(group.conditions)))
              for g, group in enumerate(definition.groups)]
    table = ctx.table
    scope = [table.deleted_at.is_(None)]
    readable = readable_owner_ids(session, actor, AREA[definition.entity])
    if readable is not None:
        scope.append(table.owner_id.in_(readable))
    return and_(*scope, or_(*groups)) if groups else and_(*scope)


def entity_table(entity: str):
    return Contact if entity == "contact" else Company


def _condition(ctx: Context, fields: dict[str, Field], c: Condition, g: int, i: int) -> ColumnElement:
    field = fields.get(c.field)
    if field is None:
        raise ValidationFailed(where(g, i, "field"), f"{c.field!r} is not a field a {ctx.entity} segment can use"
                                                     f" (or your role may not see it)")
    allowed = OPS_BY_KIND[field.kind]
    if c.op not in allowed:
        raise ValidationFailed(where(g, i, "op"), f"{field.label}: {c.op!r} is not one of "
                                                  f"{', '.join(OP_LABELS[o] for o in allowed)}")
    return field.build(ctx, check(ctx.session, field, c, g, i))


def check(session: Session, field: Field, c: Condition, g: int = 0, i: int = 0) -> Checked:
    """The condition's values converted for its field, or ValidationFailed naming the part that is wrong."""
    op, name = c.op, (lambda part: where(g, i, part))
    param = _param(session, field, c.param, name("param")) if field.param else None
    days = as_days(c.days, name("days")) if field.needs_days else (
        as_days(c.days, name("days")) if c.days is not None and field.key == "offer_viewed" else None)
    if op in NO_VALUE_OPS:
        return Checked(op, param=param, days=days)
    if op in DAY_OPS:
        return Checked(op, param=param, days=as_days(c.days if c.days is not None else c.value, name("days")))
    convert = _converter(session, field, name("value"))
    if op in LIST_OPS:
        values = as_list(c.value, name("value"))
        if field.kind == "set":
            return Checked(op, _resolve(session, field, values, name("value")), param=param, days=days)
        return Checked(op, [convert(v) for v in values], param=param, days=days)
    value = convert(c.value)
    upper = convert(c.upper) if op == "between" else None
    if op == "between" and upper < value:
        raise ValidationFailed(name("upper"), "the upper bound is below the lower one")
    return Checked(op, value, upper, param=param, days=days)


def _converter(session: Session, field: Field, name: str):
    kind = field.kind
    if kind in ("number", "count", "days_since"):
        return lambda v: _non_negative(as_number(v, name), name) if kind != "number" else as_number(v, name)
    if kind == "date":
        return lambda v: as_date(v, name)
    if kind == "bool":
        return lambda v: _boolean(v, name)
    if field.values in ("users", "teams"):
        return lambda v: _resolve(session, field, [v], name)[0]
    if kind == "choice":
        return lambda v: _choice(field, v, name)
    return lambda v: _text(v, name)


def _text(value, name: str) -> str:
    if value is None or isinstance(value, (dict, list, tuple)):
        raise ValidationFailed(name, "a text value is needed")
    text = str(value).strip()
    if not text:
        raise ValidationFailed(name, "a text value is needed")
    if len(text) > 500:
        raise ValidationFailed(name, "at most 500 characters")
    return text


def _choice(field: Field, value, name: str) -> str:
    text = _text(value, name)
    if field.values == "countries":
        if len(text) != 2 or not text.isalpha():
            raise ValidationFailed(name, f"{text!r} is not a two-letter country code (ISO 3166-1)")
        return text.upper()
    if field.choices and text.lower() not in field.choices:
        raise ValidationFailed(name, f"{text!r} is not one of {', '.join(field.choices)}")
    return text.lower() if field.choices else text


def _boolean(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ValidationFailed(name, f"{value!r} is not yes or no")


def _non_negative(number: float, name: str) -> float:
    if number < 0:
        raise ValidationFailed(name, "cannot be negative")
    return number


def _param(session: Session, field: Field, value, name: str) -> int:
    if value is None or value == "":
        raise ValidationFailed(name, f"{field.label}: choose the {field.param}")
    return _resolve(session, field, [value], name)[0]


def _resolve(session: Session, field: Field, values: list, name: str) -> list:
    """Ids of the named records (tags, products, pipelines, stages, users, teams), given as ids or names; offers
    are free text. An unknown one is an error rather than a silent empty match."""
    if field.values not in NAMED:
        return [_text(v, name) for v in values]
    table, label = NAMED[field.values]
    what = field.values[:-1]
    ids = [int(v) for v in values if _is_id(v)]
    names = {_text(v, name).lower() for v in values if not _is_id(v)}
    known = set(session.exec(select(table.id).where(table.id.in_(ids))).all()) if ids else set()
    if set(ids) - known:
        raise ValidationFailed(name, f"no {what} with id {min(set(ids) - known)}")
    by_name = dict(session.exec(select(func.lower(label), table.id).where(func.lower(label).in_(names))).all()) \
        if names else {}
    if names - set(by_name):
        raise ValidationFailed(name, f"no {what} named {sorted(names - set(by_name))[0]!r}")
    resolved = [int(v) if _is_id(v) else by_name[str(v).strip().lower()] for v in values]
    return list(dict.fromkeys(resolved))


def _is_id(value) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str)
                                                                         and value.strip().isdigit())


