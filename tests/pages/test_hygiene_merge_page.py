"""The data hygiene page's Duplicates and Merge log tabs: stored pairs side by side, dismiss and reopen, a scan in
the background, the side-by-side merge (a chosen value, the survivor switched, related records moved), undo from
the log, conflicts and refusals in words, and who may see what."""
import pytest
from sqlmodel import select

from crm import db
from crm.activities import ActivityInput, log_activity
from crm.companies import create_company
from crm.contacts import create_contact, update_contact
from crm.customfields import create_field_def, get_values, set_values
from crm.deals import DealInput, create_deal
from crm.hygiene.duplicates import scan_duplicates
from crm.models import (
    Activity, ActivityKind, Company, CompanyInput, Contact, ContactInput, CustomFieldDefBase, Deal,
    DuplicateCandidate, MergeLog, Role,
)
from crm.permissions import load_actor
from tests.pages.apptest import no_exception, signed_in
from tests.pages.test_admin import errors, fill
from ui import hygiene_merge_scan
from ui.navigation import HYGIENE


def open_hygiene(user_id: int):
    at = signed_in(user_id).run()
    at.switch_page(HYGIENE.path).run()
    no_exception(at)
    return at


def _contact(s, who, owner: int, **fields) -> int:
    return create_contact(session=s, actor=who, data=ContactInput(owner_id=owner, **fields)).id


@pytest.fixture
def planted(people, crm_db) -> dict[str, int]:
    """Two Ann Archers of the rep (East, the manager's team), the second with a call and a deal; two Bob Bakers of
    the admin (no team: the manager may not read them); then one scan stores both pairs."""
    with db.session_scope() as s:
        admin = load_actor(s, people[Role.ADMIN])
        rep = people[Role.REP]
        ids = {"ann": _contact(s, admin, rep, first_name="Ann", last_name="Archer", email="ann@mail.example",
                               city="London"),
               "ann2": _contact(s, admin, rep, first_name="Ann", last_name="Archer", email="ann@mail.example",
                                city="Paris", job_title="Buyer"),
               "bob": _contact(s, admin, admin.id, first_name="Bob", last_name="Baker", email="bob@mail.example"),
               "bob2": _contact(s, admin, admin.id, first_name="Bob", last_name="Baker", email="bob@mail.example")}
        ids["call"] = log_activity(session=s, actor=admin, data=ActivityInput(
            kind=ActivityKind.CALL, subject="Asked for a quote", contact_id=ids["ann2"])).id
        ids["deal"] = create_deal(session=s, actor=admin, data=DealInput(
            title="Archer renewal", amount=1200, contact_id=ids["ann2"], owner_id=rep)).id
    scan_duplicates(engine=crm_db, actor=load_actor_of(people[Role.ADMIN]), entity="contact")
    return ids


def load_actor_of(user_id: int):
    with db.read_scope() as s:
        return load_actor(s, user_id)


def pair_table(at):
    return next(df.value for df in at.dataframe if "Reasons" in df.value.columns)


def pair_status(a_id: int, b_id: int) -> str:
    with db.read_scope() as s:
        return s.exec(select(DuplicateCandidate.status).where(DuplicateCandidate.a_id == a_id,
                                                              DuplicateCandidate.b_id == b_id)).one()


def contact(contact_id: int) -> Contact:
    with db.read_scope() as s:
        return s.get(Contact, contact_id)


def pointing_at(model, contact_id: int) -> list[int]:
    with db.read_scope() as s:
        return list(s.exec(select(model.id).where(model.contact_id == contact_id)).all())


def test_an_admin_sees_every_stored_pair_with_both_records_side_by_side(planted, people):
    at = open_hygiene(people[Role.ADMIN])
    table = pair_table(at)
    assert list(table["Record A"]) == [f"#{planted['ann']} Ann Archer", f"#{planted['bob']} Bob Baker"]
    assert list(table["Record B"]) == [f"#{planted['ann2']} Ann Archer", f"#{planted['bob2']} Bob Baker"]
    assert list(table["A details"]) == ["ann@mail.example", "bob@mail.example"]
    assert list(table["Score"]) == [1.0, 1.0]
    assert "same email" in table["Reasons"][0]
    assert "Last scan of contacts: 20" in " ".join(c.value for c in at.caption)


