"""The data hygiene page's tool tabs (ui/hygiene_tools.py): each action through the UI, then the database checked;
reverts from Job history (refused, then skipping what was edited); errors that name the field and the row; a
manager limited to their team's records. Each tab is run on its own with AppTest.from_function."""
from datetime import timedelta

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from crm import db
from crm.clock import utcnow
from crm.contacts import restore_contact
from crm.models import (
    Activity, Company, CompanyTag, Contact, ContactTag, HygieneJob, Role, Segment, SegmentMember, Tag,
)
from crm.permissions import load_actor
from tests.pages.apptest import no_exception, signed_in
from ui.navigation import HYGIENE
from ui.session import LAST_SEEN, USER_ID

OLD = timedelta(days=400)


def _tab(name: str, user_id: int) -> None:
    from crm.db import read_scope
    from crm.permissions import load_actor
    from ui import hygiene_tools

    with read_scope() as s:
        actor = load_actor(s, user_id)
    getattr(hygiene_tools, name)(actor)


def tab(name: str, user_id: int) -> AppTest:
    at = AppTest.from_function(_tab, args=(name, user_id), default_timeout=60)
    at.session_state[USER_ID] = user_id
    at.session_state[LAST_SEEN] = utcnow()
    at.run()
    no_exception(at)
    return at


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    no_exception(at)
    return at


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def frame_with(at: AppTest, column: str):
    return next(df.value for df in at.dataframe if column in df.value.columns)


def contact(s, first: str, last: str = "Test", **values) -> int:
    row = Contact(first_name=first, last_name=last, **values)
    s.add(row)
    s.flush()
    return row.id


def stored(model, record_id: int):
    with db.read_scope() as s:
        return s.get(model, record_id)


# --- stale contacts -----------------------------------------------------------------------------------------------

@pytest.fixture
def sleepers(people) -> dict[str, int]:
    """Old contacts: Rita's two and Ada's one are stale; Rita's Busy had a call last week; Max's New is recent."""
    old = utcnow() - OLD
    with db.session_scope() as s:
        ids = {"Rita1": contact(s, "Rita1", owner_id=people[Role.REP], created_at=old),
               "Rita2": contact(s, "Rita2", owner_id=people[Role.REP], created_at=old),
               "Ada1": contact(s, "Ada1", owner_id=people[Role.ADMIN], created_at=old),
               "Busy": contact(s, "Busy", owner_id=people[Role.REP], created_at=old),
               "New": contact(s, "New", owner_id=people[Role.MANAGER])}
        s.add(Activity(kind="call", subject="Call", contact_id=ids["Busy"], occurred_at=utcnow() - timedelta(days=7),
                       done_at=utcnow() - timedelta(days=7)))
    return ids


def find_stale(user_id: int, days: int = 365) -> AppTest:
    at = tab("stale_tab", user_id)
    at.number_input(key="hyg_stale_days").set_value(days)
    return click(at, "hyg_stale_find")


def archived(ids) -> set[int]:
    with db.read_scope() as s:
        return set(s.execute(select(Contact.id).where(Contact.id.in_(ids), Contact.deleted_at.is_not(None)))
                   .scalars())


def test_stale_contacts_are_listed_then_archived_after_confirming(people, sleepers):
    at = find_stale(people[Role.ADMIN])
    assert at.metric[0].value == "3"
    assert set(frame_with(at, "Last engagement")["Name"]) == {"Rita1 Test", "Rita2 Test", "Ada1 Test"}
    click(at, "hyg_stale_archive")
    assert archived(sleepers.values()) == set()  # nothing happens before the confirmation
    assert any("Archive 3 contacts" in w for w in texts(at.warning))
    click(at, "hyg_stale_archive_yes")
    assert archived(sleepers.values()) == {sleepers["Rita1"], sleepers["Rita2"], sleepers["Ada1"]}
    with db.read_scope() as s:
        job = s.execute(select(HygieneJob)).scalar_one()
    assert (job.kind, job.record_count) == ("archive", 3)
    assert texts(at.success) == [f"Archived 3 contacts as job \\#{job.id}\\. Revert it from Job history to bring "
                                 "them back\\."]
    assert not at.metric  # the list is gone until asked again


