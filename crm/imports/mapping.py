"""The column mapping: which canonical column or custom field each file column fills, plus explicit value fixes.

A mapping is plain JSON (docs/import.md has the format), saved per entity under a name (saved_mapping), and
suggested from the file's header: exact names and synonyms first, then near spellings. Nothing is mapped by a
guess the user cannot see; the page shows the suggestion and the CLI reports the columns it ignored.
"""
import re
from typing import Any

from pydantic import BaseModel, Field, field_validator
from rapidfuzz import fuzz, process
from sqlmodel import Session, select

from crm.audit import apply_changes, audit, created_fields
from crm.errors import NotFound, ValidationFailed
from crm.imports.columns import COLUMNS, columns_of
from crm.imports.dates import DateOrder, detect_date_order
from crm.imports.values import parse_bool, parse_number
from crm.models import CustomFieldDef, FieldType, SavedMapping
from crm.permissions import Actor, require

CUSTOM = "custom:"  # a target "custom:<key>" fills a custom field (an existing one, or one defined in custom_fields)
CUSTOM_ENTITY = {"contacts": "contact", "companies": "company", "deals": "deal"}
_SUGGEST_SCORE = 88


class CustomFieldSpec(BaseModel):
    """A custom field the import creates (admins only): its label and type; options for dropdowns."""
    label: str = Field(min_length=1, max_length=120)
    type: FieldType = FieldType.TEXT
    options: list[str] = Field(default_factory=list)


class Mapping(BaseModel):
    """What a file's columns mean. Unlisted columns are ignored (and reported as ignored)."""
    entity: str
    columns: dict[str, str | None] = Field(default_factory=dict)  # file column -> canonical column | custom:key | None
    custom_fields: dict[str, CustomFieldSpec] = Field(default_factory=dict)  # key -> definition, for new fields
    values: dict[str, dict[str, str]] = Field(default_factory=dict)  # file column (or target) -> {cell: replacement}
    scale: dict[str, float] = Field(default_factory=dict)  # file column -> multiplier for numbers (e.g. 1e6)
    date_order: DateOrder = DateOrder.AUTO
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("entity")
    @classmethod
    def _known_entity(cls, value: str) -> str:
        if value not in COLUMNS:
            raise ValueError(f"unknown entity {value!r}; use one of {', '.join(COLUMNS)}")
        return value

    def targets(self) -> dict[str, str]:
        """file column -> target, for mapped columns only."""
        return {source: target for source, target in self.columns.items() if target}

    def source_of(self, target: str) -> str | None:
        return next((s for s, t in self.columns.items() if t == target), None)


def check_mapping(mapping: Mapping, headers: list[str]) -> None:
    """Refuse a mapping that names unknown canonical columns, a column twice, or columns the file lacks."""
    known = columns_of(mapping.entity)
    seen: dict[str, str] = {}
    for source, target in mapping.targets().items():
        if source not in headers:
            raise ValidationFailed("mapping", f"the file has no column {source!r} (its columns: {', '.join(headers)})")
        if target.startswith(CUSTOM):
            if mapping.entity not in CUSTOM_ENTITY:
                raise ValidationFailed("mapping", f"{mapping.entity} have no custom fields (column {source!r})")
        elif target not in known:
            raise ValidationFailed("mapping", f"column {source!r} maps to {target!r}, which is not a column of "
                                   f"{mapping.entity} (they are: {', '.join(known)})")
        if target in seen:
            raise ValidationFailed("mapping", f"columns {seen[target]!r} and {source!r} both map to {target!r}")
        seen[target] = source


