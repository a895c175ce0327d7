"""Stale contacts: every kind of engagement and open work, the exact N-day boundary, counts, scope and rights; the
bulk archive and its exact revert (full table dumps), skipping or refusing contacts edited since."""
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from crm.audit import data_version
from crm.contacts import ContactInput, restore_contact, update_contact
from crm.db import read_scope, session_scope
from crm.errors import EditConflict, PermissionDenied, ValidationFailed
from crm.hygiene import stale
from crm.hygiene.jobs import list_jobs, revert_job
from crm.listing import ContactFilter, list_contacts
from crm.models import (
    Activity, AuditLog, BehaviorEvent, Contact, Deal, DealContact, HygieneJob, ListSubscriptionEvent, Order,
    SearchToken, SurveyResponse, Ticket,
)
from crm.segments.service import count_matching
from tests.factories import actor, make_user, stage_named
from tests.test_hygiene_formatting import table_state, values_only

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAYS = 30
CUTOFF = NOW - timedelta(days=DAYS)
JUST_BEFORE = CUTOFF - timedelta(microseconds=1)  # one microsecond too old: does not count


@pytest.fixture
def frozen(monkeypatch):
    """The listing's 'now' pinned, so the boundary is exact."""
    monkeypatch.setattr(stale, "utcnow", lambda: NOW)


def contact(s, name: str, *, owner_id=None, created=NOW - timedelta(days=400), **values) -> int:
    row = Contact(first_name=name, last_name="Test", owner_id=owner_id, created_at=created, **values)
    s.add(row)
    s.flush()
    return row.id


def deal(s, contact_id: int | None, *, status="open", closed_at=None, deleted=False) -> int:
    stage = stage_named(s, {"open": "Proposal", "won": "Closed won", "lost": "Closed lost"}[status])
    row = Deal(title="D", pipeline_id=stage.pipeline_id, stage_id=stage.id, status=status, amount=100,
               contact_id=contact_id, closed_at=closed_at, deleted_at=NOW if deleted else None)
    s.add(row)
    s.flush()
    return row.id


# Each engagement as (what it is, how to add it for a contact at a moment). A contact whose only engagement is at
# the cutoff is not stale; one whose only engagement is a microsecond earlier is.
ENGAGEMENTS = {
    "last_engaged_at": lambda s, c, at: s.get(Contact, c).__setattr__("last_engaged_at", at),
    "call": lambda s, c, at: s.add(Activity(kind="call", subject="Call", contact_id=c, occurred_at=at, done_at=at)),
    "note": lambda s, c, at: s.add(Activity(kind="note", subject="Note", contact_id=c, occurred_at=at)),
    "web visit": lambda s, c, at: s.add(BehaviorEvent(contact_id=c, kind="web_visit", occurred_at=at)),
    "email open": lambda s, c, at: s.add(BehaviorEvent(contact_id=c, kind="email_open", occurred_at=at)),
    "order": lambda s, c, at: s.add(Order(contact_id=c, ordered_at=at, total=5)),
    "ticket opened": lambda s, c, at: s.add(Ticket(contact_id=c, subject="T", opened_at=at, status="resolved",
                                                   resolved_at=at)),
    "ticket resolved": lambda s, c, at: s.add(Ticket(contact_id=c, subject="T", status="resolved",
                                                     opened_at=at - timedelta(days=90), resolved_at=at)),
    "survey": lambda s, c, at: s.add(SurveyResponse(contact_id=c, kind="nps", score=9, answered_at=at)),
    "subscription": lambda s, c, at: s.add(ListSubscriptionEvent(contact_id=c, list_name="News",
                                                                 action="subscribe", occurred_at=at)),
    "deal won": lambda s, c, at: deal(s, c, status="won", closed_at=at),
    "deal lost via link": lambda s, c, at: s.add(DealContact(deal_id=deal(s, None, status="lost", closed_at=at),
                                                             contact_id=c)),
}


