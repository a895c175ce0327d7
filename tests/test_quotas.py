"""Quotas per user or team and period: create, edit, conflicts, duplicates, validation, rights, audit, year fill."""
import threading
from datetime import date

import pytest
from sqlmodel import select

from crm.db import read_scope, session_scope
from crm.errors import EditConflict, NotFound, PermissionDenied, ValidationFailed
from crm.models import AuditLog, Quota, UserUpdate
from crm.quotas import delete_quota, list_quotas, quota_periods, save_quota, set_quotas_for_year
from crm.users import update_user
from tests.factories import actor, make_team, make_user

Q1 = dict(period_start=date(2025, 1, 1), period_end=date(2025, 3, 31))
Q2 = dict(period_start=date(2025, 4, 1), period_end=date(2025, 6, 30))


@pytest.fixture
def ada(engine):
    return actor(engine, make_user(engine, "admin", name="Ada"))


def audit_rows(engine, quota_id: int) -> list[tuple]:
    with read_scope(engine) as s:
        rows = s.exec(select(AuditLog).where(AuditLog.entity == "quota", AuditLog.record_id == quota_id)
                      .order_by(AuditLog.id)).all()
        return [(r.action, r.field, r.old_value, r.new_value, r.record_version, r.context) for r in rows]


def test_admin_sets_quotas_for_a_user_and_a_team_and_lists_them_with_names(engine, ada):
    rita = make_user(engine, "rep", name="Rita", team="East")
    east = make_team(engine, "East")
    with session_scope(engine) as s:
        mine = save_quota(session=s, actor=ada, user_id=rita, amount=50_000, **Q1)
        team = save_quota(session=s, actor=ada, team_id=east, amount=200_000, **Q1)
    assert (mine.owner_kind, mine.owner_name, mine.amount, mine.version) == ("user", "Rita", 50_000.0, 1)
    assert (team.owner_kind, team.owner_name, team.team_id, team.user_id) == ("team", "East", east, None)
    with read_scope(engine) as s:
        listed = list_quotas(session=s)
    assert [(q.owner_name, q.amount) for q in listed] == [("East", 200_000.0), ("Rita", 50_000.0)]
    assert set(audit_rows(engine, mine.id)) == {
        ("create", "user_id", None, str(rita), 1, None), ("create", "period_start", None, "2025-01-01", 1, None),
        ("create", "period_end", None, "2025-03-31", 1, None), ("create", "amount", None, "50000.0", 1, None)}


def test_list_filters_by_overlapping_period_and_owner(engine, ada):
    rita, sam = make_user(engine, "rep", name="Rita"), make_user(engine, "rep", name="Sam")
    east = make_team(engine, "East")
    with session_scope(engine) as s:
        for owner in (dict(user_id=rita), dict(user_id=sam), dict(team_id=east)):
            save_quota(session=s, actor=ada, amount=1, **owner, **Q1)
        save_quota(session=s, actor=ada, user_id=rita, amount=2, **Q2)
    with read_scope(engine) as s:
        def periods(**filters):
            return [(q.owner_name, q.period_start.month) for q in list_quotas(session=s, **filters)]

        assert periods(user_id=rita) == [("Rita", 1), ("Rita", 4)]
        assert periods(team_id=east) == [("East", 1)]
        # Overlap, inclusive at both ends: Q1 ends on 31 March, Q2 starts on 1 April.
        assert periods(period_from=date(2025, 3, 31), period_to=date(2025, 3, 31)) == [
            ("East", 1), ("Rita", 1), ("Sam", 1)]
        assert periods(period_from=date(2025, 4, 1)) == [("Rita", 4)]
        assert periods(period_to=date(2024, 12, 31)) == []


def test_edit_changes_the_quota_and_audits_each_field(engine, ada):
    rita = make_user(engine, "rep", name="Rita")
    with session_scope(engine) as s:
        quota = save_quota(session=s, actor=ada, user_id=rita, amount=50_000, **Q1)
    with session_scope(engine) as s:
        edited = save_quota(session=s, actor=ada, user_id=rita, amount=60_000, period_start=date(2025, 1, 1),
                            period_end=date(2025, 1, 31), quota_id=quota.id, seen_version=1)
    assert (edited.amount, edited.period_end, edited.version) == (60_000.0, date(2025, 1, 31), 2)
    assert [r for r in audit_rows(engine, quota.id) if r[0] == "update"] == [
        ("update", "period_end", "2025-03-31", "2025-01-31", 2, None),
        ("update", "amount", "50000.0", "60000.0", 2, None)]
    with session_scope(engine) as s:  # saving the same values again changes nothing, not even the version
        same = save_quota(session=s, actor=ada, user_id=rita, amount=60_000, period_start=date(2025, 1, 1),
                          period_end=date(2025, 1, 31), quota_id=quota.id, seen_version=2)
    assert same.version == 2 and len(audit_rows(engine, quota.id)) == 6


