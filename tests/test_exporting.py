"""The exporter: formula injection neutralised in CSV and XLSX, Unicode intact, numbers still numbers."""
import csv
import io
import math
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from crm.exporting import (
    DANGEROUS_PREFIXES, export_filename, frame_to_bytes, frame_to_csv, frame_to_xlsx, neutralize, safe_frame,
)


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "the BOM is what makes Excel read UTF-8"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def read_xlsx(data: bytes):
    return list(load_workbook(io.BytesIO(data)).active.iter_rows())


@pytest.mark.parametrize("raw", [
    "=1+1", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1",
    "=HYPERLINK(\"http://evil.example\",\"x\")", "-5",  # the text "-5" is text, so it is neutralised
    "\uff1d1+1", "\uff0b1", "\uff0d1", "\uff20SUM(A1)",  # full-width ＝ ＋ － ＠
])
def test_every_dangerous_prefix_gets_a_quote(raw):
    assert neutralize(raw) == "'" + raw
    assert neutralize(neutralize(raw)) == "'" + raw  # idempotent


@pytest.mark.parametrize("raw", ["Ann", "a=b", "1+1", " =1", "'=1", "สมชาย", "علی", "小明", "", "e-mail"])
def test_harmless_text_is_unchanged(raw):
    # " =1": a leading space is not a formula start in Excel or LibreOffice; "'=1" is already neutral.
    assert neutralize(raw) == raw


@pytest.mark.parametrize("value", [-5, -5.5, 0, 3, 1e9, True, False, date(2026, 1, 2),
                                   datetime(2026, 1, 2, 3, 4, tzinfo=UTC)])
def test_real_numbers_booleans_and_dates_pass_through(value):
    assert neutralize(value) is value


@pytest.mark.parametrize("value", [None, float("nan"), pd.NA, pd.NaT])
def test_missing_values_become_empty(value):
    assert neutralize(value) == ""


def test_lists_and_dicts_become_json_text_and_are_neutralised():
    assert neutralize(["b2b", "ai"]) == '["b2b", "ai"]'
    assert neutralize({"x": "=1"}) == '{"x": "=1"}'
    assert neutralize(float("-inf")) == "'-inf"


def test_safe_frame_neutralises_cells_and_column_names_and_keeps_numeric_columns():
    df = pd.DataFrame({"=cmd": ["=1+1", "ok"], "amount": [-5.0, 10.0], "n": [1, -2]})
    safe = safe_frame(df)
    assert list(safe.columns) == ["'=cmd", "amount", "n"]
    assert safe["'=cmd"].tolist() == ["'=1+1", "ok"]
    assert safe["amount"].dtype.kind == "f" and safe["n"].dtype.kind == "i"
    assert df.columns[0] == "=cmd"  # the caller's frame is not changed


def test_csv_quotes_every_field_and_keeps_numbers_numeric():
    df = pd.DataFrame({"name": ["=evil()", "Ann"], "amount": [-5, 12.5], "note": [None, float("nan")]})
    data = frame_to_csv(df)
    lines = data.decode("utf-8-sig").split("\r\n")
    assert lines[0] == '"name","amount","note"'
    assert lines[1] == '"\'=evil()","-5.0",""'  # -5 is a number: no quote prefix
    assert lines[2] == '"Ann","12.5",""'


def test_csv_round_trips_embedded_newlines_quotes_and_separators():
    tricky = ['line one\nline two', 'say "hi"', "a,b;c", "tab\tinside", "cr\rinside"]
    rows = read_csv(frame_to_csv(pd.DataFrame({"text": tricky})))
    assert [r[0] for r in rows[1:]] == tricky


def test_csv_keeps_unicode_from_any_script():
    names = ["สมชาย ใจดี", "علی کریمی", "王小明", "José Álvarez", "Ζωή"]
    rows = read_csv(frame_to_csv(pd.DataFrame({"ชื่อ": names})))
    assert rows[0] == ["ชื่อ"] and [r[0] for r in rows[1:]] == names
    assert pd.read_csv(io.BytesIO(frame_to_csv(pd.DataFrame({"n": names}))))["n"].tolist() == names


