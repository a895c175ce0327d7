"""Company use cases: create, read, edit, delete and restore, with validation, rights, version checks and audit.

Companies follow the contacts rights: whoever may edit contacts owned by a company's owner may edit the company.
"""
from typing import Any

from sqlmodel import Session, select

from crm.audit import check_version, load_for_update
from crm.customfields import get_values
from crm.errors import NotFound, ValidationFailed
from crm.models import Company, CompanyInput, CompanyView, Entity, User
from crm.permissions import Actor, require, require_edit
from crm.rows import insert_record, save_record, set_deleted
from crm.search import matching_ids, parse_query
from crm.text import normalize_name
from crm.validation import normalize_country, normalize_domain, require_text


def _view(company: Company) -> CompanyView:
    return CompanyView.model_validate(company, from_attributes=True)


def clean_company(session: Session, data: CompanyInput, *, row: int | None = None) -> dict[str, Any]:
    """Validate every field and return the column values to store. Raises ValidationFailed naming the field."""
    name = require_text(data.name, field="name", max_length=200, row=row)
    if data.employees is not None and data.employees < 0:
        raise ValidationFailed("employees", "cannot be negative", row=row)
    if data.annual_revenue is not None and not data.annual_revenue >= 0:  # also rejects NaN
        raise ValidationFailed("annual_revenue", "cannot be negative", row=row)
    owner = session.get(User, data.owner_id) if data.owner_id is not None else None
    if data.owner_id is not None and (owner is None or not owner.active):
        raise ValidationFailed("owner_id", f"user {data.owner_id} is not an active user", row=row)
    if data.parent_id is not None and session.get(Company, data.parent_id) is None:
        raise ValidationFailed("parent_id", f"company {data.parent_id} does not exist", row=row)
    return {
        "name": name, "name_key": (normalize_name(name) or name.casefold())[:200], "domain": normalize_domain(data.domain, row=row),
        "industry": require_text(data.industry, field="industry", max_length=100, required=False, row=row),
        "employees": data.employees, "annual_revenue": data.annual_revenue,
        "country": normalize_country(data.country, row=row),
        "city": require_text(data.city, field="city", max_length=120, required=False, row=row),
        "parent_id": data.parent_id, "owner_id": data.owner_id,
        "external_id": require_text(data.external_id, field="external_id", max_length=100, required=False, row=row),
    }


def _check_parent(session: Session, company_id: int, parent_id: int | None) -> None:
    """A company cannot be its own ancestor."""
    seen = {company_id}
    while parent_id is not None:
        if parent_id in seen:
            raise ValidationFailed("parent_id", "that would make the company its own parent")
        seen.add(parent_id)
        parent_id = session.exec(select(Company.parent_id).where(Company.id == parent_id)).first()


def create_company(*, session: Session, actor: Actor, data: CompanyInput,
                   custom: dict[str, Any] | None = None) -> CompanyView:
    if data.owner_id is None:
        data = data.model_copy(update={"owner_id": actor.id})
    require_edit(session, actor, "contacts", data.owner_id, "a company owned by that user")
    company = insert_record(session, actor, Company(**clean_company(session, data)), entity=Entity.COMPANY,
                            custom=custom)
    return _view(company)


def get_company(*, session: Session, actor: Actor, company_id: int, include_deleted: bool = False) -> CompanyView:
    """Anyone who may read contacts may read companies: a company is shared context, not someone's record."""
    company = session.get(Company, company_id)
    if company is None or (company.deleted_at is not None and not include_deleted):
        raise NotFound(f"Company {company_id} does not exist (or was deleted)")
    if not any(actor.can(f"contacts.{v}") for v in ("read_all", "read_team", "read_own", "edit_own")):
        require(actor, "contacts.read_all", "see companies")
    return _view(company)


def update_company(*, session: Session, actor: Actor, company_id: int, data: CompanyInput, seen_version: int,
                   custom: dict[str, Any] | None = None) -> CompanyView:
    """Save the fields set in `data`, edited on version `seen_version`; a newer stored version raises EditConflict."""
    company = load_for_update(session, Company, company_id, label="Company")
    require_edit(session, actor, "contacts", company.owner_id, "this company")
    check_version(session, entity="company", record=company, seen_version=seen_version)
    current = {name: getattr(company, name) for name in CompanyInput.model_fields}
    values = clean_company(session, CompanyInput(**{**current, **data.model_dump(exclude_unset=True)}))
    if values["owner_id"] != company.owner_id:
        require_edit(session, actor, "contacts", values["owner_id"], "a company owned by that user")
    _check_parent(session, company.id, values["parent_id"])
    save_record(session, actor, company, values, entity=Entity.COMPANY, custom=custom, searched={"name", "domain"})
    return _view(company)


def delete_company(*, session: Session, actor: Actor, company_id: int, seen_version: int) -> CompanyView:
    """Soft delete: the company leaves lists and pickers; its contacts and deals keep the link, and restore undoes it."""
    return _view(set_deleted(session, actor, Company, company_id, deleted=True, seen_version=seen_version,
                             entity="company"))


def restore_company(*, session: Session, actor: Actor, company_id: int, seen_version: int) -> CompanyView:
    return _view(set_deleted(session, actor, Company, company_id, deleted=False, seen_version=seen_version,
                             entity="company"))


def company_custom_values(*, session: Session, actor: Actor, company_id: int) -> dict[str, Any]:
    get_company(session=session, actor=actor, company_id=company_id, include_deleted=True)
    return get_values(session=session, actor=actor, entity=Entity.COMPANY, record_id=company_id)


def company_choices(*, session: Session, query: str = "", limit: int = 50) -> list[tuple[int, str]]:
    """(id, name) of live companies whose name starts with the query's words, for pickers in forms."""
    stmt = select(Company.id, Company.name).where(Company.deleted_at.is_(None))
    parsed = parse_query(query)
    if parsed:
        stmt = stmt.where(Company.id.in_(matching_ids("company", parsed)))
    return [(i, n) for i, n in session.exec(stmt.order_by(Company.name_key).limit(limit)).all()]