def test_dismiss_hides_a_pair_and_reopen_brings_it_back(planted, people):
    at = open_hygiene(people[Role.ADMIN])
    at = at.button(key="hyg_dup_dismiss").click().run()
    no_exception(at)
    assert pair_status(planted["ann"], planted["ann2"]) == "dismissed"
    assert list(pair_table(at)["Record A"]) == [f"#{planted['bob']} Bob Baker"]
    assert [t.value for t in at.toast] == [f"Pair {_pair_id(planted)} dismissed: later scans leave it alone"]
    at = at.radio(key="hyg_dup_status").set_value("dismissed").run()
    assert list(pair_table(at)["Record A"]) == [f"#{planted['ann']} Ann Archer"]
    at = at.button(key="hyg_dup_reopen").click().run()
    no_exception(at)
    assert pair_status(planted["ann"], planted["ann2"]) == "open"


def _pair_id(planted) -> int:
    with db.read_scope() as s:
        return s.exec(select(DuplicateCandidate.id).where(DuplicateCandidate.a_id == planted["ann"])).one()


def test_a_stale_dismiss_is_refused_with_who_changed_it(planted, people):
    at = open_hygiene(people[Role.ADMIN])
    with db.session_scope() as s:  # someone else dismisses the pair first
        from crm.hygiene.duplicates import dismiss_duplicate
        dismiss_duplicate(session=s, actor=load_actor(s, people[Role.MANAGER]), pair_id=_pair_id(planted),
                          seen_version=1)
    at = at.button(key="hyg_dup_dismiss").click().run()
    no_exception(at)
    assert len(errors(at)) == 1 and "Max Manager" in errors(at)[0]


def _merge_key(survivor: int, merged: int, field: str) -> str:
    return f"hyg_merge_contact_{survivor}_{merged}_{field}"


def test_merge_keeps_the_chosen_values_and_moves_related_records(planted, people):
    ann, ann2 = planted["ann"], planted["ann2"]
    at = open_hygiene(people[Role.ADMIN])
    at = at.radio(key=f"hyg_merge_keep_contact_{ann}_{ann2}").set_value(ann2).run()  # the newer record survives
    assert "Nothing else points at the merged record" in " ".join(c.value for c in at.caption)  # Ann #1 has none
    fill(at, **{_merge_key(ann2, ann, "city"): "merged", _merge_key(ann2, ann, "job_title"): "merged"})
    at = at.button(key="hyg_merge_go").click().run()
    no_exception(at)
    assert errors(at) == []
    survivor, merged = contact(ann2), contact(ann)
    assert (survivor.city, survivor.job_title, survivor.deleted_at) == ("London", None, None)  # both from Ann #1
    assert merged.deleted_at is not None
    assert pointing_at(Activity, ann2) == [planted["call"]] and pointing_at(Deal, ann2) == [planted["deal"]]
    assert pair_status(ann, ann2) == "merged"
    assert [t.value for t in at.toast] == [f"Merged \\#{ann} into \\#{ann2} Ann Archer"]
    assert [link.label for link in at.get("page_link")] == ["Open Ann Archer"]


def test_merge_moves_the_merged_records_relations_to_the_survivor(planted, people):
    ann, ann2 = planted["ann"], planted["ann2"]
    at = open_hygiene(people[Role.ADMIN])  # Ann #1 survives by default: Ann #2's call and deal move to her
    related = next(df.value for df in at.dataframe if "Related records" in df.value.columns)
    moving = dict(zip(related["Related records"], related["Move to the survivor"]))
    assert moving["activities"] == 1 and moving["deals"] == 1
    at = at.button(key="hyg_merge_go").click().run()
    assert errors(at) == []
    assert pointing_at(Activity, ann) == [planted["call"]] and pointing_at(Deal, ann) == [planted["deal"]]
    assert pointing_at(Activity, ann2) == [] and contact(ann2).deleted_at is not None
    assert contact(ann).city == "London" and contact(ann).job_title == "Buyer"  # empty on #1: #2's by default


