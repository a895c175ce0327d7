"""Companies: validated by crm.companies.clean_company, upserted by external id, then domain (then name if asked)."""
from typing import Any

from sqlalchemy import select

from crm.companies import clean_company
from crm.errors import ValidationFailed
from crm.imports.context import Context, Row
from crm.imports.entities.base import Importer
from crm.imports.entities.tagging import Tagging
from crm.imports.values import closest, fold
from crm.imports.writing import Writer
from crm.models import Company, CompanyInput
from crm.search import company_tokens
from crm.validation import normalize_domain

_INPUT = tuple(CompanyInput.model_fields)
_DEFAULTS = {name: info.get_default(call_default_factory=True) for name, info in CompanyInput.model_fields.items()}
# Industries every CRM knows, on top of those its companies already use. A new industry close to a known one
# ("technolgy") is taken for a misspelling and rejected with a suggestion; a new one unlike any is accepted.
INDUSTRIES = (
    "Agriculture", "Automotive", "Banking", "Construction", "Consulting", "Education", "Employment", "Energy",
    "Entertainment", "Finance", "Financial services", "Food and beverage", "Government", "Hardware", "Healthcare",
    "Hospitality", "Insurance", "Legal", "Logistics", "Manufacturing", "Marketing", "Media", "Medical", "Non-profit",
    "Pharmaceuticals", "Real estate", "Retail", "Services", "Software", "Technology", "Telecommunications",
    "Transportation", "Utilities", "Wholesale",
)


class CompanyImporter(Importer):
    entity, record, model, search = "companies", "company", Company, "company"
    required = ("name",)
    self_reference = "company"

    def __init__(self):
        self.tags = Tagging("company")
        self.industries: dict[str, str] = {}

    def prepare(self, ctx: Context, writer: Writer) -> None:
        stored = ctx.session.execute(select(Company.industry).where(Company.industry.is_not(None)).distinct())
        self.industries = {fold(i): i for i in (*INDUSTRIES, *stored.scalars())}

    def pending_keys(self, ctx: Context, row: Row) -> list[str]:
        return [fold(row.cells[s]) for s in map(ctx.mapping.source_of, ("name", "external_id", "domain"))
                if s and row.cells.get(s)]

    def keys(self, ctx: Context, row: Row) -> list[tuple[str, str]]:
        keys = super().keys(ctx, row)
        if domain := row.values.get("domain"):
            row.values["domain"] = normalize_domain(domain, row=row.number)
            keys.append(("domain", row.values["domain"]))
        if ctx.option("match_company_by_name") and (name := row.values.get("name")):
            if len(ctx.lookups.companies.find("name", name)) > 1:
                raise ValidationFailed("name", f"several companies are called {name!r}; add an external id or a "
                                               "domain to say which one")
            keys.append(("name", fold(name)))
        return keys

    def match(self, ctx: Context, wanted: dict[str, set[str]]) -> dict[tuple[str, str], int]:
        found = {}
        for kind, values in wanted.items():
            for value in values:
                ids = ctx.lookups.companies.find(kind, value)
                if len(ids) == 1:
                    found[(kind, value)] = next(iter(ids))
        return found

    def build(self, ctx: Context, row: Row) -> dict[str, Any]:
        given = row.values
        current = row.existing or {}
        fields = self.merged(row, _INPUT, _DEFAULTS)
        values = clean_company(ctx.session, CompanyInput.model_construct(
            **{**fields, "parent_id": None, "owner_id": None}), row=row.number)
        values["owner_id"] = given.get("owner", current.get("owner_id"))
        values["parent_id"] = given.get("parent", current.get("parent_id"))
        if row.existing and values["parent_id"] is not None:
            self._check_parent(ctx, row.existing["id"], values["parent_id"])
        row.extra["dependants_changed"] = self.tags.resolve(ctx, row)
        return values

    def parse_cell(self, ctx: Context, column, text: str) -> Any:
        return self._industry(text) if column.kind == "industry" else text

    def _industry(self, text: str) -> str:
        known = self.industries.get(fold(text))
        if known is not None:
            return known
        near = closest(text, tuple(sorted(self.industries.values())))
        if near:
            raise ValueError(f"unknown industry {text!r} (did you mean {' or '.join(map(repr, near))}?); "
                             "a new industry must not look like a misspelt known one")
        self.industries[fold(text)] = text  # a genuinely new industry
        return text

    def _check_parent(self, ctx: Context, company_id: int, parent_id: int) -> None:
        seen = {company_id}
        while parent_id is not None and parent_id > 0:
            if parent_id in seen:
                raise ValidationFailed("parent", "that would make the company its own parent")
            seen.add(parent_id)
            parent_id = ctx.session.execute(select(Company.parent_id).where(Company.id == parent_id)).scalar()

    def search_tokens(self, values: dict[str, Any]) -> set[str]:
        return company_tokens(values["name"], values["domain"])

    def register(self, ctx: Context, row: Row) -> None:
        f = row.final
        ctx.lookups.companies.add(row.record_id, f["name"], name=f["name"], domain=f.get("domain"),
                                  external_id=f.get("external_id"))

    def dependants(self, ctx: Context, writer: Writer, created: list[Row], updated: list[Row]) -> None:
        self.tags.write(ctx, writer, created + updated)
