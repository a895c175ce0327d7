"""The admin page's Web forms tab: forms created and changed through the UI land in the database, and a token is
shown once, right after it is made, while only its hash is stored."""
import pytest
from sqlmodel import select

from crm import db
from crm.models import AuditLog, Role, WebForm
from crm.permissions import load_actor
from crm.webforms.forms import authenticate_form, hash_token, update_form
from crm.webforms.intake import submit_form
from tests.pages.apptest import no_exception
from tests.pages.test_admin import errors, fill, submit


def forms_in_db() -> list[WebForm]:
    with db.read_scope() as s:
        return list(s.exec(select(WebForm).order_by(WebForm.id)).all())


def tokens_shown(at) -> list[str]:
    """The token code block (the first st.code of the once-only box), if the page shows one."""
    return [c.value for c in at.code if "curl" not in c.value]


@pytest.fixture
def created(admin_page):
    fill(admin_page, admin_form_new_name="Contact us", admin_form_new_key="contact-us",
         admin_form_new_rate_limit_per_minute=5, admin_form_new_map_email="your_email",
         admin_form_new_map_first_name="first", admin_form_new_map_last_name="", admin_form_new_map_interests="topics")
    at = submit(admin_page, "admin_form_create")
    no_exception(at)
    assert errors(at) == []
    return at


def test_a_created_form_is_stored_with_the_hash_of_the_token_shown_once(created):
    at = created
    [form] = forms_in_db()
    assert (form.key, form.name, form.rate_limit_per_minute, form.active) == ("contact-us", "Contact us", 5, True)
    assert form.mapping == {"your_email": "email", "first": "first_name", "topics": "interests"}
    [token] = tokens_shown(at)
    assert form.token_hash == hash_token(token) and token not in form.token_hash
    [curl] = [c.value for c in at.code if "curl" in c.value]
    assert "/api/forms/contact-us" in curl and f"X-Form-Token: {token}" in curl and "your_email=" in curl
    with db.read_scope() as s:
        assert authenticate_form(session=s, form_key="contact-us", token=token).id == form.id
        audited = " ".join(str(v) for row in s.exec(select(AuditLog.old_value, AuditLog.new_value)).all() for v in row)
    assert token not in audited
    table = next(df.value for df in at.dataframe if "Token fingerprint" in df.value.columns)
    assert list(table["Token fingerprint"]) == [form.token_hash.removeprefix("sha256$")[:8]]
    at.run()  # the next run (any click) no longer shows it
    assert tokens_shown(at) == [] and not any(token in c.value for c in at.code)
    assert [t.value for t in at.toast] == []


def test_a_submission_is_counted_in_the_list(created):
    [token] = tokens_shown(created)
    with db.session_scope() as s:
        submit_form(session=s, form_key="contact-us", token=token, fields={"your_email": "ann@example.com",
                                                                          "first": "Ann"})
    at = created.run()
    table = next(df.value for df in at.dataframe if "Submissions" in df.value.columns)
    assert list(table["Submissions"]) == [1]


def test_a_bad_mapping_and_a_bad_key_name_the_field(admin_page):
    fill(admin_page, admin_form_new_name="No email", admin_form_new_key="no-email", admin_form_new_map_email="")
    at = submit(admin_page, "admin_form_create")
    assert errors(at) == ["**Mapping:** one field must fill the email: submissions are matched to contacts by it"]
    fill(at, admin_form_new_map_email="email", admin_form_new_key="Not A Key")
    at = submit(at, "admin_form_create")
    assert len(errors(at)) == 1 and errors(at)[0].startswith("**Key:**")
    assert forms_in_db() == [] and tokens_shown(at) == []


def test_rotating_the_token_shows_the_new_one_once_and_the_old_one_stops(created):
    [old] = tokens_shown(created)
    form_id = forms_in_db()[0].id
    at = submit(created.run(), f"admin_form_edit_{form_id}_rotate")
    no_exception(at)
    [new] = tokens_shown(at)
    assert new != old and forms_in_db()[0].token_hash == hash_token(new)
    with db.read_scope() as s:
        assert authenticate_form(session=s, form_key="contact-us", token=new).id == form_id
    assert tokens_shown(at.run()) == []


def test_switching_a_form_off_and_on_and_editing_its_mapping(created):
    form_id = forms_in_db()[0].id
    at = submit(created.run(), f"admin_form_edit_{form_id}_switch")
    assert [f.active for f in forms_in_db()] == [False]
    at = submit(at, f"admin_form_edit_{form_id}_switch")
    assert [f.active for f in forms_in_db()] == [True]
    fill(at, **{f"admin_form_edit_{form_id}_map_last_name": "surname",
                f"admin_form_edit_{form_id}_name": "Write to us"})
    at = submit(at, f"admin_form_edit_{form_id}_save")
    assert errors(at) == []
    [form] = forms_in_db()
    assert form.name == "Write to us"
    assert form.mapping == {"your_email": "email", "first": "first_name", "surname": "last_name", "topics": "interests"}


def test_a_stale_edit_shows_the_conflict(created, people):
    form_id = forms_in_db()[0].id
    at = created.run()
    with db.session_scope() as s:  # another admin saves first
        update_form(session=s, actor=load_actor(s, people[Role.ADMIN]), form_id=form_id, name="Theirs",
                    mapping={"e": "email"}, rate_limit_per_minute=9, seen_version=1)
    fill(at, **{f"admin_form_edit_{form_id}_name": "Mine"})
    at = submit(at, f"admin_form_edit_{form_id}_save")
    no_exception(at)
    assert len(errors(at)) == 1 and "Ada Admin" in errors(at)[0]
    assert forms_in_db()[0].name == "Theirs"