def test_cancel_leaves_the_contacts_alone(people, sleepers):
    at = find_stale(people[Role.ADMIN])
    click(click(at, "hyg_stale_archive"), "hyg_stale_archive_no")
    assert archived(sleepers.values()) == set() and not at.warning


def test_a_manager_sees_and_archives_only_their_teams_contacts(people, sleepers):
    at = find_stale(people[Role.MANAGER])
    assert at.metric[0].value == "2"
    assert set(frame_with(at, "Last engagement")["Name"]) == {"Rita1 Test", "Rita2 Test"}
    click(click(at, "hyg_stale_archive"), "hyg_stale_archive_yes")
    assert archived(sleepers.values()) == {sleepers["Rita1"], sleepers["Rita2"]}


def test_the_list_is_computed_only_when_asked(people, sleepers):
    at = tab("stale_tab", people[Role.ADMIN])
    assert not at.metric and not at.dataframe
    at = find_stale(people[Role.ADMIN], days=10_000)
    assert at.metric[0].value == "0"


# --- job history: the archive's revert ----------------------------------------------------------------------------

def test_revert_is_refused_when_a_contact_changed_then_skips_it(people, sleepers):
    click(click(find_stale(people[Role.ADMIN]), "hyg_stale_archive"), "hyg_stale_archive_yes")
    with db.session_scope() as s:  # someone restores Rita1 on their own meanwhile
        restore_contact(session=s, actor=load_actor(s, people[Role.ADMIN]), contact_id=sleepers["Rita1"],
                        seen_version=2)
    at = tab("jobs_tab", people[Role.ADMIN])
    table = frame_with(at, "kind")
    assert table["kind"].tolist() == ["Archive stale contacts"] and table["records"].tolist() == [3]
    click(at, "hyg_jobs_revert")
    errors = texts(at.error)
    assert len(errors) == 1 and "cannot be reverted exactly" in errors[0] and "Ada Admin" in errors[0]
    assert archived(sleepers.values()) == {sleepers["Rita2"], sleepers["Ada1"]}  # nothing was reverted
    click(at, "hyg_jobs_revert_skip")
    assert archived(sleepers.values()) == set()
    assert "2 records restored" in texts(at.success)[0] and "1 record skipped" in texts(at.success)[0]
    assert frame_with(at, "kind")["restored"].tolist() == [2]
    assert "Every job has been reverted." in texts(at.caption)


def test_a_manager_cannot_revert_an_admins_job(people, sleepers):
    click(click(find_stale(people[Role.ADMIN]), "hyg_stale_archive"), "hyg_stale_archive_yes")
    at = tab("jobs_tab", people[Role.MANAGER])
    assert frame_with(at, "kind")["by"].tolist() == ["Ada Admin"]  # visible in the history
    assert [s.key for s in at.selectbox] == []  # but not offered for revert
    assert "No job you ran is left to revert." in texts(at.caption)


# --- incomplete records -------------------------------------------------------------------------------------------

@pytest.fixture
def gaps(people) -> dict[str, int]:
    with db.session_scope() as s:
        acme = Company(name="Acme", domain="acme.io", owner_id=people[Role.ADMIN])
        s.add(acme)
        s.flush()
        full = dict(email=None, phone="+12015550123", job_title="CTO", country="US", company_id=acme.id,
                    owner_id=people[Role.REP])
        return {"Nomail": contact(s, "Nomail", **full),
                "Nophone": contact(s, "Nophone", **{**full, "email": "np@example.com", "phone": None}),
                "Theirs": contact(s, "Theirs", **{**full, "owner_id": people[Role.ADMIN]}),
                "acme": acme.id}


def list_incomplete(user_id: int, entity: str = "contact") -> AppTest:
    at = tab("incomplete_tab", user_id)
    at.radio(key="hyg_inc_entity").set_value(entity)
    return click(at, "hyg_inc_find")