def test_undo_from_the_merge_log_restores_both_records_and_their_relations(planted, people):
    ann, ann2 = planted["ann"], planted["ann2"]
    before = contact(ann), contact(ann2)
    at = open_hygiene(people[Role.ADMIN])
    at = at.button(key="hyg_merge_go").click().run()
    with db.read_scope() as s:
        merge_id = s.exec(select(MergeLog.id)).one()
    assert any(f"**Merge {merge_id}**" in m.value for m in at.markdown)
    at = at.button(key=f"hyg_log_undo_{merge_id}").click().run()
    no_exception(at)
    assert errors(at) == []
    assert (contact(ann), contact(ann2)) == before  # every column, versions included
    assert pointing_at(Activity, ann2) == [planted["call"]] and pointing_at(Deal, ann2) == [planted["deal"]]
    assert pair_status(ann, ann2) == "open"
    with db.read_scope() as s:
        assert s.get(MergeLog, merge_id).undone_at is not None
    assert f"hyg_log_undo_{merge_id}" not in [b.key for b in at.button]
    assert [t.value for t in at.toast][-1].startswith(f"Merge {merge_id} undone")


def test_a_merge_after_someone_else_edited_shows_the_conflict_and_changes_nothing(planted, people):
    ann2 = planted["ann2"]
    at = open_hygiene(people[Role.ADMIN])
    with db.session_scope() as s:  # the rep edits Ann #2 while the admin looks at the preview
        update_contact(session=s, actor=load_actor(s, people[Role.REP]), contact_id=ann2,
                       data=ContactInput(first_name="Ann", last_name="Archer", email="ann@mail.example", city="Rome",
                                         job_title="Buyer", owner_id=people[Role.REP]), seen_version=1)
    at = at.button(key="hyg_merge_go").click().run()
    no_exception(at)
    assert len(errors(at)) == 1 and "Rita Rep" in errors(at)[0] and "city" in errors(at)[0].lower()
    assert contact(ann2).deleted_at is None and pointing_at(Activity, ann2) == [planted["call"]]
    with db.read_scope() as s:
        assert s.exec(select(MergeLog)).all() == []
    at = at.button(key="hyg_merge_go_reload").click().run()  # the preview now shows Rome: merging it works
    at = at.button(key="hyg_merge_go").click().run()
    assert errors(at) == [] and contact(ann2).deleted_at is not None


def test_an_undo_that_is_no_longer_exact_is_refused_with_the_reason(planted, people):
    ann, ann2 = planted["ann"], planted["ann2"]
    at = open_hygiene(people[Role.ADMIN])
    at = at.button(key="hyg_merge_go").click().run()
    with db.session_scope() as s:  # the survivor is edited after the merge
        survivor = s.get(Contact, ann)
        update_contact(session=s, actor=load_actor(s, people[Role.REP]), contact_id=ann, seen_version=survivor.version,
                       data=ContactInput(first_name="Annie", last_name="Archer", email="ann@mail.example",
                                         owner_id=people[Role.REP]))
        merge_id = s.exec(select(MergeLog.id)).one()
    at = at.button(key=f"hyg_log_undo_{merge_id}").click().run()
    no_exception(at)
    assert len(errors(at)) == 1 and "cannot be undone exactly" in errors(at)[0] and "Rita Rep" in errors(at)[0]
    assert contact(ann2).deleted_at is not None  # nothing was changed


def test_a_manager_sees_and_merges_only_their_teams_records(planted, people):
    at = open_hygiene(people[Role.MANAGER])
    assert list(pair_table(at)["Record A"]) == [f"#{planted['ann']} Ann Archer"]  # not the admin's Bob Bakers
    at.number_input(key="hyg_merge_first").set_value(planted["bob"])
    at = at.number_input(key="hyg_merge_second").set_value(planted["bob2"]).run()
    no_exception(at)
    assert any("may not" in e or "not allowed" in e.lower() for e in errors(at)), errors(at)
    at = at.button(key="hyg_merge_go").click().run()  # the Ann pair's form is the manager's to use
    assert contact(planted["ann2"]).deleted_at is not None
    with db.session_scope() as s:  # a merge of the admin's records stays out of the manager's log
        from crm.hygiene.merge import merge_preview, merge_records
        admin = load_actor(s, people[Role.ADMIN])
        p = merge_preview(session=s, actor=admin, entity="contact", survivor_id=planted["bob"],
                          merged_id=planted["bob2"])
        merge_records(session=s, actor=admin, entity="contact", survivor_id=planted["bob"],
                      merged_id=planted["bob2"], choices={}, seen_versions=p.seen_versions)
    at.run()
    log = [m.value for m in at.markdown if m.value.startswith("**Merge ")]
    assert len(log) == 1 and "Ann Archer" in log[0]


