"""The admin page: every form changes the database through crm/, and errors name the field."""
import re
from datetime import date

import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from crm import db
from crm.auth import find_user_by_email, login
from crm.models import CustomFieldDef, LostReason, Pipeline, Quota, Role, Stage, Team, UserUpdate
from crm.permissions import load_actor
from crm.quotas import save_quota
from crm.users import update_user
from tests.pages.apptest import ROOT, no_exception, signed_in
from ui.navigation import ADMIN


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def fill(at, **values):
    """Set widgets by key, whatever their kind (AppTest lists widgets per kind)."""
    for key, value in values.items():
        _widget(at, key).set_value(value)
    return at


def _widget(at, key):
    """A widget by key, ignoring the generation suffix (`__g<n>`) that form widgets carry."""
    for kind in ("text_input", "text_area", "selectbox", "multiselect", "number_input", "checkbox", "radio",
                 "date_input"):
        found = [w for w in getattr(at, kind) if w.key and re.sub(r"__g\d+$", "", w.key) == key]
        if found:
            return found[0]
    raise KeyError(key)


def submit(at, key):
    return at.button(key=key).click().run()


def table_with(at, column: str):
    """The one dataframe on the page (every tab renders) that has this column."""
    return next(df.value for df in at.dataframe if column in df.value.columns)


def test_admin_creates_a_user(admin_page, people):
    with db.session_scope() as s:
        east = s.exec(select(Team).where(Team.name == "East")).one().id
    fill(admin_page, admin_user_new_email="nina@example.com", admin_user_new_full_name="Nina New",
         admin_user_new_role="manager", admin_user_new_team_id=east, admin_user_new_password="a long enough password")
    at = submit(admin_page, "admin_user_create")
    no_exception(at)
    assert errors(at) == []
    with db.session_scope() as s:
        nina = find_user_by_email(s, "nina@example.com")
        assert (nina.full_name, nina.role, nina.team_id, nina.active) == ("Nina New", "manager", east, True)
        nina_id = nina.id
    assert login(email="nina@example.com", password="a long enough password") == nina_id
    assert "Nina New <nina@example.com>" in at.selectbox(key="admin_user_pick").options
    assert [t.value for t in at.toast] == ["Added Nina New"]


def test_duplicate_email_names_the_field(admin_page):
    fill(admin_page, admin_user_new_email="RITA@example.com", admin_user_new_full_name="Rita Again",
         admin_user_new_password="a long enough password")
    at = submit(admin_page, "admin_user_create")
    no_exception(at)
    assert errors(at) == ["**Email:** rita@example\\.com already has an account"]
    assert _widget(at, "admin_user_new_full_name").value == "Rita Again"  # the form keeps what was typed


def test_short_password_names_the_field(admin_page):
    fill(admin_page, admin_user_new_email="sam@example.com", admin_user_new_full_name="Sam",
         admin_user_new_password="short")
    at = submit(admin_page, "admin_user_create")
    assert len(errors(at)) == 1 and errors(at)[0].startswith("**Password:**")


def test_admin_edits_a_user_and_sets_a_password(admin_page, people):
    rep = people[Role.REP]
    at = admin_page
    at.selectbox(key="admin_user_pick").set_value(rep).run()
    fill(at, **{f"admin_user_pw_{rep}_password": "brand new password", f"admin_user_pw_{rep}_again": "not the same"})
    at = submit(at, f"admin_user_pw_{rep}_save")
    assert errors(at) == ["**Password:** the two entries differ"]
    fill(at, **{f"admin_user_pw_{rep}_password": "brand new password",
                f"admin_user_pw_{rep}_again": "brand new password"})
    at = submit(at, f"admin_user_pw_{rep}_save")
    assert errors(at) == []
    # Setting the password bumped the user's version; the edit form must have moved on with it.
    fill(at, **{f"admin_user_edit_{rep}_full_name": "Rita Renamed", f"admin_user_edit_{rep}_role": "manager"})
    at = submit(at, f"admin_user_edit_{rep}_save")
    assert errors(at) == []
    with db.session_scope() as s:
        user = find_user_by_email(s, "rita@example.com")
        assert (user.full_name, user.role) == ("Rita Renamed", "manager")
    assert login(email="rita@example.com", password="brand new password") == rep


