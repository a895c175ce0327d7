"""What a segment is made of: conditions in groups (AND within a group, OR across groups), as plain data.

A definition is stored as JSON on the segment and compiled to SQL by `crm.segments.compiler`. Nothing a user types
becomes SQL: field keys and operators come from a fixed catalogue (`crm.segments.fields`), values are checked
against the field's type here and always travel as bound parameters.
"""
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from crm.errors import ValidationFailed

MAX_GROUPS, MAX_CONDITIONS, MAX_VALUES, MAX_DAYS = 20, 30, 1_000, 36_500

# Operators by the kind of value they compare. Negative operators (not_equals, not_in, is_empty, has_none) match
# records without a value too: "industry is not Retail" includes contacts whose company has no industry.
TEXT_OPS = ("equals", "not_equals", "in", "not_in", "contains", "starts_with", "is_empty", "is_not_empty")
CHOICE_OPS = ("equals", "not_equals", "in", "not_in", "is_empty", "is_not_empty")
NUMBER_OPS = ("equals", "lt", "lte", "gt", "gte", "between", "is_empty", "is_not_empty")
DATE_OPS = ("before", "after", "between", "in_last", "in_next", "more_than_days_ago", "is_empty", "is_not_empty")
BOOL_OPS = ("is",)
SET_OPS = ("has_any", "has_all", "has_none")
DAYS_SINCE_OPS = ("lt", "lte", "gt", "gte", "between", "is_empty", "is_not_empty")  # empty: never happened
COUNT_OPS = ("equals", "lt", "lte", "gt", "gte", "between")
OPS_BY_KIND = {"text": TEXT_OPS, "choice": CHOICE_OPS, "number": NUMBER_OPS, "date": DATE_OPS, "bool": BOOL_OPS,
               "set": SET_OPS, "days_since": DAYS_SINCE_OPS, "count": COUNT_OPS}
LIST_OPS = {"in", "not_in", "has_any", "has_all", "has_none"}
NO_VALUE_OPS = {"is_empty", "is_not_empty"}
DAY_OPS = {"in_last", "in_next", "more_than_days_ago"}
OP_LABELS = {"equals": "is", "not_equals": "is not", "in": "is any of", "not_in": "is none of",
             "contains": "contains", "starts_with": "starts with", "is_empty": "is empty",
             "is_not_empty": "is not empty", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥", "between": "between",
             "before": "before", "after": "after", "in_last": "in the last N days", "in_next": "in the next N days",
             "more_than_days_ago": "more than N days ago", "is": "is", "has_any": "has any of",
             "has_all": "has all of", "has_none": "has none of"}


class Condition(BaseModel):
    """One test on one field. `param` narrows a parameterised field (the product of "owns product", the offer of
    "viewed offer", the pipeline of "open deal in"); `days` is the window of behaviour counts and of the relative
    date operators."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    field: str = Field(max_length=120)
    op: str = Field(max_length=30)
    value: Any = None
    upper: Any = None  # between: the upper bound (inclusive)
    param: Any = None
    days: int | None = None


class Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    conditions: tuple[Condition, ...] = ()


class Definition(BaseModel):
    """Groups OR'ed together; an empty definition matches every record the actor may read."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    entity: Literal["contact", "company"] = "contact"
    groups: tuple[Group, ...] = ()

    @classmethod
    def parse(cls, data: dict | None) -> "Definition":
        """From stored or submitted JSON; a malformed definition is a ValidationFailed naming the part."""
        try:
            return cls.model_validate(data or {})
        except ValueError as exc:
            errors = getattr(exc, "errors", lambda: [])()
            where = ".".join(str(p) for p in errors[0]["loc"]) if errors else "definition"
            raise ValidationFailed(where or "definition", errors[0]["msg"] if errors else str(exc)) from None

    def to_json(self) -> dict:
        return self.model_dump(mode="json", exclude_defaults=False)

    @property
    def condition_count(self) -> int:
        return sum(len(g.conditions) for g in self.groups)


def where(g: int, c: int, part: str | None = None) -> str:
    """The name a validation error gives a condition's part: groups[0].conditions[2].value."""
    return f"groups[{g}].conditions[{c}]" + (f".{part}" if part else "")


def as_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or value is None or value == "":
        raise ValidationFailed(name, "a number is needed")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationFailed(name, f"{value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValidationFailed(name, "a finite number is needed")
    return number


def as_date(value: Any, name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValidationFailed(name, f"{value!r} is not a date (YYYY-MM-DD)") from None


def as_days(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValidationFailed(name, "a whole number of days is needed")
    try:
        days = int(value)
    except (TypeError, ValueError):
        raise ValidationFailed(name, f"{value!r} is not a whole number of days") from None
    if not 0 < days <= MAX_DAYS or days != float(value):
        raise ValidationFailed(name, f"the number of days must be a whole number from 1 to {MAX_DAYS}")
    return days


def as_list(value: Any, name: str) -> list:
    values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
    values = [v for v in values if v is not None and v != ""]
    if not values:
        raise ValidationFailed(name, "choose at least one value")
    if len(values) > MAX_VALUES:
        raise ValidationFailed(name, f"at most {MAX_VALUES} values")
    return values


def check_shape(definition: Definition) -> None:
    if len(definition.groups) > MAX_GROUPS:
        raise ValidationFailed("groups", f"at most {MAX_GROUPS} groups")
    for g, group in enumerate(definition.groups):
        if len(group.conditions) > MAX_CONDITIONS:
            raise ValidationFailed(f"groups[{g}]", f"at most {MAX_CONDITIONS} conditions in a group")