def _norm(header: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", header.casefold().replace("_", " ")).split())


def suggest_mapping(entity: str, headers: list[str], *, custom_keys: dict[str, str] | None = None) -> Mapping:
    """Exact names and synonyms first, then near spellings (e.g. 'Emial'); each target is used once.

    `custom_keys` maps existing custom field keys to their labels, so columns named after them are suggested too.
    """
    names: dict[str, str] = {}
    for column in COLUMNS[entity]:
        names.setdefault(_norm(column.name), column.name)
    for column in COLUMNS[entity]:
        for synonym in column.synonyms:
            names.setdefault(_norm(synonym), column.name)
    for key, label in (custom_keys or {}).items():
        names.setdefault(_norm(key), CUSTOM + key)
        names.setdefault(_norm(label), CUSTOM + key)
    mapping: dict[str, str | None] = {h: None for h in headers}
    used: set[str] = set()
    for header in headers:  # exact (normalised) matches win over near ones, whatever the column order
        target = names.get(_norm(header))
        if target and target not in used:
            mapping[header], _ = target, used.add(target)
    for header in [h for h in headers if mapping[h] is None]:
        found = process.extractOne(_norm(header), list(names), scorer=fuzz.ratio, score_cutoff=_SUGGEST_SCORE)
        if found and names[found[0]] not in used:
            mapping[header] = names[found[0]]
            used.add(names[found[0]])
    return Mapping(entity=entity, columns=mapping)


def custom_key(header: str) -> str:
    """A custom field key from a column name: lower-case letters, digits and underscores, starting with a letter."""
    key = re.sub(r"[^0-9a-z]+", "_", _norm(header)).strip("_")[:60]
    return key if key[:1].isalpha() else f"f_{key}"[:60]


def infer_type(values: list[str]) -> FieldType:
    """The narrowest type every non-empty value fits: checkbox, number, date, then text."""
    present = [v.strip() for v in values if v and v.strip()]
    if not present:
        return FieldType.TEXT
    for kind, check in ((FieldType.CHECKBOX, _is_bool), (FieldType.NUMBER, _is_number), (FieldType.DATE, _is_date)):
        if all(check(v) for v in present):
            return kind
    return FieldType.TEXT


def _fits(parse, value: str) -> bool:
    try:
        parse(value)
        return True
    except ValueError:
        return False


def _is_bool(value: str) -> bool:
    return value.casefold() in {"true", "false", "yes", "no"} and _fits(parse_bool, value)


def _is_number(value: str) -> bool:
    return _fits(parse_number, value)


def _is_date(value: str) -> bool:
    return detect_date_order([value]) is not None or _fits(_any_date, value)


def _any_date(value: str) -> None:
    from crm.imports.dates import parse_date

    parse_date(value, DateOrder.DMY)


def detect_order(mapping: Mapping, table) -> DateOrder | None:
    """The file's date order: the mapping's choice, or what its date columns show (None: undecidable)."""
    if mapping.date_order != DateOrder.AUTO:
        return mapping.date_order
    kinds = {c.name: c.kind for c in COLUMNS[mapping.entity]}
    date_columns = [s for s, t in mapping.targets().items() if kinds.get(t) in ("date", "datetime")
                    or (t.startswith(CUSTOM) and _custom_type(mapping, t) == FieldType.DATE)]
    values = [v for source in date_columns for v in table.column(source)]
    return detect_date_order(values) if values else DateOrder.ISO


def _custom_type(mapping: Mapping, target: str) -> FieldType | None:
    spec = mapping.custom_fields.get(target.removeprefix(CUSTOM))
    return spec.type if spec else None


# Saved mappings -------------------------------------------------------------------------------------------------

def save_mapping(*, session: Session, actor: Actor, name: str, mapping: Mapping) -> int:
    """Save (or overwrite) a named mapping for its entity; returns its id."""
    require(actor, "data.import", "save import mappings")
    name = " ".join((name or "").split())
    if not name or len(name) > 120:
        raise ValidationFailed("name", "a mapping needs a name of 1 to 120 characters")
    data = mapping.model_dump(mode="json")
    row = session.exec(select(SavedMapping).where(SavedMapping.entity == mapping.entity,
                                                  SavedMapping.name == name)).first()
    if row is None:
        row = SavedMapping(entity=mapping.entity, name=name, mapping=data)
        session.add(row)
        session.flush()
        audit(session, actor_id=actor.id, entity="saved_mapping", record_id=row.id, action="create",
              changes=created_fields(row), record_version=row.version)
    elif diff := apply_changes(row, {"mapping": data}):
        audit(session, actor_id=actor.id, entity="saved_mapping", record_id=row.id, action="update", changes=diff,
              record_version=row.version)
    return row.id


def list_mappings(*, session: Session, entity: str) -> list[tuple[int, str]]:
    rows = session.exec(select(SavedMapping.id, SavedMapping.name).where(SavedMapping.entity == entity)
                        .order_by(SavedMapping.name)).all()
    return [(i, n) for i, n in rows]


def load_mapping(*, session: Session, mapping_id: int) -> Mapping:
    row = session.get(SavedMapping, mapping_id)
    if row is None:
        raise NotFound(f"Saved mapping {mapping_id} does not exist")
    return Mapping.model_validate({**row.mapping, "entity": row.entity})


def existing_custom_fields(session: Session, entity: str) -> dict[str, CustomFieldDef]:
    if entity not in CUSTOM_ENTITY:
        return {}
    rows = session.exec(select(CustomFieldDef).where(CustomFieldDef.entity == CUSTOM_ENTITY[entity],
                                                     CustomFieldDef.deleted_at.is_(None))).all()
    return {r.key: r for r in rows}


def custom_field_choices(*, session: Session, actor: Actor, entity: str) -> dict[str, str]:
    """{key: label} of the entity's custom fields this actor may fill by import."""
    return {k: f.label for k, f in existing_custom_fields(session, entity).items() if actor.role in f.edit_roles}