def test_a_stale_edit_shows_the_conflict_and_reloads(admin_page, people):
    rep = people[Role.REP]
    at = admin_page
    at.selectbox(key="admin_user_pick").set_value(rep).run()
    with db.session_scope() as s:  # someone else saves first
        update_user(session=s, actor=load_actor(s, people[Role.ADMIN]), user_id=rep,
                    changes=UserUpdate(full_name="Rita Elsewhere"), seen_version=1)
    fill(at, **{f"admin_user_edit_{rep}_full_name": "Rita Mine"})
    at = submit(at, f"admin_user_edit_{rep}_save")
    no_exception(at)
    assert len(errors(at)) == 1
    assert "changed after you opened it: Ada Admin changed full\\_name" in errors(at)[0]
    with db.session_scope() as s:
        assert find_user_by_email(s, "rita@example.com").full_name == "Rita Elsewhere"  # nothing overwritten
    at = at.button(key=f"admin_user_edit_{rep}_save_reload").click().run()
    assert errors(at) == []
    assert _widget(at, f"admin_user_edit_{rep}_full_name").value == "Rita Elsewhere"
    assert "Editing version 2" in [c.value for c in at.caption]


def test_admin_creates_and_renames_a_team(admin_page):
    fill(admin_page, admin_team_new_name="West")
    at = submit(admin_page, "admin_team_create")
    assert errors(at) == []
    fill(at, admin_team_new_name="east")
    at = submit(at, "admin_team_create")
    assert errors(at) == ["**Name:** a team called 'East' already exists"]
    with db.session_scope() as s:
        west = s.exec(select(Team).where(Team.name == "West")).one()
    at.selectbox(key="admin_team_pick").set_value(west.id).run()
    fill(at, **{f"admin_team_edit_{west.id}_name": "West coast"})
    at = submit(at, f"admin_team_edit_{west.id}_save")
    assert errors(at) == []
    with db.session_scope() as s:
        assert s.get(Team, west.id).name == "West coast"


def stages_of(name: str) -> list[tuple]:
    with db.session_scope() as s:
        return [(st.name, st.probability, st.is_won, st.is_lost) for st in s.exec(
            select(Stage).join(Pipeline).where(Pipeline.name == name, Stage.deleted_at.is_(None))
            .order_by(Stage.position)).all()]


def test_admin_creates_a_pipeline_with_stages(admin_page):
    fill(admin_page, admin_pipeline_new_name="Partners",
         admin_pipeline_new_stages="Referral, 15\nContract, 80\n\nSigned, 100, won\nDropped, 0, lost")
    at = submit(admin_page, "admin_pipeline_create")
    no_exception(at)
    assert errors(at) == []
    assert stages_of("Partners") == [("Referral", 0.15, False, False), ("Contract", 0.8, False, False),
                                     ("Signed", 1.0, True, False), ("Dropped", 0.0, False, True)]


def test_pipeline_stage_errors_name_the_field(admin_page):
    fill(admin_page, admin_pipeline_new_name="Broken", admin_pipeline_new_stages="Only, 50")
    at = submit(admin_page, "admin_pipeline_create")
    assert errors(at) == ["**Stages:** a pipeline needs one won stage and one lost stage"]
    fill(at, admin_pipeline_new_stages="Open, lots")
    at = submit(at, "admin_pipeline_create")
    assert errors(at) == ["**Stages:** line 1: 'lots' is not a percentage"]


def test_admin_edits_adds_reorders_and_archives_stages(admin_page):
    at = admin_page
    with db.session_scope() as s:
        pipeline = s.exec(select(Pipeline).where(Pipeline.name == "New business")).one().id
        discovery = s.exec(select(Stage).where(Stage.pipeline_id == pipeline, Stage.name == "Discovery")).one().id
    at.selectbox(key=f"admin_stage_pick_{pipeline}").set_value(discovery).run()
    fill(at, **{f"admin_stage_edit_{discovery}_name": "Discovery call", f"admin_stage_edit_{discovery}_percent": 25.0})
    at = submit(at, f"admin_stage_edit_{discovery}_save")
    assert errors(at) == []
    fill(at, **{f"admin_stage_new_{pipeline}_name": "Legal review", f"admin_stage_new_{pipeline}_percent": 80.0})
    at = submit(at, f"admin_stage_new_{pipeline}_add")
    assert errors(at) == []
    _widget(at, f"admin_stage_order_{pipeline}_stage").set_value(discovery)
    at = submit(at, f"admin_stage_order_{pipeline}_up")
    assert errors(at) == []
    names = [n for n, *_ in stages_of("New business")]
    assert names == ["Discovery call", "Qualification", "Proposal", "Negotiation", "Legal review", "Closed won",
                     "Closed lost"]
    assert stages_of("New business")[0][1] == 0.25
    at.selectbox(key=f"admin_stage_pick_{pipeline}").set_value(discovery).run()
    at = submit(at, f"admin_stage_edit_{discovery}_archive")
    assert errors(at) == []
    assert "Discovery call" not in [n for n, *_ in stages_of("New business")]