def test_a_quota_can_move_from_a_user_to_a_team(engine, ada):
    rita, east = make_user(engine, "rep", name="Rita"), make_team(engine, "East")
    with session_scope(engine) as s:
        quota = save_quota(session=s, actor=ada, user_id=rita, amount=10, **Q1)
        moved = save_quota(session=s, actor=ada, team_id=east, amount=10, quota_id=quota.id, seen_version=1, **Q1)
    assert (moved.owner_kind, moved.owner_name, moved.user_id, moved.team_id) == ("team", "East", None, east)


def test_a_stale_edit_says_who_changed_what(engine, ada):
    rita = make_user(engine, "rep", name="Rita")
    max_ = actor(engine, make_user(engine, "admin", name="Max"))
    with session_scope(engine) as s:
        quota = save_quota(session=s, actor=ada, user_id=rita, amount=50_000, **Q1)
    with session_scope(engine) as s:
        save_quota(session=s, actor=max_, user_id=rita, amount=55_000, quota_id=quota.id, seen_version=1, **Q1)
    with session_scope(engine) as s, pytest.raises(EditConflict, match="Max changed amount") as raised:
        save_quota(session=s, actor=ada, user_id=rita, amount=70_000, quota_id=quota.id, seen_version=1, **Q1)
    assert raised.value.current_version == 2
    with session_scope(engine) as s, pytest.raises(EditConflict):
        delete_quota(session=s, actor=ada, quota_id=quota.id, seen_version=1)
    with read_scope(engine) as s:
        assert [q.amount for q in list_quotas(session=s)] == [55_000.0]  # nothing overwritten, nothing deleted


def test_one_quota_per_owner_and_period_names_the_field(engine, ada):
    rita, sam = make_user(engine, "rep", name="Rita"), make_user(engine, "rep", name="Sam")
    east = make_team(engine, "East")
    with session_scope(engine) as s:
        save_quota(session=s, actor=ada, user_id=rita, amount=1, **Q1)
        save_quota(session=s, actor=ada, team_id=east, amount=1, **Q1)
        other = save_quota(session=s, actor=ada, user_id=rita, amount=1, **Q2)
        save_quota(session=s, actor=ada, user_id=sam, amount=1, **Q1)  # another owner, the same period: fine
    # One owner's periods never overlap: a monthly and a quarterly target for the same weeks would be ambiguous.
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match="which overlaps this one"):
        save_quota(session=s, actor=ada, user_id=rita, amount=1, period_start=date(2025, 1, 1),
                   period_end=date(2025, 1, 31))
    # The table's unique constraint cannot catch these (user_id or team_id is always NULL): the use case does.
    for owner in (dict(user_id=rita), dict(team_id=east)):
        with session_scope(engine) as s, pytest.raises(ValidationFailed, match="already has a quota") as raised:
            save_quota(session=s, actor=ada, amount=2, **owner, **Q1)
        assert raised.value.field == "period_start"
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match="Rita already has a quota from 2025-01-01"):
        save_quota(session=s, actor=ada, user_id=rita, amount=2, quota_id=other.id, seen_version=1, **Q1)
    with read_scope(engine) as s:
        assert len(s.exec(select(Quota)).all()) == 4


