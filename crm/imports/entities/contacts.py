"""Contacts: validated by crm.contacts.clean_contact, upserted by external id, then email."""
from typing import Any

from sqlalchemy import select

from crm.contacts import clean_contact
from crm.imports.context import Context, Row
from crm.imports.entities.base import Importer
from crm.imports.entities.tagging import Tagging
from crm.imports.values import normalize_email_cached
from crm.imports.writing import Writer
from crm.models import Contact, ContactInput
from crm.search import contact_tokens

_INPUT = tuple(ContactInput.model_fields)
# model_construct computes missing defaults slowly (pydantic inspects each default factory); give it every field.
_DEFAULTS = {name: info.get_default(call_default_factory=True) for name, info in ContactInput.model_fields.items()}


class ContactImporter(Importer):
    entity, record, model, search = "contacts", "contact", Contact, "contact"

    def __init__(self):
        self.tags = Tagging("contact")

    def keys(self, ctx: Context, row: Row) -> list[tuple[str, str]]:
        keys = super().keys(ctx, row)
        if email := row.values.get("email"):
            # Normalised here, once: the same value is the upsert key and the stored email.
            row.values["email"] = normalize_email_cached(email, row=row.number)
            keys.append(("email", row.values["email"]))
        return keys

    def match(self, ctx: Context, wanted: dict[str, set[str]]) -> dict[tuple[str, str], int]:
        found = super().match(ctx, wanted)
        emails = sorted(wanted.get("email", ()))
        for lo in range(0, len(emails), 500):
            stmt = select(Contact.id, Contact.email).where(Contact.email.in_(emails[lo:lo + 500]),
                                                           Contact.deleted_at.is_(None)).order_by(Contact.id)
            for record_id, email in ctx.session.execute(stmt):
                found.setdefault(("email", email), record_id)
        return found

    def build(self, ctx: Context, row: Row) -> dict[str, Any]:
        given = row.values
        current = row.existing or {}
        fields = self.merged(row, _INPUT, _DEFAULTS)
        # The email was validated with the keys; references were resolved to ids by the row parser.
        checked = ContactInput.model_construct(**{**fields, "email": None, "company_id": None, "owner_id": None})
        values = clean_contact(ctx.session, checked, row=row.number, phones=ctx.phones)
        values["email"] = fields.get("email")
        values["company_id"] = given.get("company", current.get("company_id"))
        values["owner_id"] = given.get("owner", current.get("owner_id"))
        row.extra["dependants_changed"] = self.tags.resolve(ctx, row)
        return values

    def search_tokens(self, values: dict[str, Any]) -> set[str]:
        return contact_tokens(values["first_name"], values["last_name"], values["email"], values["phone"])

    def label(self, values: dict[str, Any]) -> str:
        name = f"{values.get('first_name') or ''} {values.get('last_name') or ''}".strip()
        return f"{name} <{values['email']}>" if values.get("email") else name

    def register(self, ctx: Context, row: Row) -> None:
        ctx.lookups.contacts.add(row.record_id, self.label(row.final), email=row.final.get("email"),
                                 external_id=row.final.get("external_id"))

    def dependants(self, ctx: Context, writer: Writer, created: list[Row], updated: list[Row]) -> None:
        self.tags.write(ctx, writer, created + updated)

