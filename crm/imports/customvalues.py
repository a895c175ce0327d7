"""Custom field values in imports: the definitions a mapping uses or creates, and their values, written in bulk."""
from typing import Any

from sqlalchemy import select

from crm.errors import PermissionDenied, ValidationFailed
from crm.imports.context import Context, Row
from crm.imports.mapping import CUSTOM, CUSTOM_ENTITY, CustomFieldSpec, Mapping, existing_custom_fields, infer_type
from crm.imports.writing import Writer
from crm.models import CustomFieldDef, CustomFieldDefView, CustomFieldValue, FieldType, Role

_COLUMN = {FieldType.TEXT: "value_text", FieldType.DROPDOWN: "value_text", FieldType.NUMBER: "value_number",
           FieldType.CHECKBOX: "value_bool", FieldType.DATE: "value_date"}


def prepare_custom_fields(ctx: Context, writer: Writer, table) -> None:
    """Resolve every custom:key target to a definition: an existing field the actor may edit, or a new one.

    New fields are configuration, so creating them needs admin.configure (the CLI operator may). Their type
    comes from the mapping's custom_fields, or is inferred from the column's values.
    """
    mapping: Mapping = ctx.mapping
    targets = {t.removeprefix(CUSTOM): s for s, t in mapping.targets().items() if t.startswith(CUSTOM)}
    if not targets:
        return
    existing = existing_custom_fields(ctx.session, mapping.entity)
    for key, source in targets.items():
        if key in existing:
            field = CustomFieldDefView.model_validate(existing[key], from_attributes=True)
            if ctx.actor is not None and ctx.actor.role not in field.edit_roles:
                raise PermissionDenied(f"Your role ({ctx.actor.role}) may not edit the field {field.label!r} "
                                       f"(column {source!r}).")
            ctx.custom_fields[key] = field
            continue
        if ctx.actor is not None and not ctx.actor.can("admin.configure"):
            raise PermissionDenied(f"Column {source!r} would create the custom field {key!r}; only admins may "
                                   "create custom fields. Map it to an existing field or ignore it.")
        spec = mapping.custom_fields.get(key) or CustomFieldSpec(label=source[:120],
                                                                 type=infer_type(table.column(source)))
        ctx.custom_fields[key] = _create(ctx, writer, key, spec)


def _create(ctx: Context, writer: Writer, key: str, spec: CustomFieldSpec) -> CustomFieldDefView:
    if not key[:1].isalpha() or not key.replace("_", "").isalnum() or key != key.lower() or len(key) > 60:
        raise ValidationFailed("mapping", f"{key!r} is not a valid custom field key "
                                          "(a-z, 0-9, _; starting with a letter)")
    options = [o.strip() for o in spec.options if o.strip()]
    if spec.type == FieldType.DROPDOWN and not options:
        raise ValidationFailed("mapping", f"the dropdown field {key!r} needs options")
    values = {"entity": CUSTOM_ENTITY[ctx.mapping.entity], "key": key, "label": spec.label,
              "field_type": str(spec.type), "options": options, "view_roles": [str(r) for r in Role],
              "edit_roles": [str(Role.ADMIN), str(Role.MANAGER), str(Role.REP)], "required": False, "position": 0}
    [field_id] = writer.insert(CustomFieldDef, [values], entity="custom_field_def")
    ctx.also_created["custom_field_def"] += 1
    return CustomFieldDefView(id=field_id, version=1, **{**values, "entity": values["entity"]})


def current_values(ctx: Context, record_ids: list[int]) -> dict[int, dict[str, Any]]:
    """{record id: {key: value}} of the mapped custom fields, plus the stored rows under "_rows"."""
    fields = {f.id: f for f in ctx.custom_fields.values() if f.id > 0}
    out: dict[int, dict[str, Any]] = {}
    if not fields or not record_ids:
        return out
    table = CustomFieldValue.__table__
    for lo in range(0, len(record_ids), 500):
        stmt = select(table).where(table.c.field_id.in_(list(fields)), table.c.record_id.in_(record_ids[lo:lo + 500]))
        for r in ctx.session.execute(stmt).mappings():
            field = fields[r["field_id"]]
            values = out.setdefault(r["record_id"], {"_rows": {}})
            values[field.key] = r[_COLUMN[FieldType(field.field_type)]]
            values["_rows"][field.key] = dict(r)
    return out


def write_custom(ctx: Context, writer: Writer, entity: str, creates: list[Row], updates: list[Row],
                 current: dict[int, dict[str, Any]]) -> None:
    """Insert the values of new records; insert or update the changed values of updated ones, audited per field."""
    inserts, changes = [], []
    for row in creates:
        for key, value in row.custom.items():
            if value is not None:
                inserts.append(_value_row(ctx, key, row.record_id, value))
    for row in updates:
        stored = current.get(row.record_id, {}).get("_rows", {})
        version = row.existing["version"] + 1
        for key, value in row.extra.get("custom_changes", {}).items():
            column = _COLUMN[FieldType(ctx.custom_fields[key].field_type)]
            writer.audit_field(entity, row.record_id, f"cf.{key}", stored.get(key, {}).get(column), value, version)
            if key in stored:
                changes.append((stored[key], {column: value}, stored[key]["version"] + 1))
            else:
                inserts.append(_value_row(ctx, key, row.record_id, value))
    writer.insert(CustomFieldValue, inserts, entity="custom_field_value", audited=False)
    writer.update(CustomFieldValue, "custom_field_value", changes, audited=False)


def _value_row(ctx: Context, key: str, record_id: int, value: Any) -> dict:
    field = ctx.custom_fields[key]
    return {"field_id": field.id, "record_id": record_id, _COLUMN[FieldType(field.field_type)]: value}