def test_admin_adds_renames_and_archives_a_lost_reason(admin_page):
    fill(admin_page, admin_reason_new_name="Legal blocked")
    at = submit(admin_page, "admin_reason_add")
    assert errors(at) == []
    with db.session_scope() as s:
        reason = s.exec(select(LostReason).where(LostReason.name == "Legal blocked")).one()
    at.selectbox(key="admin_reason_pick").set_value(reason.id).run()
    fill(at, **{f"admin_reason_edit_{reason.id}_name": "Legal said no",
                f"admin_reason_edit_{reason.id}_archived": True})
    at = submit(at, f"admin_reason_edit_{reason.id}_save")
    assert errors(at) == []
    with db.session_scope() as s:
        stored = s.get(LostReason, reason.id)
        assert stored.name == "Legal said no" and stored.deleted_at is not None
    assert "Legal said no (archived)" in at.selectbox(key="admin_reason_pick").options


def test_admin_creates_edits_and_archives_a_custom_field(admin_page):
    at = admin_page
    at.radio(key="admin_field_entity").set_value("deal").run()
    fill(at, admin_field_new_label="Renewal date", admin_field_new_field_type="date", admin_field_new_required=True)
    at = submit(at, "admin_field_create")
    no_exception(at)
    assert errors(at) == []
    with db.session_scope() as s:
        field = s.exec(select(CustomFieldDef).where(CustomFieldDef.key == "renewal_date")).one()
        assert (field.entity, field.field_type, field.required) == ("deal", "date", True)
    assert list(table_with(at, "Key")["Key"]) == ["renewal_date"]
    fill(at, **{f"admin_field_edit_{field.id}_label": "Renewal on",
                f"admin_field_edit_{field.id}_edit_roles": ["admin"]})
    at = submit(at, f"admin_field_edit_{field.id}_save")
    assert errors(at) == []
    at = submit(at, f"admin_field_edit_{field.id}_archive")
    assert errors(at) == []
    with db.session_scope() as s:
        stored = s.get(CustomFieldDef, field.id)
        assert (stored.label, stored.edit_roles, stored.deleted_at is not None) == ("Renewal on", ["admin"], True)


def test_bad_regex_and_options_name_the_field(admin_page):
    fill(admin_page, admin_field_new_label="Code", admin_field_new_field_type="text", admin_field_new_regex="([a-z")
    at = submit(admin_page, "admin_field_create")
    assert len(errors(at)) == 1
    assert errors(at)[0].startswith("**Pattern \\(regex\\):** not a valid regular expression")
    fill(at, admin_field_new_regex="", admin_field_new_field_type="dropdown")
    at = submit(at, "admin_field_create")
    assert errors(at) == ["**Options:** a dropdown needs at least one option, each different"]


def stored_quotas() -> list[tuple]:
    with db.session_scope() as s:
        return [(q.user_id, q.team_id, q.period_start, q.period_end, q.amount)
                for q in s.exec(select(Quota).order_by(Quota.period_start, Quota.id)).all()]


def quota_table(at):
    return table_with(at, "Owner")


def test_admin_sets_a_quota_and_sees_it(admin_page, people):
    rep = people[Role.REP]
    at = admin_page.number_input(key="admin_quota_filter_year").set_value(2025).run()
    fill(at, admin_quota_new_owner=f"user:{rep}", admin_quota_new_period_start=date(2025, 1, 1),
         admin_quota_new_period_end=date(2025, 3, 31), admin_quota_new_amount=50_000.0)
    at = submit(at, "admin_quota_create")
    no_exception(at)
    assert errors(at) == []
    assert stored_quotas() == [(rep, None, date(2025, 1, 1), date(2025, 3, 31), 50_000.0)]
    assert [t.value for t in at.toast] == ["Set a quota of 50,000\\.00 for Rita Rep"]
    table = quota_table(at)
    assert list(table["Owner"]) == ["Rita Rep"] and list(table["Amount"]) == [50_000.0]
    # Another year's filter does not show it.
    at = at.number_input(key="admin_quota_filter_year").set_value(2026).run()
    assert quota_table(at).empty