def stale_names(engine, who, days=DAYS) -> set[str]:
    with read_scope(engine) as s:
        report = stale.stale_contacts(session=s, actor=who, days=days, page_size=500)
    assert report.total == len(report.rows)
    return set(report.rows["name"].str.removesuffix(" Test"))


@pytest.mark.parametrize("kind", sorted(ENGAGEMENTS))
def test_each_engagement_counts_from_the_cutoff_inclusive(engine, admin, frozen, kind):
    with session_scope(engine) as s:
        on_cutoff, too_old = contact(s, "OnCutoff"), contact(s, "TooOld")
        ENGAGEMENTS[kind](s, on_cutoff, CUTOFF)
        ENGAGEMENTS[kind](s, too_old, JUST_BEFORE)
    assert stale_names(engine, admin) == {"TooOld"}


def test_open_work_protects_whatever_its_dates_and_deleted_things_do_not(engine, admin, frozen):
    long_ago = NOW - timedelta(days=300)
    with session_scope(engine) as s:
        deal(s, contact(s, "OpenDeal"))
        s.add(DealContact(deal_id=deal(s, None), contact_id=contact(s, "LinkedOpenDeal")))
        s.add(Ticket(contact_id=contact(s, "OpenTicket"), subject="T", opened_at=long_ago, status="pending"))
        s.add(Activity(kind="task", subject="Follow up", contact_id=contact(s, "OpenTask"), due_at=long_ago))
        # Boundaries: done tasks, deleted deals and deleted activities are not open work or engagement.
        s.add(Activity(kind="task", subject="Old", contact_id=contact(s, "DoneTask"), due_at=long_ago,
                       done_at=long_ago))
        deal(s, contact(s, "DeletedDeal"), deleted=True)
        s.add(Activity(kind="call", subject="Call", contact_id=contact(s, "DeletedCall"), occurred_at=NOW,
                       deleted_at=NOW))
        s.add(Order(contact_id=contact(s, "DeletedOrder"), ordered_at=NOW, total=1, deleted_at=NOW))
    assert stale_names(engine, admin) == {"DoneTask", "DeletedDeal", "DeletedCall", "DeletedOrder"}


def test_new_deleted_and_quietly_edited_contacts(engine, admin, frozen):
    with session_scope(engine) as s:
        contact(s, "Young", created=CUTOFF)  # created at the cutoff: not old enough to be stale
        contact(s, "Old", created=JUST_BEFORE)
        contact(s, "Gone", deleted_at=NOW - timedelta(days=1))
        contact(s, "Edited", updated_at=NOW)  # an edit is maintenance, not engagement
    assert stale_names(engine, admin) == {"Old", "Edited"}


def test_counts_by_owner_and_stage_and_a_page_with_the_last_engagement(engine, admin, frozen):
    ann = make_user(engine, "rep", name="Ann Rep")
    with session_scope(engine) as s:
        a = contact(s, "A", owner_id=ann, lifecycle_stage="customer")
        contact(s, "B", owner_id=ann)
        contact(s, "C")
        s.add(BehaviorEvent(contact_id=a, kind="web_visit", occurred_at=NOW - timedelta(days=45)))
        s.add(Order(contact_id=a, ordered_at=NOW - timedelta(days=40), total=5))  # the later one is shown
    with read_scope(engine) as s:
        report = stale.stale_contacts(session=s, actor=admin, days=DAYS, page_size=2)
    assert report.total == 3 and report.by_owner == {"Ann Rep": 2, "(no owner)": 1}
    assert report.by_stage == {"lead": 2, "customer": 1}
    assert list(report.rows["name"]) == ["A Test", "B Test"]  # first page of two, by id
    first = report.rows.iloc[0]
    assert pd_time(first["last_engaged_at"]) == NOW - timedelta(days=40) and pd_time(report.rows.iloc[1][
        "last_engaged_at"]) is None


