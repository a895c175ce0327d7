"""The one exporter every CSV and XLSX download goes through, safe against CSV (formula) injection.

OWASP's guidance: a spreadsheet runs a cell as a formula when its text starts with `=`, `+`, `-` or `@`, and
some applications also after a leading tab or carriage return. Such text is neutralised by prefixing a single
quote, and every CSV field is quoted. Decisions worth knowing:

- The full-width forms `＝ ＋ － ＠` (U+FF1D, U+FF0B, U+FF0D, U+FF20) are treated as dangerous too: input methods
  for Chinese, Japanese and Korean type them, and some spreadsheet applications fold them to their ASCII forms.
- Only *text* is neutralised. A genuine number (int, float, Decimal, a numeric column) is written as a number,
  so a refund of -5 stays the number -5 and sums in the spreadsheet. We format numbers ourselves, so they can
  never carry a formula; the string "-5" typed by a user is text and becomes "'-5".
- The prefix is kept in XLSX too, although XLSX cells are typed: the two formats then hold the same values, and
  a workbook re-saved as CSV stays safe.
- neutralize is idempotent (a neutralised value starts with a quote), so applying it twice is harmless.
"""
import csv
import io
import json
import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from crm.clock import utcnow

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
FORMATS = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
_NUMERIC_KINDS = set("biufcmM")  # bool, int, unsigned, float, complex, timedelta, datetime: never text
# Path separators, characters Windows forbids, quotes, whitespace and controls; letters of any script stay.
_UNSAFE_NAME = re.compile(r"[\s\\/:*?\"'<>|;,%\x00-\x1f\x7f]+")


def is_missing(value: Any) -> bool:
    """None, NaN, NaT and pd.NA: written as an empty cell."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def neutralize(value: Any) -> Any:
    """Make one cell safe: text that a spreadsheet would run as a formula gets a leading quote.

    Missing values become "", real numbers, booleans and dates are returned unchanged, lists and dicts
    (JSON columns such as interests) become JSON text, and anything else is treated as text.
    """
    if is_missing(value):
        return ""
    if isinstance(value, (bool, np.bool_, int, np.integer, Decimal, date, datetime, pd.Timestamp)):
        return value
    if isinstance(value, (float, np.floating)):
        return value if math.isfinite(value) else neutralize(str(value))  # "-inf" as text, never a formula
    if isinstance(value, (list, dict, tuple)):
        value = json.dumps(value, ensure_ascii=False, default=str)
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(DANGEROUS_PREFIXES) else text


def _is_text_column(series: pd.Series) -> bool:
    return series.dtype.kind not in _NUMERIC_KINDS


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` with every text cell and every column name neutralised; numeric columns untouched."""
    out = df.copy()
    for position in range(out.shape[1]):  # by position, so duplicate column names work too
        column = out.iloc[:, position]
        if _is_text_column(column):
            out.isetitem(position, column.astype(object).map(neutralize).astype(object))
    out.columns = [neutralize(c) if isinstance(c, str) else c for c in out.columns]
    return out


def frame_to_csv(df: pd.DataFrame) -> bytes:
    """CSV bytes, every field quoted, without the index.

    Encoded as UTF-8 with a byte-order mark: without it Excel reads the file in the local code page and shows
    Thai, Persian or Chinese names as mojibake; with it, Excel, LibreOffice and pandas all read Unicode.
    """
    text = safe_frame(df).to_csv(index=False, quoting=csv.QUOTE_ALL, lineterminator="\r\n", na_rep="")
    return text.encode("utf-8-sig")


def _xlsx_value(value: Any) -> Any:
    if is_missing(value) or (isinstance(value, str) and value == ""):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)  # XLSX has no time zones; our times are UTC
    if isinstance(value, (bool, int, float, Decimal, date, datetime)):
        return value
    # XML 1.0 cannot hold most control characters (tab, LF and CR it can): they are dropped, and the result is
    # neutralised again, since dropping a leading one can uncover a formula ("\x1f=…" → "=…").
    return neutralize(ILLEGAL_CHARACTERS_RE.sub("", neutralize(value)))


def _cell(sheet, value: Any) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=_xlsx_value(value))
    if isinstance(cell.value, str):
        cell.data_type = "s"  # openpyxl makes any str starting with "=" a formula; text is always text here
    return cell


def frame_to_xlsx(df: pd.DataFrame, *, sheet_name: str = "Export") -> bytes:
    """An XLSX workbook of one sheet: a header row, then the rows; text cells are stored as text, never formulas."""
    safe = safe_frame(df)
    book = Workbook(write_only=True)
    sheet = book.create_sheet(re.sub(r"[\[\]:*?/\\]", "_", sheet_name)[:31] or "Export")
    sheet.append([_cell(sheet, name) for name in safe.columns])
    for row in safe.itertuples(index=False, name=None):
        sheet.append([_cell(sheet, value) for value in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def frame_to_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    """frame_to_csv or frame_to_xlsx by format name."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    return frame_to_csv(df) if fmt == "csv" else frame_to_xlsx(df)


def export_filename(stem: str, fmt: str, *, at: datetime | None = None) -> str:
    """A download name such as `contacts-20261122-1830.csv`: the stem made file-safe, plus the UTC time."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    safe_stem = _UNSAFE_NAME.sub("-", stem).strip("-.") or "export"
    return f"{safe_stem[:80]}-{(at or utcnow()).astimezone(UTC):%Y%m%d-%H%M}.{fmt}"
