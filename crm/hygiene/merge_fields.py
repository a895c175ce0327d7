"""The fields of a merge: what differs between merging contacts and companies, each field's two values and
default choice, and giving the survivor the chosen values as one validated, audited edit."""
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, SQLModel, select

from crm.companies import clean_company
from crm.contacts import clean_contact
from crm.customfields import get_values, list_field_defs
from crm.errors import ValidationFailed
from crm.hygiene import merge_relations as relations
from crm.hygiene.merge_relations import Relation, json_row
from crm.imports.writing import audit_text
from crm.models import Company, CompanyInput, Contact, ContactInput, CustomFieldDef, CustomFieldValue, Entity
from crm.permissions import Actor
from crm.rows import save_record

SIDES = ("survivor", "merged")


@dataclass(frozen=True)
class Kind:
    """What differs between merging contacts and merging companies."""
    entity: Entity
    model: type[SQLModel]
    form: type[SQLModel]  # the fields a person may choose between (ContactInput / CompanyInput)
    clean: Callable[..., dict[str, Any]]
    searched: frozenset[str]
    extra: tuple[str, ...]  # chosen fields outside the form
    relations: tuple[Relation, ...]
    name: Callable[[Any], str]


KINDS = {
    "contact": Kind(Entity.CONTACT, Contact, ContactInput, clean_contact,
                    frozenset({"first_name", "last_name", "email", "phone"}), ("last_engaged_at",),
                    relations.CONTACT_RELATIONS, lambda c: f"{c.first_name} {c.last_name}".strip()),
    "company": Kind(Entity.COMPANY, Company, CompanyInput, clean_company, frozenset({"name", "domain"}), (),
                    relations.COMPANY_RELATIONS, lambda c: c.name),
}

# Defaults that are not "the survivor's value unless it is empty": consent is never inferred, a request not to be
# contacted is never lost, and engagement is the later of the two.
_PREFER_MERGED: dict[str, Callable[[Any, Any], bool]] = {
    "do_not_contact": lambda mine, theirs: bool(theirs) and not mine,
    "email_opt_in": lambda mine, theirs: bool(mine) and not theirs,
    "last_engaged_at": lambda mine, theirs: theirs is not None and (mine is None or theirs > mine),
}


@dataclass
class FieldChoice:
    field: str  # a column name, or "cf.<key>" for a custom field
    label: str
    survivor: Any
    merged: Any
    default: str  # "survivor" or "merged"
    editable: bool = True  # False: a custom field the actor's role may see but not edit; only "survivor" is allowed


def kind_of(entity: str) -> Kind:
    """The kind of record to merge, or ValidationFailed naming the entity."""
    if entity not in KINDS:
        raise ValidationFailed("entity", f"only contacts and companies can be merged, not {entity!r}")
    return KINDS[entity]


def _own_values(kind: Kind, record: Any, pair: tuple[int, int]) -> dict[str, Any]:
    """A record's choosable field values; a parent that is one of the pair disappears with the merge, so it is empty."""
    values = {name: getattr(record, name) for name in (*kind.form.model_fields, *kind.extra)}
    if values.get("parent_id") in pair:
        values["parent_id"] = None
    return values


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _default(mine: Any, theirs: Any, prefer: Callable[[Any, Any], bool] | None = None) -> str:
    """The survivor's value unless it is empty and the merged record's is not (or a field's own rule)."""
    if prefer is not None:
        return "merged" if prefer(mine, theirs) else "survivor"
    return "merged" if _empty(mine) and not _empty(theirs) else "survivor"


def field_choices(session: Session, actor: Actor, kind: Kind, survivor: Any, merged: Any) -> list[FieldChoice]:
    """Every field of both records, own and custom (those the actor may see), with the default choice."""
    pair = (survivor.id, merged.id)
    mine, theirs = _own_values(kind, survivor, pair), _own_values(kind, merged, pair)
    out = [FieldChoice(name, name.replace("_", " ").capitalize(), mine[name], theirs[name],
                       _default(mine[name], theirs[name], _PREFER_MERGED.get(name))) for name in mine]
    editable = {f.key for f in list_field_defs(session=session, actor=actor, entity=kind.entity, editable_only=True)}
    custom = [get_values(session=session, actor=actor, entity=kind.entity, record_id=r.id) for r in (survivor, merged)]
    for f in list_field_defs(session=session, actor=actor, entity=kind.entity):
        a, b = custom[0].get(f.key), custom[1].get(f.key)
        default = _default(a, b) if f.key in editable else "survivor"
        out.append(FieldChoice(f"cf.{f.key}", f.label, a, b, default, editable=f.key in editable))
    return out


def chosen_values(kind: Kind, fields: list[FieldChoice], choices: dict[str, str]) -> dict[str, Any]:
    """The surviving value of each field: the user's choice, else the default."""
    known = {f.field: f for f in fields}
    for name, side in choices.items():
        if name not in known:
            raise ValidationFailed(name, f"is not a field of a {kind.entity} you may see")
        if side not in SIDES:
            raise ValidationFailed(name, f"choose 'survivor' or 'merged', not {side!r}")
    return {name: getattr(f, choices.get(name, f.default)) for name, f in known.items()}


def custom_rows(session: Session, kind: Kind, record_id: int, keys: list[str]) -> list[dict[str, Any]]:
    """The record's stored custom values for these field keys, whole rows."""
    table = CustomFieldValue.__table__
    stmt = (select(table).join(CustomFieldDef, CustomFieldDef.id == table.c.field_id)
            .where(CustomFieldDef.entity == kind.entity, CustomFieldDef.key.in_(keys or [""]),
                   table.c.record_id == record_id).order_by(table.c.id))
    return [dict(row) for row in session.execute(stmt).mappings()]


def _custom_changes(session: Session, actor: Actor, kind: Kind, survivor_id: int,
                    chosen: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The custom values the survivor takes from the merged record, and what an undo needs to put them back: the
    rows they replace, whole, and the audit changes."""
    current = get_values(session=session, actor=actor, entity=kind.entity, record_id=survivor_id)
    custom = {name[3:]: value for name, value in chosen.items()
              if name.startswith("cf.") and value != current.get(name[3:])}
    rows = custom_rows(session, kind, survivor_id, list(custom))
    return custom, {"rows": [json_row(row) for row in rows], "keys": sorted(custom),
                    "changes": {f"cf.{k}": [audit_text(current.get(k)), audit_text(v)] for k, v in custom.items()}}


def apply_fields(session: Session, actor: Actor, kind: Kind, survivor: Any, chosen: dict[str, Any],
                 context: str) -> tuple[list[str], dict[str, Any]]:
    """Give the survivor the chosen values, validated as an edit would be, as one audited edit; returns the changed
    fields and what an undo needs to restore its custom values."""
    form = kind.form(**{name: chosen[name] for name in kind.form.model_fields})
    values = {**kind.clean(session, form), **{name: chosen[name] for name in kind.extra}}
    custom, before = _custom_changes(session, actor, kind, survivor.id, chosen)
    old = {name: getattr(survivor, name) for name in values}
    save_record(session, actor, survivor, values, entity=kind.entity, custom=custom or None,
                searched=set(kind.searched), context=context)
    changed = [name for name in (*kind.form.model_fields, *kind.extra) if old[name] != getattr(survivor, name)]
    return changed + [f"cf.{key}" for key in sorted(custom)], before