def test_quota_errors_name_the_field(admin_page, people):
    rep = people[Role.REP]
    fill(admin_page, admin_quota_new_owner=f"user:{rep}", admin_quota_new_period_start=date(2025, 3, 31),
         admin_quota_new_period_end=date(2025, 1, 1), admin_quota_new_amount=1.0)
    at = submit(admin_page, "admin_quota_create")
    no_exception(at)
    assert len(errors(at)) == 1 and errors(at)[0].startswith("**Period end:** ends")
    assert "Nothing was saved: correct the field marked above." in [c.value for c in at.caption]
    with db.session_scope() as s:
        save_quota(session=s, actor=load_actor(s, people[Role.ADMIN]), user_id=rep, period_start=date(2025, 1, 1),
                   period_end=date(2025, 3, 31), amount=5.0)
    fill(at, admin_quota_new_period_start=date(2025, 1, 1), admin_quota_new_period_end=date(2025, 3, 31))
    at = submit(at, "admin_quota_create")
    assert errors(at) == ["**Period start:** Rita Rep already has a quota from 2025\\-01\\-01 to 2025\\-03\\-31"]
    assert len(stored_quotas()) == 1


def test_admin_sets_a_year_then_edits_and_deletes_one_quota(admin_page):
    with db.session_scope() as s:
        east = s.exec(select(Team).where(Team.name == "East")).one().id
    at = admin_page.number_input(key="admin_quota_filter_year").set_value(2025).run()
    fill(at, admin_quota_fill_owner=f"team:{east}", admin_quota_fill_year=2025, admin_quota_fill_kind="quarter",
         admin_quota_fill_amount=100_000.0)
    at = submit(at, "admin_quota_fill_save")
    no_exception(at)
    assert errors(at) == []
    assert [t.value for t in at.toast] == ["Team East, 2025: 4 created, 0 updated, 0 left as they were"]
    assert list(quota_table(at)["From"]) == [date(2025, m, 1) for m in (1, 4, 7, 10)]
    q3 = stored_quotas()[2]
    with db.session_scope() as s:
        q3_id = s.exec(select(Quota.id).where(Quota.period_start == q3[2])).one()
    at.selectbox(key="admin_quota_pick").set_value(q3_id).run()
    fill(at, **{f"admin_quota_edit_{q3_id}_amount": 120_000.0})
    at = submit(at, f"admin_quota_edit_{q3_id}_save")
    assert errors(at) == []
    assert [a for *_, a in stored_quotas()] == [100_000.0, 100_000.0, 120_000.0, 100_000.0]
    at.selectbox(key="admin_quota_pick").set_value(q3_id).run()
    at = submit(at, f"admin_quota_edit_{q3_id}_delete")
    assert errors(at) == ["**Confirm:** tick the box above to delete this quota"]
    fill(at, **{f"admin_quota_edit_{q3_id}_confirm": True})
    at = submit(at, f"admin_quota_edit_{q3_id}_delete")
    no_exception(at)
    assert errors(at) == []
    assert len(stored_quotas()) == 3 and len(quota_table(at)) == 3


def test_a_stale_quota_edit_shows_the_conflict(admin_page, people):
    rep, admin = people[Role.REP], people[Role.ADMIN]
    with db.session_scope() as s:
        quota = save_quota(session=s, actor=load_actor(s, admin), user_id=rep, period_start=date(2026, 1, 1),
                           period_end=date(2026, 12, 31), amount=10.0)
    at = admin_page.number_input(key="admin_quota_filter_year").set_value(2026).run()
    at.selectbox(key="admin_quota_pick").set_value(quota.id).run()
    with db.session_scope() as s:  # someone else saves first
        save_quota(session=s, actor=load_actor(s, admin), user_id=rep, period_start=date(2026, 1, 1),
                   period_end=date(2026, 12, 31), amount=11.0, quota_id=quota.id, seen_version=1)
    fill(at, **{f"admin_quota_edit_{quota.id}_amount": 12.0})
    at = submit(at, f"admin_quota_edit_{quota.id}_save")
    no_exception(at)
    assert len(errors(at)) == 1 and "Ada Admin changed amount" in errors(at)[0]
    assert stored_quotas()[0][-1] == 11.0
    at = at.button(key=f"admin_quota_edit_{quota.id}_save_reload").click().run()
    assert _widget(at, f"admin_quota_edit_{quota.id}_amount").value == 11.0


@pytest.mark.parametrize("role", [Role.MANAGER, Role.REP, Role.MARKETER])
def test_non_admins_cannot_reach_the_quotas(people, role):
    at = signed_in(people[role]).run()
    with pytest.raises(ValueError, match="navigation page"):
        at.switch_page(ADMIN.path)
    # Run the admin page for them anyway (say a navigation bug): it stops before any tab, quotas included.
    with db.read_scope() as s:
        someone = load_actor(s, people[role])
    at = AppTest.from_function(_run_page_as, args=(someone, str(ROOT / ADMIN.path)), default_timeout=30).run()
    no_exception(at)
    assert errors(at) == ["Only admins can open the admin page."]
    assert not at.tabs and not at.number_input


def _run_page_as(actor, path):
    import runpy

    from ui import session

    session._run.actor = actor
    runpy.run_path(path)