def test_writers_racing_for_the_same_period_store_one_quota(engine, ada):
    """The owner's row lock makes the duplicate check hold under concurrency on PostgreSQL too."""
    east = make_team(engine, "East")
    start, outcomes = threading.Barrier(4), []

    def save(amount: int) -> None:
        start.wait()
        try:
            with session_scope(engine) as s:
                save_quota(session=s, actor=ada, team_id=east, amount=amount, **Q1)
            outcomes.append("saved")
        except ValidationFailed as exc:
            outcomes.append(exc.field)

    workers = [threading.Thread(target=save, args=(n,)) for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(outcomes) == ["period_start"] * 3 + ["saved"]
    with read_scope(engine) as s:
        assert len(list_quotas(session=s, team_id=east)) == 1


@pytest.mark.parametrize("change, field, message", [
    (dict(user_id=None), "owner", "exactly one"),  # neither a user nor a team
    (dict(team_id="east"), "owner", "exactly one"),  # both
    (dict(user_id=10_000), "user_id", "does not exist"),
    (dict(user_id=None, team_id=10_000), "team_id", "does not exist"),
    (dict(user_id="gone"), "user_id", "Gone is not active"),
    (dict(period_end=date(2024, 12, 31)), "period_end", "before it starts"),  # one day too early
    (dict(period_start=None), "period_start", "first day"),
    (dict(amount=-0.01), "amount", "zero or more"),
    (dict(amount=float("nan")), "amount", "zero or more"),
    (dict(amount=float("inf")), "amount", "zero or more"),
    (dict(amount="lots"), "amount", "not a number"),
])
def test_invalid_quotas_name_the_field(engine, ada, change, field, message):
    owners = {"east": make_team(engine, "East"), "gone": make_user(engine, "rep", name="Gone")}
    with session_scope(engine) as s:
        update_user(session=s, actor=ada, user_id=owners["gone"], changes=UserUpdate(active=False), seen_version=1)
    values = dict(user_id=make_user(engine, "rep"), team_id=None, amount=100.0, **Q1)
    values.update({k: owners.get(v, v) if isinstance(v, str) and k != "amount" else v for k, v in change.items()})
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match=message) as raised:
        save_quota(session=s, actor=ada, **values)
    assert raised.value.field == field


def test_boundaries_that_are_allowed(engine, ada):
    rita = make_user(engine, "rep")
    with session_scope(engine) as s:
        # A one-day period (end == start) and a zero amount are both valid.
        quota = save_quota(session=s, actor=ada, user_id=rita, period_start=date(2025, 5, 1),
                           period_end=date(2025, 5, 1), amount=0)
    assert (quota.amount, quota.period_start == quota.period_end) == (0.0, True)


def test_a_deactivated_users_existing_quota_can_still_be_corrected(engine, ada):
    gone = make_user(engine, "rep", name="Gone")
    with session_scope(engine) as s:
        quota = save_quota(session=s, actor=ada, user_id=gone, amount=10, **Q1)
        update_user(session=s, actor=ada, user_id=gone, changes=UserUpdate(active=False), seen_version=1)
    with session_scope(engine) as s:
        fixed = save_quota(session=s, actor=ada, user_id=gone, amount=12, quota_id=quota.id, seen_version=1, **Q1)
    assert fixed.amount == 12
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match="Gone is not active"):
        save_quota(session=s, actor=ada, user_id=gone, amount=12, **Q2)


def test_delete_removes_the_row_and_the_audit_keeps_what_it_was(engine, ada):
    rita = make_user(engine, "rep")
    with session_scope(engine) as s:
        quota = save_quota(session=s, actor=ada, user_id=rita, amount=50_000, **Q1)
    with session_scope(engine) as s:
        delete_quota(session=s, actor=ada, quota_id=quota.id, seen_version=1)
    with read_scope(engine) as s:
        assert list_quotas(session=s) == []
    deleted = {r[1]: r[2] for r in audit_rows(engine, quota.id) if r[0] == "delete"}
    assert deleted == {"user_id": str(rita), "period_start": "2025-01-01", "period_end": "2025-03-31",
                       "amount": "50000.0"}
    with session_scope(engine) as s, pytest.raises(NotFound):
        delete_quota(session=s, actor=ada, quota_id=quota.id, seen_version=1)
    with session_scope(engine) as s, pytest.raises(NotFound):
        save_quota(session=s, actor=ada, user_id=rita, amount=1, quota_id=quota.id, seen_version=1, **Q1)


def test_quota_periods_cover_the_year():
    months = quota_periods("month", 2024)
    assert len(months) == 12 and months[0] == (date(2024, 1, 1), date(2024, 1, 31))
    assert months[1] == (date(2024, 2, 1), date(2024, 2, 29))  # a leap year
    assert quota_periods("month", 2025)[1][1] == date(2025, 2, 28)
    assert quota_periods("quarter", 2025) == [
        (date(2025, 1, 1), date(2025, 3, 31)), (date(2025, 4, 1), date(2025, 6, 30)),
        (date(2025, 7, 1), date(2025, 9, 30)), (date(2025, 10, 1), date(2025, 12, 31))]
    for kind, year, field in [("week", 2025, "kind"), ("month", 0, "year"), ("month", "2025", "year")]:
        with pytest.raises(ValidationFailed) as raised:
            quota_periods(kind, year)
        assert raised.value.field == field


