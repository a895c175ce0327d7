"""Reading files, dates, cell values and mapping suggestions: the importer's parts that need no database."""
from datetime import UTC, date, datetime

import pytest
from openpyxl import Workbook

from crm.errors import ValidationFailed
from crm.imports import DateOrder, Mapping, detect_date_order, infer_type, read_table, suggest_mapping
from crm.imports.dates import DateError, parse_date, parse_datetime
from crm.imports.mapping import check_mapping, custom_key
from crm.imports.values import normalize_email_cached, parse_bool, parse_country, parse_list, parse_number
from crm.models import FieldType


def xlsx(rows) -> bytes:
    import io

    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_csv_with_crlf_bom_and_quotes():
    table = read_table('\ufeffname,notes\r\n"Acme, Inc.","line one\r\nline two"\r\n\r\nBeta,\r\n'.encode(),
                       filename="x.csv")
    assert table.headers == ["name", "notes"]
    assert table.rows == [["Acme, Inc.", "line one\r\nline two"], ["Beta", ""]]
    # Spreadsheet row numbers count records, not lines: the two-line cell is row 2, the blank row 3 is skipped.
    assert table.numbers == [2, 4]
    assert table.blank_rows == 1


def test_semicolon_csv_in_windows_1252():
    table = read_table("Name;City\nCafé Müller;Köln\n".encode("cp1252"), filename="x.csv")
    assert table.rows == [["Café Müller", "Köln"]]


def test_ragged_rows_are_kept_for_rejection_and_short_rows_padded():
    table = read_table(b"a,b,c\n1,2,3,4\n5\n", filename="x.csv")
    assert table.ragged == {2: 4}
    assert table.rows[1] == ["5", "", ""]


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"email,Email\nx,y\n", "the column 'Email' twice"),
])
def test_unusable_files_say_why(content, message):
    with pytest.raises(ValidationFailed, match=message):
        read_table(content, filename="x.csv")


def test_xlsx_cells_become_text_like_a_csv_export():
    data = xlsx([["name", "when", "count", "price", "ok"],
                 ["Acme", datetime(2024, 3, 5), 12.0, 1.5, True],
                 ["Beta", datetime(2024, 3, 5, 14, 30), None, 2, False]])
    table = read_table(data, filename="x.xlsx")
    assert table.rows == [["Acme", "2024-03-05", "12", "1.5", "true"],
                          ["Beta", "2024-03-05 14:30:00", "", "2", "false"]]


def test_a_damaged_xlsx_is_a_validation_error():
    with pytest.raises(ValidationFailed, match="not a readable XLSX"):
        read_table(b"PK\x03\x04 not really a zip", filename="x.xlsx")


@pytest.mark.parametrize("values, order", [
    (["2024-03-05", "2024-12-31"], DateOrder.ISO),
    (["05/03/2024", "25/12/2024"], DateOrder.DMY),  # 25 cannot be a month
    (["03/05/2024", "12/25/2024"], DateOrder.MDY),
    (["01/02/2024", "03/04/2024"], None),  # every date could be either: undecidable, never guessed
    (["25/12/2024", "12/25/2024"], None),  # contradictory
])
def test_date_order_is_detected_per_file(values, order):
    assert detect_date_order(values) == order


@pytest.mark.parametrize("text, order, expected", [
    ("2024-03-05", None, date(2024, 3, 5)),
    ("2024/3/5", None, date(2024, 3, 5)),
    ("20240305", None, date(2024, 3, 5)),
    ("05/03/2024", DateOrder.DMY, date(2024, 3, 5)),
    ("05/03/2024", DateOrder.MDY, date(2024, 5, 3)),
    ("5.3.24", DateOrder.DMY, date(2024, 3, 5)),  # two-digit years: 00-68 are 20xx
    ("5-Mar-1999", None, date(1999, 3, 5)),
    ("March 5, 2024", None, date(2024, 3, 5)),
    ("25/12/2024", None, date(2024, 12, 25)),  # unambiguous even without an order
])
def test_dates_in_common_formats(text, order, expected):
    assert parse_date(text, order) == expected