def test_xlsx_has_no_formula_cells_and_keeps_types():
    df = pd.DataFrame({
        "=head": ["=1+1", "+SUM(A1)", "@x", "-2+3", "\uff1dA1", "plain"],
        "amount": [-5.0, 1.5, 0.0, 2.0, 3.0, float("nan")],
        "when": pd.to_datetime(["2026-01-02T03:04:05Z"] * 5 + [None], utc=True),
    })
    rows = read_xlsx(frame_to_xlsx(df))
    assert all(cell.data_type != "f" for row in rows for cell in row)
    assert [c.value for c in rows[0]] == ["'=head", "amount", "when"]
    assert [r[0].value for r in rows[1:]] == ["'=1+1", "'+SUM(A1)", "'@x", "'-2+3", "'\uff1dA1", "plain"]
    assert all(r[0].data_type == "s" for r in rows)
    assert rows[1][1].value == -5 and rows[1][1].data_type == "n"
    assert rows[6][1].value is None  # NaN → empty cell
    assert rows[1][2].value == datetime(2026, 1, 2, 3, 4, 5) and rows[6][2].value is None  # UTC, naive in XLSX


def test_xlsx_keeps_unicode_and_drops_only_characters_xml_cannot_hold():
    df = pd.DataFrame({"name": ["สมชาย", "علی", "王小明", "bell\x07char", "multi\nline"]})
    values = [r[0].value for r in read_xlsx(frame_to_xlsx(df))[1:]]
    assert values == ["สมชาย", "علی", "王小明", "bellchar", "multi\nline"]


def test_xlsx_object_columns_with_mixed_values():
    df = pd.DataFrame({"mixed": [1, "=x", None, 2.5, ["a"]]}, dtype=object)
    values = [r[0].value for r in read_xlsx(frame_to_xlsx(df))[1:]]
    assert values == [1, "'=x", None, 2.5, '["a"]']


def test_frame_to_bytes_and_filenames():
    df = pd.DataFrame({"a": [1]})
    assert frame_to_bytes(df, "csv") == frame_to_csv(df)
    assert frame_to_bytes(df, "xlsx")[:2] == b"PK"
    at = datetime(2026, 11, 22, 18, 30, tzinfo=UTC)
    assert export_filename("contacts", "csv", at=at) == "contacts-20261122-1830.csv"
    assert export_filename("Q4 pipeline / EMEA", "xlsx", at=at) == "Q4-pipeline-EMEA-20261122-1830.xlsx"
    assert export_filename("../../etc", "csv", at=at) == "etc-20261122-1830.csv"
    assert export_filename("ลูกค้า", "csv", at=at) == "ลูกค้า-20261122-1830.csv"
    with pytest.raises(ValueError):
        export_filename("x", "exe")
    with pytest.raises(ValueError):
        frame_to_bytes(df, "pdf")


cells = st.text(max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(cells, cells), min_size=1, max_size=8), cells)
def test_no_csv_cell_starts_with_a_dangerous_character(rows, header):
    df = pd.DataFrame(rows, columns=[header, "second"])
    parsed = read_csv(frame_to_csv(df))
    assert len(parsed) == len(rows) + 1
    for row in parsed:
        assert not any(cell.startswith(DANGEROUS_PREFIXES) for cell in row), row
    # Nothing but the quote prefix is added: the text survives the round trip.
    expected = [("'" + a if a.startswith(DANGEROUS_PREFIXES) else a) for a, _ in rows]
    assert [r[0] for r in parsed[1:]] == expected


@settings(max_examples=50, deadline=None)
@given(st.lists(cells, min_size=1, max_size=6))
def test_no_xlsx_cell_is_a_formula(values):
    rows = read_xlsx(frame_to_xlsx(pd.DataFrame({"v": values})))
    assert all(cell.data_type != "f" for row in rows for cell in row)
    assert not any(isinstance(c.value, str) and c.value.startswith(DANGEROUS_PREFIXES) for row in rows for c in row)


def test_a_control_character_dropped_from_xlsx_uncovers_no_formula():
    """Found by the property test above: "\x1f=" lost its control character in XLSX and became "=" text."""
    rows = read_xlsx(frame_to_xlsx(pd.DataFrame({"v": ["\x1f=1+1", "\x00@SUM(A1)", "a\x1fb"]})))
    assert [c.value for c in rows[1:][0]] + [r[0].value for r in rows[2:]] == ["'=1+1", "'@SUM(A1)", "ab"]


def test_numbers_survive_a_csv_round_trip_as_numbers():
    df = pd.DataFrame({"amount": [-5, 0, 1234567.25]})
    back = pd.read_csv(io.BytesIO(frame_to_csv(df)))
    assert back["amount"].tolist() == [-5, 0, 1234567.25] and not math.isnan(back["amount"].sum())