def test_a_whole_year_of_monthly_quotas_in_one_go(engine, ada):
    rita = make_user(engine, "rep", name="Rita")
    with session_scope(engine) as s:
        april = save_quota(session=s, actor=ada, user_id=rita, amount=99, period_start=date(2025, 4, 1),
                           period_end=date(2025, 4, 30))
        save_quota(session=s, actor=ada, user_id=rita, amount=5, **Q1)  # a quarter covers January to March
    with session_scope(engine) as s:
        done = set_quotas_for_year(session=s, actor=ada, user_id=rita, kind="month", year=2025, amount_per_period=10)
    assert (done.created, done.updated, done.skipped) == (8, 0, 4)  # Jan–Mar under the quarter; April kept
    assert [q.amount for q in done.quotas][:2] == [99, 10]  # April keeps its own amount, May is new
    with session_scope(engine) as s:
        again = set_quotas_for_year(session=s, actor=ada, user_id=rita, kind="month", year=2025,
                                    amount_per_period=12, overwrite=True)
    assert (again.created, again.updated, again.skipped) == (0, 9, 3)  # the quarter's months are never touched
    with read_scope(engine) as s:
        quotas = list_quotas(session=s, user_id=rita, period_from=date(2025, 1, 1), period_to=date(2025, 12, 31))
    assert len(quotas) == 10 and sorted({q.amount for q in quotas}) == [5, 12]
    assert audit_rows(engine, april.id)[-1] == ("update", "amount", "99.0", "12.0", 2, "quota_year:2025:month")
    with session_scope(engine) as s:  # the same amount again: nothing to change
        same = set_quotas_for_year(session=s, actor=ada, user_id=rita, kind="month", year=2025,
                                   amount_per_period=12, overwrite=True)
    assert (same.created, same.updated, same.skipped) == (0, 0, 12)


def test_a_whole_year_of_quarterly_team_quotas(engine, ada):
    east = make_team(engine, "East")
    with session_scope(engine) as s:
        done = set_quotas_for_year(session=s, actor=ada, team_id=east, kind="quarter", year=2026,
                                   amount_per_period=250_000)
    assert [(q.period_start, q.period_end) for q in done.quotas] == quota_periods("quarter", 2026)
    assert {q.owner_name for q in done.quotas} == {"East"}
    assert audit_rows(engine, done.quotas[0].id)[0][5] == "quota_year:2026:quarter"


@pytest.mark.parametrize("bad, field", [
    (dict(kind="week"), "kind"), (dict(amount_per_period=-1), "amount_per_period"), (dict(user_id=None), "owner")])
def test_year_fill_validates_before_writing(engine, ada, bad, field):
    values = {**dict(user_id=make_user(engine, "rep"), kind="month", year=2025, amount_per_period=1), **bad}
    with session_scope(engine) as s, pytest.raises(ValidationFailed) as raised:
        set_quotas_for_year(session=s, actor=ada, **values)
    assert raised.value.field == field
    with read_scope(engine) as s:
        assert list_quotas(session=s) == []


@pytest.mark.parametrize("role", ["manager", "rep", "marketer"])
def test_only_the_admin_configure_right_sets_quotas(engine, ada, role):
    rita = make_user(engine, "rep")
    with session_scope(engine) as s:
        quota = save_quota(session=s, actor=ada, user_id=rita, amount=1, **Q1)
    someone = actor(engine, make_user(engine, role))
    attempts = [
        lambda s: save_quota(session=s, actor=someone, user_id=rita, amount=1, **Q2),
        lambda s: save_quota(session=s, actor=someone, user_id=rita, amount=2, quota_id=quota.id, seen_version=1, **Q1),
        lambda s: delete_quota(session=s, actor=someone, quota_id=quota.id, seen_version=1),
        lambda s: set_quotas_for_year(session=s, actor=someone, user_id=rita, kind="month", year=2025,
                                      amount_per_period=1),
    ]
    for attempt in attempts:
        with session_scope(engine) as s, pytest.raises(PermissionDenied):
            attempt(s)
    with read_scope(engine) as s:
        assert [(q.amount, q.version) for q in list_quotas(session=s)] == [(1.0, 1)]
