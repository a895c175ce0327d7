"""Cached reads for the contacts and companies pages, keyed on the data version so every write shows at once."""
from dataclasses import dataclass

import phonenumbers
import streamlit as st

from crm import listing, tags, users
from crm.audit import data_version
from crm.customfields import list_field_defs
from crm.db import read_scope
from crm.models import CustomFieldDefView, Entity
from crm.permissions import Actor

COUNTRIES = sorted(phonenumbers.SUPPORTED_REGIONS)


@dataclass(frozen=True)
class Lookups:
    tags: dict[int, str]
    readers: dict[int, str]  # owners whose records the actor may read: the owner filter
    assignable: dict[int, str]  # owners the actor may hand records to
    contact_fields: list[CustomFieldDefView]
    company_fields: list[CustomFieldDefView]


def version() -> int:
    with read_scope() as s:
        return data_version(s)


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _lookups(actor: Actor, data_version: int) -> Lookups:
    with read_scope() as s:
        return Lookups(
            tags={t.id: t.name for t in tags.list_tags(session=s)},
            readers=dict(users.reader_choices(session=s, actor=actor)),
            assignable=dict(users.owner_choices(session=s, actor=actor)),
            contact_fields=list_field_defs(session=s, actor=actor, entity=Entity.CONTACT),
            company_fields=list_field_defs(session=s, actor=actor, entity=Entity.COMPANY))


def lookups(actor: Actor) -> Lookups:
    return _lookups(actor, version())


@st.cache_data(ttl=600, max_entries=256, show_spinner=False)
def _contacts(actor: Actor, filters: listing.ContactFilter, sort: str, page: int, page_size: int, data_version: int):
    with read_scope() as s:
        return listing.list_contacts(session=s, actor=actor, filters=filters, sort=sort, page=page, page_size=page_size)


def contacts(actor: Actor, filters: listing.ContactFilter, sort: str, page: int, page_size: int):
    return _contacts(actor, filters, sort, page, page_size, version())


@st.cache_data(ttl=600, max_entries=256, show_spinner=False)
def _companies(actor: Actor, filters: listing.CompanyFilter, sort: str, page: int, page_size: int, data_version: int):
    with read_scope() as s:
        return listing.list_companies(session=s, actor=actor, filters=filters, sort=sort, page=page,
                                      page_size=page_size)


def companies(actor: Actor, filters: listing.CompanyFilter, sort: str, page: int, page_size: int):
    return _companies(actor, filters, sort, page, page_size, version())


def owner_select(known: Lookups, *, key: str, current: int | None) -> None:
    """An owner picker: the users the actor may hand records to, plus the current owner if they are not one."""
    owners = list(known.assignable)
    if current is not None and current not in owners:
        owners.insert(0, current)
    st.selectbox("Owner", owners, index=owners.index(current) if current in owners else 0, key=key,
                 format_func=lambda i: known.assignable.get(i) or known.readers.get(i) or f"user {i}")
