"""Property tests: thousands of generated cells and rows through the validators and the importer, on both databases.

Whatever the input, nothing crashes, every bad row is reported with its row number, and every good row lands.
"""
import csv as csvlib
import io
import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from crm.db import read_scope
from crm.errors import ValidationFailed
from crm.imports.dates import DateError, DateOrder, parse_date, parse_datetime
from crm.imports.values import normalize_email_cached, parse_bool, parse_country, parse_list, parse_number
from crm.models import Contact
from crm.validation import normalize_email
from tests.test_imports import run

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
NUMBERISH = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True).map(str),
                      st.from_regex(r"\A[$€]?-?\d{1,3}(,\d{3})*(\.\d+)?\Z"), TEXT)
DATEISH = st.one_of(st.dates().map(str), st.datetimes().map(lambda d: d.isoformat(sep=" ")),
                    st.from_regex(r"\A\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}( \d{1,2}:\d{2}( [AP]M)?)?\Z"), TEXT)
EMAILISH = st.one_of(st.emails(), st.from_regex(r"\A[\w.+-]{0,20}@[\w.-]{0,20}\Z"), TEXT)


@settings(max_examples=1000, deadline=None)
@given(number=NUMBERISH, date=DATEISH, email=EMAILISH, text=TEXT, order=st.sampled_from([None, *DateOrder]))
def test_cell_parsers_return_a_value_or_a_reason(number, date, email, text, order):
    """1,000 examples of five kinds of cell: each parser gives a value or a ValueError, never anything else."""
    for parse, value in ((parse_number, number), (parse_bool, text), (parse_country, text), (parse_list, text)):
        try:
            parse(value)
        except ValueError as exc:
            assert str(exc)
    for parse in (parse_date, parse_datetime):
        try:
            parse(date, order)
        except DateError as exc:
            assert str(exc)


@settings(max_examples=1000, deadline=None)
@given(email=EMAILISH)
def test_the_cached_email_check_agrees_with_the_validator(email):
    def outcome(fn):
        try:
            return fn(email)
        except ValidationFailed as exc:
            return ("rejected", exc.reason)
    assert outcome(normalize_email_cached) == outcome(normalize_email)


CELL = st.one_of(st.just(""), TEXT, st.sampled_from(["=1+1", "@SUM(A1)", "-2", "\x00", "  padded  ", "x" * 300]))
ROW = st.fixed_dictionaries({
    "First name": st.one_of(st.sampled_from(["Anna", "สมชาย", "Zoë", ""]), CELL),
    "Last name": st.one_of(st.sampled_from(["Smith", "王", "O'Brien"]), CELL),
    "Email": st.one_of(EMAILISH, st.just("")),
    "Phone": st.one_of(st.sampled_from(["+1 201 555 0123", "(201) 555-0199", "12", ""]), CELL),
    "Country": st.one_of(st.sampled_from(["US", "th", "Germany", "Narnia", ""]), CELL),
    "Lifecycle stage": st.one_of(st.sampled_from(["lead", "Customer", "vip", ""]), CELL),
    "Lead score": st.one_of(NUMBERISH, st.just("")),
    "Opted in": st.one_of(st.sampled_from(["yes", "no", "maybe", ""]), CELL),
    "Interests": CELL,
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=st.lists(ROW, min_size=40, max_size=60))
def test_every_generated_row_is_either_reported_or_landed(engine, admin, tmp_path, rows):
    """25 files of 40 to 60 generated rows (over 1,000 rows): the counts add up, rejects name their rows."""
    tag = uuid.uuid4().hex[:8]
    out = io.StringIO()
    writer = csvlib.writer(out)
    writer.writerow(["ID", *rows[0]])
    ids = [f"{tag}-{i}" for i in range(len(rows))]
    for ext, row in zip(ids, rows):
        writer.writerow([ext, *row.values()])
    summary = run(engine, "contacts", out.getvalue().encode("utf-8"), who=admin, tmp=tmp_path)
    assert summary.created + summary.updated + summary.unchanged + summary.rejected == len(rows)
    rejected = {p.row for p in summary.problems}
    assert len(rejected) == summary.rejected
    with read_scope(engine) as s:
        landed = set(s.execute(select(Contact.external_id).where(Contact.external_id.like(f"{tag}-%"))).scalars())
    assert landed == {ext for i, ext in enumerate(ids) if i + 2 not in rejected}
    if summary.error_file:
        lines = Path(summary.error_file).read_bytes().decode("utf-8-sig")
        assert len(list(csvlib.reader(io.StringIO(lines)))) == 1 + len(summary.problems)
