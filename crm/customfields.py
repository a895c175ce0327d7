"""Custom fields: admin-defined, typed, validated, with per-role view and edit rights."""
import re
from datetime import date
from typing import Any

from sqlmodel import Session, select

from crm.audit import apply_changes, audit, check_version, created_fields, load_for_update
from crm.clock import utcnow
from crm.errors import PermissionDenied, ValidationFailed
from crm.models import CustomFieldDef, CustomFieldDefBase, CustomFieldDefView, CustomFieldValue, Entity, FieldType
from crm.permissions import Actor, require

_COLUMN = {FieldType.TEXT: "value_text", FieldType.DROPDOWN: "value_text", FieldType.NUMBER: "value_number",
           FieldType.CHECKBOX: "value_bool", FieldType.DATE: "value_date"}
_TRUE, _FALSE = {"true", "yes", "y", "1", "on", "x"}, {"false", "no", "n", "0", "off", ""}


def _view(field: CustomFieldDef) -> CustomFieldDefView:
    return CustomFieldDefView.model_validate(field, from_attributes=True)


def list_field_defs(*, session: Session, actor: Actor, entity: Entity, editable_only: bool = False) -> list[CustomFieldDefView]:
    """The active fields of an entity that this actor's role may see (or edit)."""
    rows = session.exec(select(CustomFieldDef).where(CustomFieldDef.entity == entity, CustomFieldDef.deleted_at.is_(None))
                        .order_by(CustomFieldDef.position, CustomFieldDef.id)).all()
    key = "edit_roles" if editable_only else "view_roles"
    return [_view(f) for f in rows if actor.role in getattr(f, key)]


def all_field_defs(*, session: Session, actor: Actor, entity: Entity) -> list[CustomFieldDefView]:
    """Every active definition of an entity, whoever may see its values: what an admin configures."""
    require(actor, "admin.configure", "configure custom fields")
    rows = session.exec(select(CustomFieldDef).where(CustomFieldDef.entity == entity, CustomFieldDef.deleted_at.is_(None))
                        .order_by(CustomFieldDef.position, CustomFieldDef.id)).all()
    return [_view(f) for f in rows]


def _check_definition(data: CustomFieldDefBase) -> None:
    if data.regex:
        if data.field_type != FieldType.TEXT:
            raise ValidationFailed("regex", "a pattern only applies to text fields")
        try:
            re.compile(data.regex)
        except re.error as exc:
            raise ValidationFailed("regex", f"not a valid regular expression: {exc}") from None
    if (data.min_value is not None or data.max_value is not None) and data.field_type != FieldType.NUMBER:
        raise ValidationFailed("min_value", "minimum and maximum only apply to number fields")
    if data.min_value is not None and data.max_value is not None and data.min_value > data.max_value:
        raise ValidationFailed("max_value", "must not be below the minimum")
    if data.field_type == FieldType.DROPDOWN:
        options = [o.strip() for o in data.options if o.strip()]
        if not options or len(set(options)) != len(options):
            raise ValidationFailed("options", "a dropdown needs at least one option, each different")
    elif data.options:
        raise ValidationFailed("options", "options only apply to dropdown fields")
    if not set(data.edit_roles) <= set(data.view_roles):
        raise ValidationFailed("edit_roles", "a role that may edit a field must also be allowed to view it")


def _definition_values(data: CustomFieldDefBase) -> dict[str, Any]:
    values = data.model_dump()
    values["options"] = [o.strip() for o in data.options if o.strip()]
    values["view_roles"] = [str(r) for r in data.view_roles]
    values["edit_roles"] = [str(r) for r in data.edit_roles]
    values["entity"], values["field_type"] = str(data.entity), str(data.field_type)
    return values


def create_field_def(*, session: Session, actor: Actor, data: CustomFieldDefBase) -> CustomFieldDefView:
    require(actor, "admin.configure", "define custom fields")
    _check_definition(data)
    clash = session.exec(select(CustomFieldDef).where(CustomFieldDef.entity == data.entity,
                                                      CustomFieldDef.key == data.key)).first()
    if clash:
        raise ValidationFailed("key", f"{data.entity} already has a field with the key {data.key!r}")
    field = CustomFieldDef(**_definition_values(data))
    session.add(field)
    session.flush()
    audit(session, actor_id=actor.id, entity="custom_field_def", record_id=field.id, action="create",
          changes=created_fields(field), record_version=field.version)
    return _view(field)


def update_field_def(*, session: Session, actor: Actor, field_id: int, data: CustomFieldDefBase,
                     seen_version: int) -> CustomFieldDefView:
    """Change a definition; its entity, key and type are fixed once values may exist."""
    require(actor, "admin.configure", "edit custom fields")
    field = load_for_update(session, CustomFieldDef, field_id, label="Custom field")
    check_version(session, entity="custom_field_def", record=field, seen_version=seen_version)
    if (data.entity, data.key, data.field_type) != (field.entity, field.key, field.field_type):
        raise ValidationFailed("field_type", "entity, key and type cannot change; create a new field instead")
    _check_definition(data)
    diff = apply_changes(field, _definition_values(data))
    if diff:
        audit(session, actor_id=actor.id, entity="custom_field_def", record_id=field.id, action="update",
              changes=diff, record_version=field.version)
    return _view(field)