def edit(at: AppTest, by_name: dict[str, dict]) -> AppTest:
    table = at.data_editor[0].value
    rows = {name: i for i, name in enumerate(table["name"])}
    at.session_state["hyg_inc_editor"] = {"edited_rows": {rows[n]: cells for n, cells in by_name.items()},
                                          "added_rows": [], "deleted_rows": []}
    at.run()
    return click(at, "hyg_inc_save")


def test_filling_in_saves_good_rows_and_names_the_bad_row_and_field(people, gaps):
    at = list_incomplete(people[Role.MANAGER])
    table = at.data_editor[0].value
    assert set(table["name"]) == {"Nomail Test", "Nophone Test"}  # Ada's contact is not the manager's to edit
    assert {"email", "phone"} <= set(table.columns)
    at = edit(at, {"Nomail Test": {"email": "not an email"}, "Nophone Test": {"phone": "(201) 555-0199"}})
    assert stored(Contact, gaps["Nophone"]).phone == "+12015550199"
    assert stored(Contact, gaps["Nomail"]).email is None
    failures = frame_with(at, "problem")
    assert failures[["record", "field"]].values.tolist() == [["Nomail Test", "Email"]]
    assert any("1 row not saved" in e for e in texts(at.error))
    assert "Saved 1 record." in texts(at.success)
    assert list(at.data_editor[0].value["name"]) == ["Nomail Test"]  # listed again: Nophone is complete now


def test_a_row_changed_meanwhile_is_reported_not_overwritten(people, gaps):
    at = list_incomplete(people[Role.ADMIN])
    with db.session_scope() as s:
        s.get(Contact, gaps["Nomail"]).email = "set@elsewhere.com"
        s.get(Contact, gaps["Nomail"]).version += 1
    at = edit(at, {"Nomail Test": {"email": "mine@example.com"}})
    assert stored(Contact, gaps["Nomail"]).email == "set@elsewhere.com"
    assert frame_with(at, "problem")["record"].tolist() == ["Nomail Test"]


def test_companies_fill_in_the_owner_by_name(people, gaps):
    with db.session_scope() as s:
        beta = Company(name="Beta")
        s.add(beta)
        s.flush()
        beta_id = beta.id
    at = list_incomplete(people[Role.ADMIN], "company")
    assert "Beta" in set(at.data_editor[0].value["name"])
    edit(at, {"Beta": {"owner_id": "Max Manager", "employees": 12.0, "industry": "Retail"}})
    beta = stored(Company, beta_id)
    assert (beta.owner_id, beta.employees, beta.industry) == (people[Role.MANAGER], 12, "Retail")


# --- formatting ---------------------------------------------------------------------------------------------------

@pytest.fixture
def shouting(people) -> dict[str, int]:
    with db.session_scope() as s:
        return {"john": contact(s, "JOHN", "SMITH", email=" John@Example.COM", owner_id=people[Role.ADMIN]),
                "mary": contact(s, "mary", "o'brien", country="Thailand", owner_id=people[Role.ADMIN]),
                "bad": contact(s, "Ok", "Fine", phone="call me", owner_id=people[Role.ADMIN])}


