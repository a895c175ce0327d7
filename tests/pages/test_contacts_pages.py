"""The contacts pages through AppTest: search, filters, the 360° view, editing with field errors, and conflicts."""
import pytest

from crm import db
from crm.companies import create_company
from crm.contacts import create_contact, get_contact, update_contact
from crm.models import CompanyInput, ContactInput, Role
from crm.permissions import load_actor
from tests.pages.apptest import no_exception, signed_in
from tests.pages.test_admin import errors, fill, submit
from ui.navigation import COMPANIES, COMPANY, CONTACT, CONTACTS


@pytest.fixture
def book(people):
    """The rep's contacts in three scripts, one at a company, and one contact of the manager's."""
    with db.session_scope() as s:
        rep = load_actor(s, people[Role.REP])
        acme = create_company(session=s, actor=rep, data=CompanyInput(name="Acme Robotics", domain="acme.example"))
        ids = {
            "zoe": create_contact(session=s, actor=rep, data=ContactInput(
                first_name="Zoë", last_name="Šmíd", email="zoe@acme.example", country="CZ", company_id=acme.id)).id,
            "somchai": create_contact(session=s, actor=rep, data=ContactInput(
                first_name="สมชาย", last_name="ใจดี", phone="081 234 5678", country="TH")).id,
            "reza": create_contact(session=s, actor=rep, data=ContactInput(
                first_name="رضا", last_name="کریمی", phone="۰۹۱۲ ۳۴۵ ۶۷۸۹", country="IR")).id,
            "max": create_contact(session=s, actor=load_actor(s, people[Role.MANAGER]), data=ContactInput(
                first_name="Max", last_name="Own")).id,
        }
    return ids | {"acme": acme.id}


def contacts_page(user_id: int):
    at = signed_in(user_id).run()
    at.switch_page(CONTACTS.path).run()
    no_exception(at)
    return at


