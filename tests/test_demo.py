"""Demo data: reproducible, international and valid, with real structure, and never mixed into real data."""
import hashlib
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import phonenumbers
import pytest
from email_validator import validate_email
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from crm import clock
from crm.db import make_engine, read_scope, session_scope
from crm.demo import DEMO_LOGINS, DEMO_PASSWORD, SIZES, generate_demo
from crm.demo import pipeline_rows
from crm.demo.catalog import AFFINITY, PRODUCTS
from crm.errors import CRMError
from crm.home import rep_home
from crm.models import Contact, Lifecycle, User
from crm.permissions import load_actor
from crm.security import verify_password
from crm.text import contact_name_key
from tests.factories import new_sqlite_crm

ROOT = Path(__file__).resolve().parent.parent
SMALL = SIZES["small"]
# Tables compared row by row between two runs with the same seed (password hashes are salted, so not app_user).
STABLE_TABLES = ("team", "company", "contact", "deal", "deal_stage_history", "deal_line_item", "deal_contact",
                 "activity", "behavior_event", "sales_order", "order_line", "ticket", "survey_response",
                 "marketing_spend", "list_subscription_event", "quota", "contact_tag", "custom_field_value")




def rows(engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def count(engine, table: str) -> int:
    return rows(engine, f"SELECT count(*) FROM {table}")[0][0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One small demo in a SQLite file, shared by the read-only checks of this module."""
    engine = new_sqlite_crm(tmp_path_factory.mktemp("demo") / "crm.db")
    generate_demo(engine, size="small", seed=42)
    yield engine
    engine.dispose()


# --- on every backend -------------------------------------------------------------------------------------------

def test_small_demo_fills_every_table_on_each_backend(engine):
    calls = []
    summary = generate_demo(engine, size="small", seed=42, progress=lambda *a: calls.append(a))
    for table, written in summary.items():
        if table != "elapsed_seconds":
            assert count(engine, table) == written, table
    # Sizes are targets: the generator lands close to them.
    assert summary["contact"] == SMALL.contacts and summary["company"] == SMALL.companies
    assert summary["deal"] == SMALL.deals
    assert summary["activity"] == pytest.approx(SMALL.activities, rel=0.05)
    assert summary["sales_order"] == pytest.approx(SMALL.orders, rel=0.05)
    assert summary["behavior_event"] == pytest.approx(SMALL.events, rel=0.1)
    assert {c[0] for c in calls} >= {"contact", "deal", "activity"}
    assert all(0 < done <= total for _, done, total in calls)
    assert rows(engine, "SELECT value FROM data_version WHERE name = 'global'")[0][0] >= 1
    with session_scope(engine) as session:  # the id sequences moved past the demo's explicit ids
        session.add(Contact(first_name="After", last_name="Demo"))


def test_stage_history_is_ordered_and_ends_where_the_deal_is(engine):
    generate_demo(engine, size="small", seed=7)
    history = defaultdict(list)
    for deal_id, stage_id, entered, exited in rows(
            engine, "SELECT deal_id, stage_id, entered_at, exited_at FROM deal_stage_history ORDER BY deal_id, id"):
        history[deal_id].append((stage_id, entered, exited))
    stages = {s[0]: s for s in rows(engine, "SELECT id, pipeline_id, position, is_won, is_lost FROM stage")}
    deals = rows(engine, "SELECT id, status, stage_id, stage_entered_at, closed_at, pipeline_id FROM deal")
    assert len(history) == len(deals)
    for deal_id, status, stage_id, stage_entered, closed, pipeline_id in deals:
        steps = history[deal_id]
        entered = [s[1] for s in steps]
        assert entered == sorted(entered), deal_id
        assert [s[2] for s in steps[:-1]] == entered[1:], deal_id  # each exit is the next entry
        assert sum(s[2] is None for s in steps) == 1 and steps[-1][2] is None, deal_id
        assert steps[-1][0] == stage_id and _same_time(steps[-1][1], stage_entered), deal_id
        positions = [stages[s[0]][2] for s in steps]
        assert positions == sorted(positions) and {stages[s[0]][1] for s in steps} == {pipeline_id}
        _, _, _, won, lost = stages[stage_id]
        assert (status, bool(won), bool(lost)) in {("open", False, False), ("won", True, False), ("lost", False, True)}
        assert (closed is None) == (status == "open")


def _same_time(a, b) -> bool:
    as_text = [x if isinstance(x, str) else x.astimezone(UTC).replace(tzinfo=None).isoformat(" ") for x in (a, b)]
    return as_text[0][:19] == as_text[1][:19]


def test_demo_logins_exist_with_their_roles(engine):
    generate_demo(engine, size="small", seed=3)
    with read_scope(engine) as session:
        users = {u.email: u for u in session.exec(select(User)).all()}
        for role, email in DEMO_LOGINS.items():
            assert users[email].role == role and users[email].active
            assert verify_password(users[email].password_hash, DEMO_PASSWORD)
        assert users[DEMO_LOGINS["manager"]].team_id == users[DEMO_LOGINS["rep"]].team_id == 1
        assert sum(u.password_hash is not None for u in users.values()) == len(DEMO_LOGINS)


def test_refuses_a_crm_that_already_has_contacts(engine):
    with session_scope(engine) as session:
        session.add(Contact(first_name="Real", last_name="Customer"))
    with pytest.raises(CRMError, match="already has contacts"):
        generate_demo(engine, size="small")
    assert count(engine, "contact") == 1 and count(engine, "deal") == 0


def test_a_load_that_breaks_a_constraint_leaves_nothing_behind(engine, monkeypatch):
    """SQLite skips CHECKs while loading and verifies them before the commit; PostgreSQL enforces them as it goes."""
    monkeypatch.setattr(pipeline_rows, "STATUS", ("open", "won", "maybe"))  # "maybe" is no deal status
    with pytest.raises((RuntimeError, IntegrityError), match="status"):
        generate_demo(engine, size="small")
    assert count(engine, "contact") == 0 and count(engine, "app_user") == 0
    if engine.dialect.name == "sqlite":
        assert rows(engine, "PRAGMA foreign_keys") == [(1,)]
        assert rows(engine, "PRAGMA ignore_check_constraints") == [(0,)]


def test_unknown_size_is_refused(sqlite_engine):
    with pytest.raises(CRMError, match="unknown demo size"):
        generate_demo(sqlite_engine, size="huge")


def test_the_load_leaves_every_index_and_constraint_in_place(demo, tmp_path):
    """The SQLite load drops indexes and relaxes checks while it runs; afterwards the schema is as before."""
    fresh = new_sqlite_crm(tmp_path / "fresh.db")
    schema = "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
    assert rows(demo, schema) == rows(fresh, schema)
    pragmas = ["foreign_keys", "ignore_check_constraints", "synchronous"]
    assert [rows(demo, f"PRAGMA {p}") for p in pragmas] == [rows(fresh, f"PRAGMA {p}") for p in pragmas]
    assert rows(demo, "PRAGMA foreign_key_check") == []
    fresh.dispose()


# --- reproducibility ---------------------------------------------------------------------------------------------

def _fingerprint(engine) -> dict[str, str]:
    out = {}
    for table in STABLE_TABLES:
        digest = hashlib.sha256()
        for row in rows(engine, f"SELECT * FROM {table} ORDER BY id"):
            digest.update(repr(tuple(row)).encode())
        out[table] = digest.hexdigest()
    return out


# Another Python process, with another string-hash seed: Faker once leaked set order into its picks.
IN_ANOTHER_PROCESS = """
import sys
from datetime import date
from crm import clock
clock.today = lambda: date(2026, 3, 15)
from crm.db import make_engine, session_scope
from crm.schema import create_all_for_tests, seed_reference_data
from crm.demo import generate_demo
engine = make_engine("sqlite:///" + sys.argv[1])
create_all_for_tests(engine)
with session_scope(engine) as session:
    seed_reference_data(session)
generate_demo(engine, size="small", seed=42)
"""


def test_same_seed_gives_identical_data_and_another_seed_does_not(tmp_path, monkeypatch):
    monkeypatch.setattr(clock, "today", lambda: date(2026, 3, 15))  # every run on "the same day"
    subprocess.run([sys.executable, "-c", IN_ANOTHER_PROCESS, str(tmp_path / "other.db")], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)})
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    prints = [_fingerprint(other)]
    for name, seed in (("same", 42), ("different", 43)):
        engine = new_sqlite_crm(tmp_path / f"{name}.db")
        generate_demo(engine, size="small", seed=seed)
        prints.append(_fingerprint(engine))
        engine.dispose()
    other.dispose()
    assert prints[0] == prints[1]
    assert all(prints[0][t] != prints[2][t] for t in ("contact", "deal", "activity", "sales_order"))


# --- realistic and valid -----------------------------------------------------------------------------------------

def test_phones_are_valid_e164_for_each_contacts_country(demo):
    phones = rows(demo, "SELECT phone, country FROM contact WHERE phone IS NOT NULL")
    assert len(phones) > 0.8 * SMALL.contacts
    for phone, country in phones:
        number = phonenumbers.parse(phone, None)
        assert phonenumbers.is_valid_number(number), phone
        assert phonenumbers.region_code_for_number(number) == country, (phone, country)
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == phone


def test_emails_are_valid_and_unique(demo):
    emails = [r[0] for r in rows(demo, "SELECT email FROM contact WHERE email IS NOT NULL")]
    assert len(emails) > 0.9 * SMALL.contacts
    assert len(set(emails)) == len(emails)
    for email in emails:
        assert email.isascii() and validate_email(email, check_deliverability=False).normalized.lower() == email


def _script(name: str) -> str:
    first = name.strip()[0]
    if "\u0e00" <= first <= "\u0e7f":
        return "thai"
    if "\u0600" <= first <= "\u06ff":
        return "arabic"
    if "\u4e00" <= first <= "\u9fff":
        return "han"
    return "latin" if first.isascii() or "\u00c0" <= first <= "\u024f" else "other"


def test_names_are_in_the_script_of_their_country(demo):
    scripts = defaultdict(set)
    for first, last, country in rows(demo, "SELECT first_name, last_name, country FROM contact"):
        scripts[country].add(_script(last))
    assert scripts["TH"] == {"thai"} and scripts["IR"] == {"arabic"} and scripts["CN"] == {"han"}
    assert scripts["IT"] == {"latin"} and scripts["US"] == {"latin"}
    italian = {r[0] for r in rows(demo, "SELECT last_name FROM contact WHERE country = 'IT'")}
    assert len(italian) > 20


def test_name_keys_match_the_search_normaliser(demo):
    for first, last, key in rows(demo, "SELECT first_name, last_name, name_key FROM contact"):
        assert key == contact_name_key(first, last)


def test_every_stage_source_and_vocabulary_is_used(demo):
    stages = {r[0] for r in rows(demo, "SELECT DISTINCT lifecycle_stage FROM contact")}
    assert stages == {s.value for s in Lifecycle}
    assert {r[0] for r in rows(demo, "SELECT DISTINCT status FROM deal")} == {"open", "won", "lost"}
    assert {r[0] for r in rows(demo, "SELECT DISTINCT forecast_category FROM deal")} == {
        "pipeline", "best_case", "commit", "omitted", "closed"}
    kinds = {r[0] for r in rows(demo, "SELECT DISTINCT kind FROM activity")}
    assert kinds == {"call", "email", "meeting", "note", "task"}
    assert len({r[0] for r in rows(demo, "SELECT DISTINCT kind FROM behavior_event")}) == 5
    assert rows(demo, "SELECT count(*) FROM deal WHERE status = 'lost' AND lost_reason_id IS NULL")[0][0] == 0
    assert rows(demo, "SELECT count(*) FROM survey_response WHERE kind = 'nps'")[0][0] > 0
    assert rows(demo, "SELECT count(*) FROM quota WHERE user_id IS NULL")[0][0] == 0
    share = rows(demo, "SELECT avg(rep_probability IS NOT NULL) FROM deal WHERE status = 'open'")[0][0]
    assert 0.1 < share < 0.3


def test_history_spans_two_and_a_half_years_up_to_today(demo):
    today = clock.today().isoformat()
    first, last = rows(demo, "SELECT min(created_at), max(created_at) FROM contact")[0]
    assert first < (clock.today() - timedelta(days=850)).isoformat() and last < today
    for table in ("deal", "activity", "behavior_event", "sales_order", "ticket"):
        assert rows(demo, f"SELECT max(created_at) FROM {table}")[0][0] < today, table
    open_close = rows(demo, "SELECT min(expected_close), max(expected_close) FROM deal WHERE status = 'open'")[0]
    assert open_close[0] < today < open_close[1] <= (clock.today() + timedelta(days=181)).isoformat()


# --- real structure ----------------------------------------------------------------------------------------------

def test_engaged_deals_win_clearly_more_often(demo):
    closed = rows(demo, """
        SELECT d.status = 'won',
               (SELECT count(*) FROM activity a WHERE a.contact_id = d.contact_id
                                                 AND coalesce(a.occurred_at, a.done_at) < d.closed_at)
             + (SELECT count(*) FROM behavior_event e WHERE e.contact_id = d.contact_id AND e.occurred_at < d.closed_at)
        FROM deal d WHERE d.status IN ('won', 'lost')""")
    middle = statistics.median(t for _, t in closed)
    high = [won for won, t in closed if t > middle]
    low = [won for won, t in closed if t <= middle]
    assert sum(high) / len(high) > sum(low) / len(low) + 0.15


def test_next_purchases_follow_product_affinity(demo):
    products = {name: i + 1 for i, (name, *_rest) in enumerate(PRODUCTS)}
    a = products["Core CRM Professional"]
    partner = max((p for p in range(len(PRODUCTS)) if p != a - 1), key=lambda p: AFFINITY[a - 1, p]) + 1
    orders = defaultdict(list)
    for contact, products_in_order in rows(demo, """
            SELECT o.contact_id, group_concat(l.product_id) FROM sales_order o JOIN order_line l ON l.order_id = o.id
            GROUP BY o.id ORDER BY o.contact_id, o.ordered_at, o.id"""):
        orders[contact].append({int(p) for p in products_in_order.split(",")})
    after_a = [nxt for seq in orders.values() for prev, nxt in zip(seq, seq[1:]) if a in prev]
    later = [nxt for seq in orders.values() for nxt in seq[1:]]
    rate_after_a = sum(partner in o for o in after_a) / len(after_a)
    base_rate = sum(partner in o for o in later) / len(later)
    assert len(after_a) > 100 and rate_after_a > 1.25 * base_rate


def test_the_demo_rep_has_work_on_their_home_page(demo):
    rep_id = rows(demo, "SELECT id FROM app_user WHERE email = :e", e=DEMO_LOGINS["rep"])[0][0]
    with read_scope(demo) as session:
        home = rep_home(session=session, actor=load_actor(session, rep_id),
                        now=datetime.combine(clock.today(), datetime.min.time(), UTC) + timedelta(hours=8))
    assert len(home.open_deals) >= 5
    assert len(home.overdue) >= 1 and len(home.due_today) >= 2 and len(home.upcoming) >= 2
