"""Search: Unicode-aware prefix matching over names, emails, phones and companies, within the reader's scope."""
import pytest

from crm.companies import create_company
from crm.contacts import create_contact, update_contact
from crm.db import read_scope, session_scope
from crm.listing import ContactFilter, list_contacts
from crm.models import CompanyInput, ContactInput
from crm.search import contact_tokens, parse_query
from tests.factories import actor, make_user


def test_tokens_cover_words_unspaced_scripts_email_and_phone():
    tokens = contact_tokens("José", "O'Brien", "Jose.OBrien@Example.com", "+14155552671")
    assert {"jose", "o'brien", "obrien", "jose.obrien@example.com", "jose.obrien", "14155552671",
            "4155552671"} <= tokens
    chinese = contact_tokens("小明", "王", None, None)
    assert {"小明", "王", "王小明", "小明王"} <= chinese
    assert "joseo'brien" not in tokens  # Latin names are searched word by word, not run together


@pytest.mark.parametrize("typed, terms, phone", [
    ("  Zoë   SMITH ", ("zoe", "smith"), False),
    ("+1 (415) 555", ("1415555",), True),
    ("0912 345", ("912345",), True),
    ("۰۹۱۲۳۴۵", ("912345",), True),  # Persian digits
    ("４１５５５５", ("415555",), True),  # full-width digits
    ("jo@ex", ("jo@ex",), False),
    ("", (), False),
])
def test_parse_query(typed, terms, phone):
    query = parse_query(typed)
    assert query.terms == terms and query.phone is phone


@pytest.fixture
def directory(engine):
    """A rep and a manager in one team, another team's rep, and contacts in several scripts."""
    rep = make_user(engine, "rep", team="East")
    manager = make_user(engine, "manager", team="East")
    other = make_user(engine, "rep", team="West")
    people = [
        ("Somchai", "Jaidee", "somchai@example.co.th", "+66 81 234 5678", "TH", rep, None),
        ("สมชาย", "ใจดี", None, None, "TH", rep, None),
        ("رضا", "كريمي", None, "۰۹۱۲ ۳۴۵ ۶۷۸۹", "IR", rep, None),  # Arabic kaf and yeh, Persian digits
        ("小明", "王", "wang@example.cn", None, "CN", rep, None),
        ("Zoë", "Šmíd", "zoe@acme.example", None, "CZ", rep, "Acme Robotics"),
        ("Éric", "Dupont", "eric@example.fr", None, "FR", other, "Acme Robotics"),
    ]
    ids = {}
    with session_scope(engine) as s:
        a = actor(engine, make_user(engine, "admin"))
        company = create_company(session=s, actor=a, data=CompanyInput(name="Acme Robotics", domain="acme.example"))
        for first, last, email, phone, country, owner, company_name in people:
            ids[first] = create_contact(session=s, actor=a, data=ContactInput(
                first_name=first, last_name=last, email=email, phone=phone, country=country, owner_id=owner,
                company_id=company.id if company_name else None)).id
    return {"rep": rep, "manager": manager, "other": other, "ids": ids, "admin": a}


def _found(engine, user_id: int, query: str) -> set[int]:
    with read_scope(engine) as s:
        page = list_contacts(session=s, actor=actor(engine, user_id), filters=ContactFilter(query=query))
        return {row.id for row in page.rows}


@pytest.mark.parametrize("query, who", [
    ("somchai", "Somchai"), ("SOMCH", "Somchai"), ("jaidee som", "Somchai"),
    ("สมชาย", "สมชาย"), ("ใจ", "สมชาย"),
    ("رضا کریمی", "رضا"),  # typed with Persian kaf and yeh: still found
    ("王小明", "小明"), ("小明", "小明"),
    ("zoe smid", "Zoë"), ("ŠMÍD", "Zoë"),
    ("wang@exa", "小明"), ("somchai@example.co.th", "Somchai"),
    ("+66 81 234", "Somchai"), ("081 234 5678", "Somchai"), ("0912 345 6789", "رضا"), ("+98912", "رضا"),
])
def test_search_finds_across_scripts_accents_and_case(engine, directory, query, who):
    assert _found(engine, directory["manager"], query) == {directory["ids"][who]}


def test_search_by_company_name_or_domain_within_scope(engine, directory):
    ids = directory["ids"]
    assert _found(engine, directory["manager"], "acme") == {ids["Zoë"]}  # Éric belongs to the West team
    assert _found(engine, directory["admin"].id, "acme rob") == {ids["Zoë"], ids["Éric"]}
    assert _found(engine, directory["admin"].id, "acme.example") == {ids["Zoë"], ids["Éric"]}
    assert _found(engine, directory["admin"].id, "nobody-like-this") == set()


def test_edits_reindex_the_contact(engine, directory):
    ids, admin = directory["ids"], directory["admin"]
    with session_scope(engine) as s:
        update_contact(session=s, actor=admin, contact_id=ids["Éric"], data=ContactInput(last_name="Lefèvre"),
                       seen_version=1)
    assert _found(engine, admin.id, "dupont") == set()
    assert _found(engine, admin.id, "lefevre") == {ids["Éric"]}