def test_times_are_utc_and_zones_are_honoured():
    assert parse_datetime("2024-03-05 14:30", None) == datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
    assert parse_datetime("2024-03-05T14:30:00+02:00", None) == datetime(2024, 3, 5, 12, 30, tzinfo=UTC)
    assert parse_datetime("03/05/2024 2:30 PM", DateOrder.MDY) == datetime(2024, 3, 5, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize("text, order, reason", [
    ("01/02/2024", None, "ambiguous"),
    ("31/02/2024", DateOrder.DMY, "not a real date"),
    ("25/12/2024", DateOrder.MDY, "not a real date"),  # the file said M/D/Y; this cell contradicts it
    ("next tuesday", None, "not a date"),
])
def test_bad_dates_say_why(text, order, reason):
    with pytest.raises(DateError, match=reason):
        parse_date(text, order)


def test_numbers_booleans_lists():
    assert parse_number("$1,234.50") == 1234.5
    assert parse_number("-3e2") == -300
    with pytest.raises(ValueError, match="decimal comma"):
        parse_number("12,5")
    with pytest.raises(ValueError, match="not a finite"):
        parse_number("1e999")
    assert (parse_bool("Yes"), parse_bool("0")) == (True, False)
    assert parse_list(" a; b ;a;; ") == ["a", "b"]


def test_countries_by_code_or_name_and_near_misses_are_suggestions_only():
    assert (parse_country("th"), parse_country("United States"), parse_country("USA")) == ("TH", "US", "US")
    with pytest.raises(ValueError, match="did you mean 'Philippines'"):
        parse_country("Philipines")
    with pytest.raises(ValueError, match="'North Korea' or 'South Korea'"):
        parse_country("Korea")


@pytest.mark.parametrize("raw", ["Anna@Example.COM", " a.b+tag@sub.example.org ", "postmaster@EXAMPLE.com",
                                 "a..b@x.com", "a@b", "x@localhost", "a@münchen.de", '"q"@x.com', "", "@x.com"])
def test_cached_email_normalisation_equals_the_validator(raw):
    from crm.validation import normalize_email

    def outcome(fn):
        try:
            return fn(raw)
        except ValidationFailed as exc:
            return ("error", exc.reason)
    assert outcome(normalize_email_cached) == outcome(normalize_email)


def test_suggested_mapping_uses_names_synonyms_and_near_spellings():
    mapping = suggest_mapping("contacts", ["E-mail Address", "Fist name", "Surname", "Account", "Favourite colour"])
    assert mapping.columns == {"E-mail Address": "email", "Fist name": "first_name", "Surname": "last_name",
                               "Account": "company", "Favourite colour": None}
    deals = suggest_mapping("deals", ["opportunity_id", "sales_agent", "product", "account", "deal_stage",
                                      "engage_date", "close_date", "close_value"])
    assert deals.columns == {"opportunity_id": "external_id", "sales_agent": "owner", "product": "product",
                             "account": "company", "deal_stage": "stage", "engage_date": "opened_at",
                             "close_date": "closed_at", "close_value": "amount"}


def test_existing_custom_fields_are_suggested_by_key_or_label():
    mapping = suggest_mapping("contacts", ["T-shirt size"], custom_keys={"shirt": "T-shirt size"})
    assert mapping.columns == {"T-shirt size": "custom:shirt"}


def test_mapping_checks_name_the_problem():
    with pytest.raises(ValidationFailed, match="no column 'Mail'"):
        check_mapping(Mapping(entity="contacts", columns={"Mail": "email"}), ["Email"])
    with pytest.raises(ValidationFailed, match="not a column of contacts"):
        check_mapping(Mapping(entity="contacts", columns={"Email": "emial"}), ["Email"])
    with pytest.raises(ValidationFailed, match="both map to 'email'"):
        check_mapping(Mapping(entity="contacts", columns={"A": "email", "B": "email"}), ["A", "B"])
    with pytest.raises(ValidationFailed, match="products have no custom fields"):
        check_mapping(Mapping(entity="products", columns={"A": "custom:a"}), ["A"])


def test_custom_field_types_are_inferred():
    assert infer_type(["yes", "no", ""]) == FieldType.CHECKBOX
    assert infer_type(["1", "2.5", "1,200"]) == FieldType.NUMBER
    assert infer_type(["2024-01-02", "03/04/2024"]) == FieldType.DATE
    assert infer_type(["red", "2"]) == FieldType.TEXT
    assert custom_key("Year established!") == "year_established"
    assert custom_key("2nd phone") == "f_2nd_phone"