def table_with(at, column: str):
    """The first read-only table showing this column (such tables carry no key AppTest can see)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def names(at) -> list[str]:
    return at.dataframe(key="contacts_table").value["Name"].tolist()


@pytest.mark.parametrize("query, expected", [
    ("", ["Max Own", "Zoë Šmíd", "رضا کریمی", "สมชาย ใจดี"]),
    ("zoe smid", ["Zoë Šmíd"]), ("ACME", ["Zoë Šmíd"]), ("สมชาย", ["สมชาย ใจดี"]),
    ("رضا كريمي", ["رضا کریمی"]), ("0912 345", ["رضا کریمی"]), ("+66 81", ["สมชาย ใจดี"]), ("nobody", []),
])
def test_search_finds_contacts_in_any_script(book, people, query, expected):
    at = contacts_page(people[Role.MANAGER])
    at.text_input(key="contacts_search").input(query).run()
    no_exception(at)
    assert names(at) == expected
    assert at.caption[0].value.startswith(f"{len(expected)} contact")


def test_rep_sees_team_contacts_and_filters_by_owner(book, people):
    at = contacts_page(people[Role.REP])
    at.multiselect(key="contacts_owner").select(people[Role.MANAGER]).run()
    assert names(at) == ["Max Own"]


def open_contact(user_id: int, contact_id: int):
    at = signed_in(user_id).run()
    at.switch_page(CONTACT.path)
    at.query_params["id"] = str(contact_id)
    at.run()
    no_exception(at)
    return at


def test_360_view_shows_fields_company_and_timeline(book, people):
    at = open_contact(people[Role.REP], book["zoe"])
    assert at.title[0].value == "Zoë Šmíd"
    details = table_with(at, "Field")
    assert dict(zip(details["Field"], details["Value"]))["Company"] == "Acme Robotics"
    timeline = table_with(at, "What")
    assert timeline["What"].tolist() == ["Created contact"]


def test_edit_saves_and_field_errors_appear_next_to_the_field(book, people):
    at = open_contact(people[Role.REP], book["zoe"])
    save = f"contact_edit_{book['zoe']}_save"
    prefix = f"contact_edit_{book['zoe']}_"
    fill(at, **{f"{prefix}phone": "not a phone"})
    at = submit(at, save)
    no_exception(at)
    assert any(e.startswith("**Phone:**") for e in errors(at))
    with db.session_scope() as s:
        assert get_contact(session=s, actor=load_actor(s, people[Role.REP]), contact_id=book["zoe"]).version == 1
    fill(at, **{f"{prefix}phone": "+420 601 123 456", f"{prefix}job_title": "CTO"})
    at = submit(at, save)
    no_exception(at)
    assert errors(at) == []
    with db.session_scope() as s:
        zoe = get_contact(session=s, actor=load_actor(s, people[Role.REP]), contact_id=book["zoe"])
    assert (zoe.phone, zoe.job_title, zoe.version) == ("+420601123456", "CTO", 2)


def test_stale_edit_is_refused_names_who_changed_what_and_reloads(book, people):
    at = open_contact(people[Role.REP], book["zoe"])
    with db.session_scope() as s:  # the manager saves while the rep has the form open
        update_contact(session=s, actor=load_actor(s, people[Role.MANAGER]), contact_id=book["zoe"],
                       data=ContactInput(job_title="Head of Ops"), seen_version=1)
    prefix = f"contact_edit_{book['zoe']}_"
    fill(at, **{f"{prefix}job_title": "CTO"})
    at = submit(at, f"{prefix}save")
    no_exception(at)
    message = " ".join(errors(at))
    assert "Max Manager" in message and "job_title" in message.replace("\\", "")
    with db.session_scope() as s:
        assert get_contact(session=s, actor=load_actor(s, people[Role.REP]),
                           contact_id=book["zoe"]).job_title == "Head of Ops"
    at = at.button(key=f"{prefix}save_reload").click().run()
    no_exception(at)
    job = next(w for w in at.text_input if w.key and w.key.startswith(f"{prefix}job_title__g"))
    assert (job.value, job.key.endswith("__g2")) == ("Head of Ops", True)


def test_quick_action_logs_a_call_on_the_timeline(book, people):
    at = open_contact(people[Role.REP], book["somchai"])
    prefix = f"contact_log_{book['somchai']}_"
    fill(at, **{f"{prefix}subject": "Intro call", f"{prefix}body": "<b>not bold</b>"})
    at = submit(at, f"{prefix}save")
    no_exception(at)
    timeline = table_with(at, "What")
    assert timeline.iloc[0][["Kind", "What", "Details"]].tolist() == ["call", "Intro call", "<b>not bold</b>"]
    # The form starts afresh, so pressing the button again cannot log the same call twice.
    subject = next(w for w in at.text_input if w.key and w.key.startswith(f"{prefix}subject__g"))
    assert subject.value == ""


def test_another_teams_contact_is_refused(book, people):
    with db.session_scope() as s:
        admin = load_actor(s, people[Role.ADMIN])
        outsider = create_contact(session=s, actor=admin, data=ContactInput(first_name="Out", last_name="Sider")).id
    at = open_contact(people[Role.REP], outsider)
    assert errors(at) == ["You may not see this contact\\."]


def test_companies_list_and_360(book, people):
    at = signed_in(people[Role.MARKETER]).run()
    at.switch_page(COMPANIES.path).run()
    no_exception(at)
    assert at.dataframe(key="companies_table").value["Name"].tolist() == ["Acme Robotics"]
    at = signed_in(people[Role.REP]).run()
    at.switch_page(COMPANY.path)
    at.query_params["id"] = str(book["acme"])
    at.run()
    no_exception(at)
    assert at.title[0].value == "Acme Robotics"
    assert at.dataframe(key="company_contacts").value["Name"].tolist() == ["Zoë Šmíd"]


def test_admin_erases_a_contact_from_the_privacy_tab(book, people):
    at = open_contact(people[Role.ADMIN], book["zoe"])
    erase = f"contact_erase_{book['zoe']}"
    at = submit(at, erase)  # not confirmed: refused, nothing changes
    assert any("confirm" in e.lower() for e in errors(at))
    fill(at, **{f"{erase}_confirm": True})
    at = submit(at, erase)
    no_exception(at)
    with db.session_scope() as s:
        zoe = get_contact(session=s, actor=load_actor(s, people[Role.ADMIN]), contact_id=book["zoe"],
                          include_deleted=True)
    assert (zoe.first_name, zoe.email, zoe.deleted_at is not None) == ("Erased", None, True)


def test_only_admins_get_the_privacy_tab(book, people):
    at = open_contact(people[Role.MANAGER], book["zoe"])
    assert [t.label for t in at.tabs] == ["Overview", "Edit"]