def pd_time(value):
    """A timestamp from a frame as an aware datetime (databases hand back naive UTC), None for a missing one."""
    if value is None or value != value:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def test_days_and_choices_must_be_sensible(engine, admin):
    with read_scope(engine) as s:
        for days in (0, -5, 40_000, 2.5):
            with pytest.raises(ValidationFailed, match="days"):
                stale.stale_contacts(session=s, actor=admin, days=days)
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match="at most 10,000"):
        stale.archive_stale_contacts(session=s, actor=admin, days=30, contact_ids=list(range(10_001)))


def test_rights_and_scope_a_manager_cleans_only_the_team(engine):
    manager = actor(engine, make_user(engine, "manager", team="East"))
    east = make_user(engine, "rep", team="East")
    west = make_user(engine, "rep", team="West")
    rep, marketer = actor(engine, east), actor(engine, make_user(engine, "marketer"))
    with session_scope(engine) as s:
        contact(s, "Mine", owner_id=manager.id)
        contact(s, "Team", owner_id=east)
        contact(s, "Other", owner_id=west)
        contact(s, "Nobody")
    assert stale_names(engine, manager, days=1) == {"Mine", "Team"}
    for who in (rep, marketer):
        with read_scope(engine) as s, pytest.raises(PermissionDenied):
            stale.stale_contacts(session=s, actor=who, days=1)
        with session_scope(engine) as s, pytest.raises(PermissionDenied):
            stale.archive_stale_contacts(session=s, actor=who, days=1)
    with session_scope(engine) as s:
        result = stale.archive_stale_contacts(session=s, actor=manager, days=1)
    assert result.archived == 2 and stale_names(engine, actor(engine, make_user(engine, "admin")), days=1) == {
        "Other", "Nobody"}


# --- archive and revert -------------------------------------------------------------------------------------------

TABLES = (Contact, SearchToken, Activity, BehaviorEvent)


def archive_world(engine) -> dict[str, int]:
    """Three quiet contacts (one tagged by a visit long ago) and one active one, all with search tokens."""
    from crm.search import reindex

    recent = datetime.now(UTC) - timedelta(days=2)
    with session_scope(engine) as s:
        ids = {n: contact(s, n, created=datetime.now(UTC) - timedelta(days=400), email=f"{n.lower()}@example.com")
               for n in ("Quiet", "Silent", "Still", "Busy")}
        s.add(BehaviorEvent(contact_id=ids["Quiet"], kind="web_visit", occurred_at=recent - timedelta(days=200)))
        s.add(BehaviorEvent(contact_id=ids["Busy"], kind="web_visit", occurred_at=recent))
        reindex(s, "contact", ids.values())
    return ids


def visible(engine, who) -> set[str]:
    with read_scope(engine) as s:
        page = list_contacts(session=s, actor=who, filters=ContactFilter(), page_size=500)
    return {r.name.removesuffix(" Test") for r in page.rows}


