"""Orders (with one product line per row), activities and tickets: upserted by external id."""
from typing import Any

from crm.errors import ValidationFailed
from crm.imports.context import Context, Row
from crm.imports.entities.base import Importer
from crm.imports.entities.deals import DealImporter
from crm.imports.writing import Writer
from crm.models import Activity, Order, OrderLine, Ticket, TicketStatus

_REFS = {"owner": "owner_id", "assignee": "assignee_id", "company": "company_id", "contact": "contact_id",
         "deal": "deal_id"}


def _values(row: Row, fields: tuple[str, ...]) -> dict[str, Any]:
    """Stored values overlaid with the row's cells, references renamed to their id columns."""
    old = row.existing or {}
    values = {f: old.get(f) for f in fields}
    for name, value in row.values.items():
        column = _REFS.get(name, name)
        if column in values:
            values[column] = value
    return values


class OrderImporter(Importer):
    entity, record, model = "orders", "order", Order
    _FIELDS = ("contact_id", "company_id", "deal_id", "ordered_at", "status", "total", "currency", "external_id")

    def __init__(self):
        self.lines: dict[int, list[dict]] = {}

    def load_related(self, ctx: Context, record_ids: list[int]) -> None:
        from sqlalchemy import select

        for lo in range(0, len(record_ids), 500):
            stmt = select(OrderLine.__table__).where(OrderLine.order_id.in_(record_ids[lo:lo + 500]))
            for r in ctx.session.execute(stmt).mappings():
                self.lines.setdefault(r["order_id"], []).append(dict(r))

    def build(self, ctx: Context, row: Row) -> dict[str, Any]:
        values = _values(row, self._FIELDS)
        line = self._line(ctx, row)
        if values["total"] is None:
            values["total"] = line["quantity"] * line["unit_price"] if line else 0.0
        values["status"] = values["status"] or "completed"
        values["currency"] = DealImporter._currency(values["currency"])
        row.extra["line"] = line
        row.extra["dependants_changed"] = bool(row.existing and line and not self._has_line(row.existing["id"], line))
        return values

    def _line(self, ctx: Context, row: Row) -> dict | None:
        product = row.values.get("product")
        if product is None:
            if "quantity" in row.values or "unit_price" in row.values:
                raise ValidationFailed("product", "is required when a quantity or unit price is given")
            return None
        quantity = row.values.get("quantity", 1.0)
        if quantity <= 0:
            raise ValidationFailed("quantity", "must be above 0")
        return {"product_id": product, "quantity": quantity,
                "unit_price": row.values.get("unit_price", ctx.lookups.product_price.get(product, 0.0))}

    def _has_line(self, order_id: int, line: dict) -> bool:
        return any(all(existing[k] == v for k, v in line.items()) for existing in self.lines.get(order_id, ()))

    def label(self, values: dict[str, Any]) -> str:
        ext = f" {values['external_id']}" if values.get("external_id") else ""
        return f"order{ext} ({values['total']:.2f} {values['currency']})"

    def dependants(self, ctx: Context, writer: Writer, created: list[Row], updated: list[Row]) -> None:
        lines = [{"order_id": r.record_id, **r.extra["line"]} for r in created + updated
                 if r.extra.get("line") and not (r.existing and self._has_line(r.record_id, r.extra["line"]))]
        writer.insert(OrderLine, lines, entity="order_line", audited=False)


class ActivityImporter(Importer):
    entity, record, model = "activities", "activity", Activity
    required = ("kind", "subject")
    _FIELDS = ("kind", "subject", "body", "contact_id", "company_id", "deal_id", "owner_id", "assignee_id",
               "occurred_at", "due_at", "done_at", "external_id")

    def build(self, ctx: Context, row: Row) -> dict[str, Any]:
        values = _values(row, self._FIELDS)
        for required in ("kind", "subject"):
            if not values[required]:
                raise ValidationFailed(required, "is required")
        values["kind"] = str(values["kind"])
        if values["done_at"] and values["kind"] != "task":
            raise ValidationFailed("done_at", "only tasks are done; give a call or meeting an occurred_at")
        return values


class TicketImporter(Importer):
    entity, record, model = "tickets", "ticket", Ticket
    required = ("subject", "opened_at")
    _FIELDS = ("subject", "contact_id", "company_id", "owner_id", "channel", "status", "priority", "opened_at",
               "resolved_at", "external_id")

    def build(self, ctx: Context, row: Row) -> dict[str, Any]:
        values = _values(row, self._FIELDS)
        for required in ("subject", "opened_at"):
            if not values[required]:
                raise ValidationFailed(required, "is required")
        values["status"] = str(values["status"] or TicketStatus.OPEN)
        values["channel"] = values["channel"] or "email"
        values["priority"] = values["priority"] or "normal"
        if values["resolved_at"] and values["resolved_at"] < values["opened_at"]:
            raise ValidationFailed("resolved_at", "is before the ticket was opened")
        if values["resolved_at"] and values["status"] != TicketStatus.RESOLVED:
            raise ValidationFailed("resolved_at", f"a {values['status']} ticket is not resolved yet")
        return values