def test_preview_untick_apply_then_revert(people, shouting):
    at = tab("formatting_tab", people[Role.ADMIN])
    click(at, "hyg_fmt_preview")
    table = at.data_editor[0].value
    assert {(r.contact, r.field, r.before, r.after) for r in table.itertuples()} >= {
        ("JOHN SMITH", "First name", "JOHN", "John"), ("JOHN SMITH", "Email", " John@Example.COM", "john@example.com"),
        ("mary o'brien", "Country", "Thailand", "TH")}
    assert frame_with(at, "problem")["value"].tolist() == ["call me"]
    keep_email = next(i for i, r in enumerate(table.itertuples()) if r.field == "Email")
    at.session_state["hyg_fmt_editor"] = {"edited_rows": {keep_email: {"apply": False}}, "added_rows": [],
                                          "deleted_rows": []}
    at.run()
    click(at, "hyg_fmt_apply")
    john, mary = stored(Contact, shouting["john"]), stored(Contact, shouting["mary"])
    assert (john.first_name, john.last_name, john.email) == ("John", "Smith", " John@Example.COM")
    assert (mary.first_name, mary.last_name, mary.country) == ("Mary", "O'Brien", "TH")
    with db.read_scope() as s:
        job = s.execute(select(HygieneJob)).scalar_one()
    assert job.kind == "format" and f"Formatting job \\#{job.id}" in texts(at.success)[0]
    assert not at.data_editor  # the applied preview is gone
    at = click(tab("jobs_tab", people[Role.ADMIN]), "hyg_jobs_revert")
    assert stored(Contact, shouting["john"]).first_name == "JOHN"
    assert stored(Contact, shouting["mary"]).country == "Thailand"


def test_no_fields_chosen_is_named(people, shouting):
    at = tab("formatting_tab", people[Role.ADMIN])
    at.multiselect(key="hyg_fmt_fields").set_value([])
    click(at, "hyg_fmt_preview")
    assert len(at.error) == 1 and at.error[0].value.startswith("Fields:")


# --- tags ---------------------------------------------------------------------------------------------------------

@pytest.fixture
def tags(people) -> dict[str, int]:
    """VIP on two contacts, "vip " on one of them and on Acme, V.I.P. unused; Lead unused."""
    with db.session_scope() as s:
        made = {n: Tag(name=n) for n in ("VIP", "vip ", "V.I.P.", "Lead")}
        ann, bob, acme = Contact(first_name="Ann"), Contact(first_name="Bob"), Company(name="Acme")
        s.add_all([*made.values(), ann, bob, acme])
        s.flush()
        t = {k: v.id for k, v in made.items()}
        s.add_all([ContactTag(contact_id=ann.id, tag_id=t["VIP"]), ContactTag(contact_id=bob.id, tag_id=t["VIP"]),
                   ContactTag(contact_id=ann.id, tag_id=t["vip "]), CompanyTag(company_id=acme.id, tag_id=t["vip "])])
        return t | {"ann": ann.id, "bob": bob.id, "acme": acme.id}


def live_tags() -> set[str]:
    with db.read_scope() as s:
        return set(s.execute(select(Tag.name).where(Tag.deleted_at.is_(None))).scalars())


def group_key(tags: dict, suffix: str) -> str:
    ids = "_".join(str(i) for i in sorted(tags[n] for n in ("VIP", "vip ", "V.I.P.")))
    return f"hyg_tag_group_{ids}_{suffix}"


def test_merging_a_near_duplicate_group_into_the_survivor(people, tags):
    at = tab("tags_tab", people[Role.MANAGER])
    survivor = next(s for s in at.selectbox if s.key.startswith(group_key(tags, "survivor")))
    assert survivor.value == tags["VIP"]  # the most used leads
    # The group's names, quoted so a trailing space shows; escaped markdown, not a code span showing backslashes.
    group = next(m.value for m in at.markdown if "“VIP”" in m.value)
    assert "“vip ”" in group and "“V\\.I\\.P\\.”" in group and "`" not in group
    click(at, group_key(tags, "merge"))
    assert live_tags() == {"VIP", "Lead"}
    with db.read_scope() as s:
        on_ann = s.execute(select(ContactTag.tag_id).where(ContactTag.contact_id == tags["ann"])).scalars().all()
        on_acme = s.execute(select(CompanyTag.tag_id).where(CompanyTag.company_id == tags["acme"])).scalars().all()
    assert on_ann == [tags["VIP"]] and on_acme == [tags["VIP"]]
    assert texts(at.toast) == ['Merged "vip ", "V\\.I\\.P\\." into "VIP": 1 contact, 1 company relinked']
    assert not [s for s in at.selectbox if s.key.startswith("hyg_tag_group_")]  # no group left


