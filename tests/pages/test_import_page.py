"""The import page: suggested mapping, dry run, import with progress, error file, history and revert (AppTest).

AppTest cannot upload files, so tests hand the page its file through st.session_state["import_test_file"].
"""
import pytest
from sqlalchemy import func, select

from crm import db
from crm.models import Contact, CustomFieldDef, ImportJob, Role
from tests.pages.apptest import no_exception, signed_in
from ui.navigation import IMPORT, pages_for

PEOPLE = (b"Email,First name,Shoe size,Joined\r\n"
          b"ann@example.com,Ann,41,03/04/2024\r\n"
          b"not-an-email,Bo,42,25/04/2024\r\n"
          b"=cmd|' /C calc'!A0,Cy,43,01/05/2024\r\n")


def contacts() -> int:
    with db.read_scope() as s:
        return s.execute(select(func.count()).select_from(Contact)).scalar()


def open_page(user_id: int, data: bytes = PEOPLE, name: str = "people.csv"):
    at = signed_in(user_id)
    at.session_state["import_test_file"] = {"name": name, "data": data}
    at.run()
    at.switch_page(IMPORT.path).run()
    no_exception(at)
    return at


def table(at, column: str):
    """The shown table that has this column (AppTest does not keep a dataframe's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.fixture
def page(people):
    at = open_page(people[Role.ADMIN])
    at.selectbox(key="import_entity").set_value("contacts").run()
    no_exception(at)
    return at


def test_the_page_is_offered_to_roles_that_may_import(people):
    assert IMPORT in pages_for(Role.ADMIN) and IMPORT in pages_for(Role.MARKETER)
    assert IMPORT not in pages_for(Role.REP) and IMPORT not in pages_for(Role.MANAGER)


def test_the_suggested_mapping_and_the_detected_date_order_are_shown(page):
    assert [page.selectbox(key=f"import_map_{i}").value for i in range(4)] == ["email", "first_name", "", ""]
    # The suggested mapping maps no date column, so there is nothing to detect yet.
    assert page.selectbox(key="import_date_order").label == "Date order (detected: Year-month-day (ISO))"


def test_dry_run_previews_and_changes_nothing(page):
    page.selectbox(key="import_map_2").set_value("new custom field").run()
    assert page.selectbox(key="import_type_2").value == "number"  # inferred from 41, 42, 43
    page.selectbox(key="import_map_3").set_value("new custom field").run()
    assert page.selectbox(key="import_type_3").value == "date"
    # 25/04/2024 can only be day/month/year, so the file's 03/04/2024 is the 3rd of April.
    assert page.selectbox(key="import_date_order").label == "Date order (detected: Day/month/year)"
    at = page.button(key="import_dry_run").click().run()
    no_exception(at)
    assert metrics(at) == {"Created": "1", "Updated": "0", "Unchanged": "0", "Rejected": "2"}
    problems = table(at, "reason")
    assert list(problems["row"]) == [3, 4] and set(problems["column"]) == {"Email"}
    assert contacts() == 0
    with db.read_scope() as s:
        assert s.execute(select(func.count()).select_from(CustomFieldDef)).scalar() == 0
    assert at.get("download_button"), "the error file can be downloaded"


def test_import_commits_then_the_history_reverts_it(page):
    page.selectbox(key="import_map_2").set_value("new custom field").run()
    at = page.button(key="import_commit").click().run()
    no_exception(at)
    assert metrics(at)["Created"] == "1" and contacts() == 1
    assert [t.value for t in at.toast][-1].startswith("Imported people\\.csv: 1 created")
    history = table(at, "Job")
    assert list(history["Created"]) == [1] and list(history["Rejected"]) == [2]
    with db.read_scope() as s:
        job_id = s.execute(select(ImportJob.id).where(ImportJob.dry_run.is_(False))).scalar_one()
    at.selectbox(key="import_revert_pick").set_value(job_id)
    at = at.button(key="import_revert").click().run()
    no_exception(at)
    assert contacts() == 0
    assert any("Reverted import" in s.value for s in at.success)
    assert list(table(at, "Job")["Status"]) == ["reverted"]


def test_a_revert_blocked_by_a_later_edit_says_why(page, people):
    from crm.contacts import update_contact
    from crm.models import ContactInput
    from crm.permissions import load_actor

    at = page.button(key="import_commit").click().run()
    with db.session_scope() as s:
        ann = s.execute(select(Contact)).scalar_one()
        update_contact(session=s, actor=load_actor(s, people[Role.ADMIN]), contact_id=ann.id, seen_version=1,
                       data=ContactInput(job_title="CEO"))
    at = at.button(key="import_revert").click().run()
    no_exception(at)
    assert "cannot be reverted" in at.error[0].value and contacts() == 1


def test_a_mapping_is_saved_and_loaded(page):
    page.selectbox(key="import_map_2").set_value("new custom field").run()
    page.selectbox(key="import_date_order").set_value("dmy").run()
    page.text_input(key="import_save_name").input("Shop export")
    at = page.button(key="import_save").click().run()
    no_exception(at)
    at.selectbox(key="import_map_2").set_value("").run()
    at.selectbox(key="import_date_order").set_value("auto").run()
    at = at.button(key="import_load").click().run()
    assert at.selectbox(key="import_map_2").value == "new custom field"
    assert at.selectbox(key="import_date_order").value == "dmy"


def test_bad_extra_json_blocks_the_buttons(page):
    page.text_area(key="import_extra").input("{not json").run()
    assert page.button(key="import_commit").disabled and page.error


def test_a_marketer_imports_but_cannot_create_fields(people):
    at = open_page(people[Role.MARKETER])
    at.selectbox(key="import_entity").set_value("contacts").run()
    assert "users" not in at.selectbox(key="import_entity").options
    at.selectbox(key="import_map_2").set_value("new custom field").run()
    at = at.button(key="import_commit").click().run()
    no_exception(at)
    assert "only admins may create custom fields" in at.error[0].value and contacts() == 0


def test_the_page_refuses_a_role_without_the_right(people):
    from tests.pages.test_app import _run_admin_as
    from streamlit.testing.v1 import AppTest
    from crm.permissions import load_actor
    from tests.pages.apptest import ROOT

    with db.read_scope() as s:
        rep = load_actor(s, people[Role.REP])
    at = AppTest.from_function(_run_admin_as, args=(rep, str(ROOT / IMPORT.path)), default_timeout=30).run()
    no_exception(at)
    assert [e.value for e in at.error] == ["Your role may not import data."]


def test_the_file_s_own_text_is_never_markup(people):
    data = b"[click](http://evil.example),<b>Name</b>\r\n**x**,<script>alert(1)</script>\r\n"
    at = open_page(people[Role.ADMIN], data=data, name="<img src=x onerror=alert(1)>.csv")
    at.selectbox(key="import_entity").set_value("contacts").run()
    assert at.selectbox(key="import_map_0").label == r"\[click\]\(http://evil\.example\)"
    assert at.selectbox(key="import_map_1").label == r"\<b\>Name\</b\>"
    at = at.button(key="import_dry_run").click().run()
    no_exception(at)
    assert r"\<img src=x onerror=alert\(1\)\>\.csv" in at.subheader[0].value
