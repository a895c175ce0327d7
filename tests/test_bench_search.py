"""The contact-list benchmark: cases picked from the data, timed per role, summarised for the bench table."""
from crm.bench_search import bench_search, case_table, summary_rows
from crm.contacts import create_contact
from crm.db import session_scope
from crm.models import ContactInput
from tests.factories import actor, make_user


def test_bench_times_every_case_for_each_role_and_marks_the_search_target(sqlite_engine):
    admin = actor(sqlite_engine, make_user(sqlite_engine, "admin"))
    rep = make_user(sqlite_engine, "rep", team="East")
    make_user(sqlite_engine, "manager", team="East")
    people = [("Ann", "Harris", "US", "+12015550123"), ("สมชาย", "ใจดี", "TH", None), ("小明", "王", "CN", None)]
    with session_scope(sqlite_engine) as s:
        for first, last, country, phone in people:
            create_contact(session=s, actor=admin, data=ContactInput(
                first_name=first, last_name=last, country=country, phone=phone, owner_id=rep,
                email=f"{first.lower()}@example.com" if first.isascii() else None))

    result = bench_search(sqlite_engine, repeats=1)

    assert set(result["roles"]) == {"admin", "manager", "rep"}
    labels = [c["label"] for c in result["roles"]["rep"]]
    assert "full name: Ann Harris" in labels and "Thai name: สมชาย ใจดี" in labels  # no JP or IR contact: no case
    assert all(c["total"] == 1 for c in result["roles"]["rep"] if c["label"].startswith("full name"))
    search_rows = [row for row in summary_rows(result) if row[0].startswith("contact list, search")]
    assert len(search_rows) == 3 and all("median ≤ 50 ms" in row[2] for row in search_rows)
    table = case_table(result)
    assert table[2].startswith("| group | case | admin (ms)") and len(table) == 4 + len(labels)