def test_merging_nothing_names_the_field(people, tags):
    at = tab("tags_tab", people[Role.ADMIN])
    next(m for m in at.multiselect if m.key.startswith(group_key(tags, "merged"))).set_value([])
    click(at, group_key(tags, "merge"))
    assert live_tags() == {"VIP", "vip ", "V.I.P.", "Lead"}
    assert any("choose at least one tag to merge" in e for e in texts(at.error))


def test_deleting_unused_tags(people, tags):
    at = tab("tags_tab", people[Role.ADMIN])
    assert set(frame_with(at, "tag")["tag"]) == {"V.I.P.", "Lead"}
    next(m for m in at.multiselect if m.key.startswith("hyg_tag_unused_tag_ids")).set_value([tags["Lead"]])
    click(at, "hyg_tag_delete")
    assert live_tags() == {"VIP", "vip ", "V.I.P."} and texts(at.toast) == ["Deleted 1 tag"]


# --- lists --------------------------------------------------------------------------------------------------------

@pytest.fixture
def newsletters(people) -> dict[str, int]:
    """A = {1, 2, 3}, B = {3, 4}: static contact lists for the same newsletter."""
    with db.session_scope() as s:
        folks = [Contact(first_name=f"P{i}") for i in range(4)]
        a, b = Segment(name="Newsletter A", kind="static"), Segment(name="Newsletter B", kind="static")
        s.add_all([*folks, a, b])
        s.flush()
        p = [x.id for x in folks]
        s.add_all(SegmentMember(segment_id=a.id, record_id=r) for r in p[:3])
        s.add_all(SegmentMember(segment_id=b.id, record_id=r) for r in p[2:])
        return {"a": a.id, "b": b.id}


def members(segment_id: int) -> int:
    with db.read_scope() as s:
        return len(s.execute(select(SegmentMember.record_id).where(SegmentMember.segment_id == segment_id)).all())


def test_merging_two_lists_then_reverting(people, newsletters):
    at = tab("lists_tab", people[Role.ADMIN])
    assert frame_with(at, "members")["members"].tolist() == [3, 2]
    at.selectbox(key="hyg_list_keep").set_value(newsletters["a"]).run()
    at.selectbox(key="hyg_list_merged").set_value(newsletters["b"]).run()
    assert any("Newsletter A** has 3 members" in m.value for m in at.markdown)
    click(at, "hyg_list_merge")
    assert members(newsletters["a"]) == 4 and stored(Segment, newsletters["b"]).deleted_at is not None
    assert "1 member of Newsletter B added to Newsletter A, which now has 4" in texts(at.success)[0]
    assert "Fewer than two static segments: nothing to merge." in texts(at.caption)
    click(tab("jobs_tab", people[Role.ADMIN]), "hyg_jobs_revert")
    assert members(newsletters["a"]) == 3 and stored(Segment, newsletters["b"]).deleted_at is None


def test_a_list_changed_meanwhile_is_a_conflict(people, newsletters):
    at = tab("lists_tab", people[Role.ADMIN])
    at.selectbox(key="hyg_list_keep").set_value(newsletters["a"]).run()
    with db.session_scope() as s:
        s.get(Segment, newsletters["b"]).version += 1
    click(at, "hyg_list_merge")
    assert any("changed by someone else" in e for e in texts(at.error))
    assert members(newsletters["a"]) == 3 and stored(Segment, newsletters["b"]).deleted_at is None


# --- the page -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", [Role.ADMIN, Role.MANAGER])
def test_the_hygiene_page_draws_every_tool_tab(people, role):
    at = signed_in(people[role]).run()
    at.switch_page(HYGIENE.path).run()
    no_exception(at)
    assert {"Stale contacts", "Incomplete records", "Formatting", "Tags", "Lists", "Job history"} <= {
        t.label for t in at.tabs}
    assert at.button(key="hyg_stale_find") and at.button(key="hyg_inc_find") and at.button(key="hyg_fmt_preview")
