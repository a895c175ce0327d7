"""Reading an uploaded CSV or XLSX file into a header and rows of text, whatever its encoding and line endings."""
import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

from crm.errors import ValidationFailed

_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")  # latin-1 decodes anything, so it is the last resort
_DELIMITERS = ",;\t|"
FIRST_DATA_ROW = 2  # row numbers are what a spreadsheet shows: the header is row 1


@dataclass
class Table:
    """A file's header and its data rows as text; `numbers[i]` is the spreadsheet row number of `rows[i]`."""
    headers: list[str]
    rows: list[list[str]]
    numbers: list[int]
    # Rows with more cells than the header has columns, by row number: they are rejected, never cut short.
    ragged: dict[int, int] = field(default_factory=dict)
    blank_rows: int = 0

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[str]:
        i = self.headers.index(name)
        return [r[i] for r in self.rows]


def read_table(source: Path | str | bytes, *, filename: str | None = None) -> Table:
    """Read a CSV (any of , ; tab |, UTF-8 or Windows-1252, LF or CRLF) or the first sheet of an XLSX file."""
    name = filename or (str(source) if not isinstance(source, bytes) else "upload.csv")
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if name.lower().endswith((".xlsx", ".xlsm")) or data[:4] == b"PK\x03\x04":
        grid = _xlsx_grid(data)
    else:
        grid = _csv_grid(_decode(data))
    return _table(grid)


def _decode(data: bytes) -> str:
    for encoding in _ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte string")


def _csv_grid(text: str) -> list[list[str]]:
    sample = text[:65536]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _xlsx_grid(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged or non-XLSX file
        raise ValidationFailed("file", f"not a readable XLSX workbook ({exc.__class__.__name__})") from None
    try:
        sheet = book.worksheets[0]
        return [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def _cell_text(value) -> str:
    """A typed XLSX cell as the text a CSV export of it would hold (dates as ISO, whole numbers without '.0')."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _table(grid: list[list[str]]) -> Table:
    while grid and not any(c.strip() for c in grid[0]):
        grid = grid[1:]  # leading blank lines before the header
    if not grid:
        raise ValidationFailed("file", "the file is empty: it needs a header row and at least one data row")
    headers = [h.strip() for h in grid[0]]
    while headers and not headers[-1]:
        headers.pop()  # trailing empty header cells (spreadsheets often export a few)
    headers = [h or f"column {i + 1}" for i, h in enumerate(headers)]
    seen: dict[str, int] = {}
    for i, h in enumerate(headers):
        if h.casefold() in seen:
            raise ValidationFailed("file", f"the header has the column {h!r} twice (columns {seen[h.casefold()] + 1} "
                                   f"and {i + 1}); rename one")
        seen[h.casefold()] = i
    table = Table(headers=headers, rows=[], numbers=[])
    width = len(headers)
    for number, cells in enumerate(grid[1:], start=FIRST_DATA_ROW):
        if not any(c.strip() for c in cells):
            table.blank_rows += 1
            continue
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            table.ragged[number] = len(cells)
        table.rows.append((cells + [""] * (width - len(cells)))[:width])
        table.numbers.append(number)
    return table