def test_a_rep_cannot_open_the_page(people):
    at = signed_in(people[Role.REP]).run()
    with pytest.raises(ValueError, match="navigation page"):
        at.switch_page(HYGIENE.path)


def test_a_scan_runs_in_the_background_and_its_pairs_are_listed(people):
    with db.session_scope() as s:
        admin = load_actor(s, people[Role.ADMIN])
        first = _contact(s, admin, admin.id, first_name="Cleo", last_name="Carter", email="cleo@mail.example")
        second = _contact(s, admin, admin.id, first_name="Cleo", last_name="Carter", email="CLEO@mail.example")
    at = open_hygiene(people[Role.ADMIN])
    assert not [df for df in at.dataframe if "Reasons" in df.value.columns]
    at = at.button(key="hyg_dup_scan").click().run()
    no_exception(at)
    scan = hygiene_merge_scan.current("contact")
    assert scan is not None and scan.process.wait(timeout=120) == 0, scan.output()
    at.run()
    assert list(pair_table(at)["Record B"]) == [f"#{second} Cleo Carter"]
    assert pair_status(first, second) == "open"
    assert any(s.value.startswith("Scan done in") and "1 new" in s.value for s in at.success)


def test_two_companies_no_scan_paired_are_merged_by_id(people):
    with db.session_scope() as s:
        admin = load_actor(s, people[Role.ADMIN])
        acme = create_company(session=s, actor=admin, data=CompanyInput(name="Acme GmbH", domain="acme.example",
                                                                         industry="Tools")).id
        other = create_company(session=s, actor=admin, data=CompanyInput(name="ACME AG", country="DE")).id
        person = _contact(s, admin, admin.id, first_name="Hans", last_name="Huber", company_id=other)
    at = open_hygiene(people[Role.ADMIN])
    at = at.radio(key="hyg_dup_entity").set_value("company").run()
    at.number_input(key="hyg_merge_first").set_value(other)
    at = at.number_input(key="hyg_merge_second").set_value(acme).run()
    fill(at, **{f"hyg_byid_company_{acme}_{other}_name": "merged"})
    at = at.button(key="hyg_byid_go").click().run()
    no_exception(at)
    assert errors(at) == []
    with db.read_scope() as s:
        kept, gone = s.get(Company, acme), s.get(Company, other)
        assert (kept.name, kept.domain, kept.country, kept.industry) == ("ACME AG", "acme.example", "DE", "Tools")
        assert gone.deleted_at is not None and s.get(Contact, person).company_id == acme


def test_a_listed_pair_and_the_same_two_records_typed_by_id_have_separate_forms(planted, people):
    at = open_hygiene(people[Role.ADMIN])
    at.number_input(key="hyg_merge_first").set_value(planted["ann2"])
    at = at.number_input(key="hyg_merge_second").set_value(planted["ann"]).run()
    no_exception(at)
    fill(at, **{_merge_key(planted["ann"], planted["ann2"], "city").replace("hyg_merge_", "hyg_byid_"): "merged"})
    at = at.button(key="hyg_byid_go").click().run()
    assert errors(at) == [] and contact(planted["ann"]).city == "Paris"
    assert contact(planted["ann2"]).deleted_at is not None


def test_a_custom_field_the_manager_may_not_edit_is_shown_locked_on_the_survivors_value(planted, people):
    with db.session_scope() as s:
        admin = load_actor(s, people[Role.ADMIN])
        create_field_def(session=s, actor=admin, data=CustomFieldDefBase(
            entity="contact", key="vetted", label="Vetted", field_type="checkbox", view_roles=["admin", "manager"],
            edit_roles=["admin"]))
        set_values(session=s, actor=admin, entity="contact", record_id=planted["ann2"], values={"vetted": True})
    at = open_hygiene(people[Role.MANAGER])
    vetted = field_radio(at, _merge_key(planted["ann"], planted["ann2"], "cf__vetted"))
    assert (vetted.value, vetted.disabled, vetted.options) == ("survivor", True, ["(empty)", "yes"])
    at = at.button(key="hyg_merge_go").click().run()
    assert errors(at) == []
    with db.read_scope() as s:
        assert get_values(session=s, actor=admin, entity="contact", record_id=planted["ann"]).get("vetted") is None


def field_radio(at, key: str):
    """A field's radio in the merge form, whatever its generation suffix (`__g<n>`)."""
    return next(r for r in at.radio if r.key and r.key.rsplit("__g", 1)[0] == key)
