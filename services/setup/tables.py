"""Spreadsheets in and out: a CSV or XLSX file read as a header and rows of text, and every CSV
the product writes made safe to open in a spreadsheet.

Reading takes what other tools write: a CSV in any common encoding (UTF-8 with or without a BOM,
UTF-16, Windows-1252 and the like, told apart by ``charset_normalizer``), any of the usual
delimiters (comma, semicolon, tab, pipe), quoted fields with newlines; an XLSX's first sheet
(``openpyxl``, read-only, values only). A file too large, with too many rows, not a table, or not
text is refused whole, with a sentence that says which.

A cell that a spreadsheet would run as a formula (``=HYPERLINK(…)``) is never imported
(``is_formula``: the row is refused, saying why), and never exported as one (``safe_cell``).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from charset_normalizer import from_bytes

from services.errors import DomainError

MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 200_000
MAX_COLUMNS = 200
MAX_CELL = 100_000
_FORMULA = re.compile(r"^\s*[=+\-@]\s*[A-Za-z_][A-Za-z0-9_.]*\s*\(|^\s*=")


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]  # each as long as the headers, every cell text (empty when blank)


def _refuse(message: str) -> DomainError:
    return DomainError(message, {"file": [message]}, code="bad_file")


def is_formula(cell: str) -> bool:
    """A cell a spreadsheet runs: ``=`` anything, or a function call after ``+ - @``. A phone
    number (``+33 1 …``) or a negative amount (``-12.50``) is not one."""
    return bool(_FORMULA.match(cell))


def safe_cell(value: Any) -> Any:
    """A cell as a CSV writes it: text a spreadsheet would run as a formula gets a leading
    apostrophe (names come from mail headers and imports; anyone can type ``=cmd|…``)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_csv(header: list[str], rows: Any) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(h) for h in header])
    writer.writerows([[safe_cell(value) for value in row] for row in rows])
    return out.getvalue()


def read_table(data: bytes, filename: str = "", *, max_rows: int = MAX_ROWS) -> Table:
    """The file's header and rows; an XLSX by its name or its zip signature, else a CSV."""
    if len(data) > MAX_BYTES:
        raise _refuse(
            f"The file is {len(data) // (1024 * 1024)} MB: at most {MAX_BYTES // (1024 * 1024)} MB, split it."
        )
    if not data.strip():
        raise _refuse("The file is empty.")
    if filename.lower().endswith((".xlsx", ".xlsm")) or data[:4] == b"PK\x03\x04":
        table = _read_xlsx(data, max_rows)
    elif filename.lower().endswith(".xls") or data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise _refuse("That is an old Excel file (.xls): save it as .xlsx or CSV.")
    else:
        table = _read_csv(_text(data), max_rows)
    headers = [h.strip() for h in table.headers]
    if not any(headers):
        raise _refuse("The first row names no columns: it should hold the headers.")
    if len(headers) > MAX_COLUMNS:
        raise _refuse(f"The file has {len(headers)} columns: at most {MAX_COLUMNS}.")
    if not table.rows:
        raise _refuse("The file has headers but no rows.")
    return Table(headers, table.rows)


def _text(data: bytes) -> str:
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        guess = from_bytes(data[:65536]).best()
        if guess is None or not guess.encoding.startswith("utf_16"):
            raise _refuse("The file is not text: upload a CSV or an XLSX.")
    for encoding in ("utf-8-sig",):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise _refuse("The file says it is UTF-16 but is not.") from None
    matches = list(from_bytes(data[:1_000_000]))
    if not matches:
        raise _refuse("The file's encoding cannot be told: save it as CSV UTF-8.")
    # Among encodings that read the file equally cleanly, Windows-1252 first: what spreadsheets
    # on Western Windows save as "CSV", and what a short file cannot be told apart from.
    clean = [match for match in matches if match.chaos <= matches[0].chaos]
    encoding = "cp1252" if any(match.encoding == "cp1252" for match in clean) else matches[0].encoding
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise _refuse("The file's encoding cannot be told: save it as CSV UTF-8.") from None
    if "\x00" in text:
        raise _refuse("The file is not text: upload a CSV or an XLSX.")
    return text


def _dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def _read_csv(text: str, max_rows: int) -> Table:
    first_lines = "\n".join(text[:65536].splitlines()[:50])
    reader = csv.reader(io.StringIO(text, newline=""), dialect=_dialect(first_lines))
    csv.field_size_limit(MAX_CELL * 4)
    try:
        headers = next(reader, [])
        rows = _rows(reader, len(headers), max_rows)
    except csv.Error as error:
        raise _refuse(f"The CSV cannot be read past line {reader.line_num}: {error}.") from None
    return Table(headers, rows)


def _rows(source: Iterator[list[Any]], width: int, max_rows: int) -> list[list[str]]:
    rows: list[list[str]] = []
    for raw in source:
        cells = ["" if value is None else str(value) for value in raw]
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        if len(rows) >= max_rows:
            raise _refuse(f"The file has more than {max_rows:,} rows: split it into files of {max_rows:,} at most.")
        rows.append((cells + [""] * width)[:width] if len(cells) != width else cells)
    return rows


def _read_xlsx(data: bytes, max_rows: int) -> Table:
    import openpyxl  # noqa: PLC0415 - a heavy import the pane never needs; only an import reads XLSX

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise _refuse(f"The XLSX file cannot be opened ({type(error).__name__}): save it again, or as CSV.") from None
    try:
        sheet = book.worksheets[0]
        values = sheet.iter_rows(values_only=True)
        headers = ["" if value is None else str(value) for value in next(values, ())]
        while headers and not headers[-1]:
            headers.pop()
        rows = _rows((_xlsx_cells(row) for row in values), len(headers), max_rows)
    finally:
        book.close()
    return Table(headers, rows)


def _xlsx_cells(row: tuple[Any, ...]) -> list[str]:
    cells = []
    for value in row:
        if value is None:
            cells.append("")
        elif hasattr(value, "isoformat"):
            cells.append(value.isoformat())
        elif isinstance(value, float) and value.is_integer():
            cells.append(str(int(value)))
        else:
            cells.append(str(value))
    return cells
