"""Products: upserted by name (ignoring case and spaces), then SKU."""
from typing import Any

from crm.errors import ValidationFailed
from crm.imports.context import Context, Row
from crm.imports.entities.base import Importer, merged
from crm.imports.values import fold
from crm.models import Product

_FIELDS = ("name", "sku", "series", "list_price", "active")


class ProductImporter(Importer):
    entity, record, model = "products", "product", Product
    required = ("name",)

    def keys(self, ctx: Context, row: Row) -> list[tuple[str, str]]:
        keys = [("name", fold(row.values["name"]))] if row.values.get("name") else []
        if sku := row.values.get("sku"):
            keys.append(("sku", fold(sku)))
        return keys

    def match(self, ctx: Context, wanted: dict[str, set[str]]) -> dict[tuple[str, str], int]:
        found = {}
        for kind, values in wanted.items():
            for value in values:
                if ids := ctx.lookups.products.find(kind, value):
                    found[(kind, value)] = min(ids)  # names are unique; SKUs should be
        return found

    def build(self, ctx: Context, row: Row) -> dict[str, Any]:
        values = merged(row, _FIELDS)
        if not values["name"]:
            raise ValidationFailed("name", "is required")
        if values["list_price"] is None:
            values["list_price"] = 0.0
        if values["active"] is None:
            values["active"] = True
        return values

    def register(self, ctx: Context, row: Row) -> None:
        f = row.final
        ctx.lookups.add_product(row.record_id, f["name"], f.get("sku"), f["list_price"])