def test_archive_then_revert_restores_every_row_exactly(engine, admin):
    ids = archive_world(engine)
    before = table_state(engine, *TABLES)
    with read_scope(engine) as s:
        cached = data_version(s)
    with session_scope(engine) as s:
        result = stale.archive_stale_contacts(session=s, actor=admin, days=90)
    assert (result.archived, result.skipped) == (3, 0)
    with read_scope(engine) as s:
        assert data_version(s) > cached  # pages caching on the data version read again
    assert visible(engine, admin) == {"Busy"}  # archived contacts leave lists, search and segments as deleted do
    with read_scope(engine) as s:
        found = list_contacts(session=s, actor=admin, filters=ContactFilter(query="quiet@example.com"))
        assert found.total == 0 and count_matching(session=s, actor=admin, definition={"groups": []}) == 1
    with read_scope(engine) as s:
        archived = s.execute(select(Contact).where(Contact.id == ids["Quiet"])).scalar_one()
        trail = s.execute(select(AuditLog.action, AuditLog.field, AuditLog.record_version, AuditLog.context)
                          .where(AuditLog.record_id == ids["Quiet"], AuditLog.entity == "contact")).all()
        jobs = list_jobs(session=s, actor=admin)
    assert archived.deleted_at is not None and archived.version == 2
    assert trail == [("archive", "deleted_at", 2, f"hygiene:{result.job_id}")]
    assert [(j.kind, j.record_count, j.status) for j in jobs] == [("archive", 3, "done")]
    with session_scope(engine) as s:
        back = revert_job(session=s, actor=admin, job_id=result.job_id)
    assert (back.restored, back.skipped_count) == (3, 0)
    after = table_state(engine, *TABLES)
    assert values_only(after) == values_only(before)
    with read_scope(engine) as s:
        restored = s.get(Contact, ids["Quiet"])
        job = s.get(HygieneJob, result.job_id)
        actions = s.execute(select(AuditLog.action).where(AuditLog.record_id == ids["Quiet"],
                                                          AuditLog.entity == "contact").order_by(AuditLog.id)).all()
    assert restored.version == 3  # versions only move forward: open forms see the revert as a change
    assert [a for (a,) in actions] == ["archive", "unarchive"] and job.status == "reverted"
    assert visible(engine, admin) == {"Quiet", "Silent", "Still", "Busy"}
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match="already reverted"):
        revert_job(session=s, actor=admin, job_id=result.job_id)


def test_archive_only_chosen_contacts_that_are_still_stale(engine, admin):
    ids = archive_world(engine)
    with session_scope(engine) as s:
        result = stale.archive_stale_contacts(session=s, actor=admin, days=90,
                                              contact_ids=[ids["Quiet"], ids["Busy"]])
    assert (result.archived, result.skipped) == (1, 1)  # Busy is not stale, so it is skipped
    assert visible(engine, admin) == {"Silent", "Still", "Busy"}


def test_revert_refuses_or_skips_contacts_changed_since(engine, admin):
    ids = archive_world(engine)
    with session_scope(engine) as s:
        job_id = stale.archive_stale_contacts(session=s, actor=admin, days=90).job_id
    with session_scope(engine) as s:  # someone restores one contact by hand, and edits it
        restore_contact(session=s, actor=admin, contact_id=ids["Silent"], seen_version=2)
        update_contact(session=s, actor=admin, contact_id=ids["Silent"], data=ContactInput(job_title="CFO"),
                       seen_version=3)
    with session_scope(engine) as s, pytest.raises(EditConflict) as refused:
        revert_job(session=s, actor=admin, job_id=job_id)
    assert f"contact {ids['Silent']}: edited by" in refused.value.message and "job_title" in refused.value.message
    assert visible(engine, admin) == {"Silent", "Busy"}  # nothing was reverted
    with session_scope(engine) as s:
        result = revert_job(session=s, actor=admin, job_id=job_id, skip_edited=True)
    assert (result.restored, result.skipped_count) == (2, 1)
    assert [x.record_id for x in result.skipped] == [ids["Silent"]] and "deleted_at" in result.skipped[0].reason
    with read_scope(engine) as s:
        silent = s.get(Contact, ids["Silent"])
    assert (silent.job_title, silent.version) == ("CFO", 4)  # the later edit is untouched
    assert visible(engine, admin) == {"Quiet", "Silent", "Still", "Busy"}


def test_only_the_author_or_an_admin_reverts(engine, admin):
    manager = actor(engine, make_user(engine, "manager", team="East"))
    other = actor(engine, make_user(engine, "manager", team="East"))
    with session_scope(engine) as s:
        contact(s, "Mine", owner_id=manager.id, created=datetime.now(UTC) - timedelta(days=10))
    with session_scope(engine) as s:
        job_id = stale.archive_stale_contacts(session=s, actor=manager, days=1).job_id
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        revert_job(session=s, actor=other, job_id=job_id)
    with session_scope(engine) as s:
        assert revert_job(session=s, actor=admin, job_id=job_id).restored == 1