def archive_field_def(*, session: Session, actor: Actor, field_id: int, seen_version: int) -> None:
    """Hide a field from forms; its stored values stay, so archiving is reversible."""
    require(actor, "admin.configure", "archive custom fields")
    field = load_for_update(session, CustomFieldDef, field_id, label="Custom field")
    check_version(session, entity="custom_field_def", record=field, seen_version=seen_version)
    diff = apply_changes(field, {"deleted_at": utcnow()})
    audit(session, actor_id=actor.id, entity="custom_field_def", record_id=field.id, action="delete",
          changes=diff, record_version=field.version)


def parse_value(field: CustomFieldDefView, raw: Any, *, row: int | None = None) -> Any:
    """Turn user or file input into the field's type, enforcing required, pattern, range and options."""
    name = field.key
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if field.required:
            raise ValidationFailed(name, "is required", row=row)
        return None
    kind = FieldType(field.field_type)
    if kind == FieldType.NUMBER:
        return _parse_number(field, raw, row)
    if kind == FieldType.CHECKBOX:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text not in _TRUE | _FALSE:
            raise ValidationFailed(name, f"{raw!r} is not yes/no", row=row)
        return text in _TRUE
    if kind == FieldType.DATE:
        if isinstance(raw, date):
            return raw
        try:
            return date.fromisoformat(str(raw).strip())
        except ValueError:
            raise ValidationFailed(name, f"{raw!r} is not a date (YYYY-MM-DD)", row=row) from None
    text = str(raw).strip()
    if len(text) > 2000:
        raise ValidationFailed(name, "is longer than 2000 characters", row=row)
    if kind == FieldType.DROPDOWN and text not in field.options:
        raise ValidationFailed(name, f"{text!r} is not one of: {', '.join(field.options)}", row=row)
    if field.regex and not re.fullmatch(field.regex, text):
        raise ValidationFailed(name, f"{text!r} does not match the required pattern {field.regex}", row=row)
    return text


def _parse_number(field: CustomFieldDefView, raw: Any, row: int | None) -> float:
    try:
        value = float(str(raw).strip().replace(",", "")) if not isinstance(raw, (int, float)) else float(raw)
    except ValueError:
        raise ValidationFailed(field.key, f"{raw!r} is not a number", row=row) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValidationFailed(field.key, "must be a finite number", row=row)
    if field.min_value is not None and value < field.min_value:
        raise ValidationFailed(field.key, f"must be at least {field.min_value:g}", row=row)
    if field.max_value is not None and value > field.max_value:
        raise ValidationFailed(field.key, f"must be at most {field.max_value:g}", row=row)
    return value


def get_values(*, session: Session, actor: Actor, entity: Entity, record_id: int) -> dict[str, Any]:
    """{key: value} for the fields this actor may see on one record."""
    fields = {f.id: f for f in list_field_defs(session=session, actor=actor, entity=entity)}
    rows = session.exec(select(CustomFieldValue).where(CustomFieldValue.record_id == record_id,
                                                       CustomFieldValue.field_id.in_(list(fields) or [-1]))).all()
    return {fields[r.field_id].key: getattr(r, _COLUMN[FieldType(fields[r.field_id].field_type)]) for r in rows}


def set_values(*, session: Session, actor: Actor, entity: Entity, record_id: int, values: dict[str, Any],
               context: str | None = None, check_required: bool = False,
               record_version: int | None = None) -> dict[str, tuple[Any, Any]]:
    """Validate and store custom values on a record the caller has already checked the actor may edit."""
    all_fields = {f.key: _view(f) for f in session.exec(select(CustomFieldDef).where(
        CustomFieldDef.entity == entity, CustomFieldDef.deleted_at.is_(None))).all()}
    editable = {key for key, f in all_fields.items() if actor.role in f.edit_roles}
    for key in values:
        if key not in all_fields:
            raise ValidationFailed(key, f"{entity} has no custom field {key!r}")
        if key not in editable:
            raise PermissionDenied(f"Your role ({actor.role}) may not edit the field {all_fields[key].label!r}.")
    parsed = {key: parse_value(all_fields[key], raw) for key, raw in values.items()}
    if check_required:
        for field in all_fields.values():
            if field.required and field.key not in parsed and actor.role in field.edit_roles:
                raise ValidationFailed(field.key, "is required")
    diff = {}
    for key, value in parsed.items():
        old = _store(session, all_fields[key], record_id, value)
        if old != value:
            diff[f"cf.{key}"] = (old, value)
    if diff:
        audit(session, actor_id=actor.id, entity=str(entity), record_id=record_id, action="update", changes=diff,
              context=context, record_version=record_version)
    return diff


def _store(session: Session, field: CustomFieldDefView, record_id: int, value: Any) -> Any:
    column = _COLUMN[FieldType(field.field_type)]
    row = session.exec(select(CustomFieldValue).where(CustomFieldValue.field_id == field.id,
                                                      CustomFieldValue.record_id == record_id)).first()
    old = getattr(row, column) if row else None
    if value is None:
        if row:
            session.delete(row)
        return old
    if row is None:
        session.add(CustomFieldValue(field_id=field.id, record_id=record_id, **{column: value}))
    elif old != value:
        setattr(row, column, value)
        row.version += 1
    return old
