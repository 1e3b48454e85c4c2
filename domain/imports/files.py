"""Streaming rows out of CSV and XLSX files, in as many passes as an importer needs.

A CSV file's encoding is detected by charset-normalizer from a sample of its first
megabyte (UTF-8 with or without a byte-order mark, GB18030/GBK, UTF-16 and others), unless
the mapping names one. XLSX workbooks are read with openpyxl in read-only mode, so neither
kind of file is ever held in memory whole.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as dt
from collections.abc import Generator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from charset_normalizer import from_bytes

from domain.errors import DomainError
from i18n import N_

SAMPLE_BYTES = 1 << 20
# What charset-normalizer may answer, mapped to the codec that reads such files best.
_CODECS = {
    "ascii": "utf-8",  # a pure-ASCII sample: UTF-8 reads it and anything after it
    "utf_8": "utf-8",
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "gb18030": "gb18030",
}

Cell = str | int | float | Decimal | dt.date | dt.datetime | bool | None


@dataclasses.dataclass(frozen=True)
class Row:
    """A data row: its number as a spreadsheet shows it (header = 1) and its cells by header."""

    number: int
    cells: dict[str, Cell]


def detect_encoding(path: Path) -> str:
    """The codec of a text file, from a sample; a byte-order mark is honoured and skipped."""
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES + 1)
    if not sample:
        return "utf-8"
    if len(sample) > SAMPLE_BYTES:
        # Cut at a line end so that no character is split in the sample.
        sample = sample[:SAMPLE_BYTES]
        if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            sample = sample[: len(sample) - len(sample) % 2]
        else:
            sample = sample[: sample.rfind(b"\n") + 1] or sample
    best = from_bytes(sample).best()
    if best is None:
        raise DomainError(
            N_("The file's text encoding cannot be recognised; save it as UTF-8."),
        )
    name = best.encoding
    if name == "utf_8" and sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    return _CODECS.get(name, name)


class RowSource:
    """The rows of one CSV or XLSX file; `rows()` starts a new pass each time it is called."""

    def __init__(
        self,
        path: Path,
        *,
        encoding: str | None = None,
        delimiter: str = ",",
        sheet: str | None = None,
        header_row: int = 1,
    ) -> None:
        self.path = path
        self.is_workbook = path.suffix.lower() in (".xlsx", ".xlsm")
        self.delimiter = delimiter
        self.sheet = sheet
        self.header_row = header_row
        self.encoding = None if self.is_workbook else (encoding or detect_encoding(path))
        self.columns: list[str] = []

    def header(self) -> list[str]:
        """The column names (reads up to the first data row)."""
        rows = self.rows()
        try:
            next(rows, None)
        finally:
            rows.close()
        return self.columns

    def rows(self) -> Generator[Row, None, None]:
        raw = self._workbook_rows() if self.is_workbook else self._csv_rows()
        header: list[str] | None = None
        named: list[tuple[int, str]] = []
        for number, values in enumerate(raw, start=1):
            if number < self.header_row:
                continue
            if header is None:
                header = [cell_text(v) for v in values]
                self.columns = header
                named = [(i, name) for i, name in enumerate(header) if name]
                continue
            if all(cell_text(v) == "" for v in values):
                continue
            if self.is_workbook:
                cells = {
                    name: _clean(values[i]) if i < len(values) else None
                    for i, name in named
                    if i < len(values)
                }
            else:  # CSV cells are always text
                cells = {name: values[i].strip() or None for i, name in named if i < len(values)}
            yield Row(number, cells)
        if header is None:
            raise DomainError(N_("The file has no header row."))

    def _csv_rows(self) -> Iterator[list[Any]]:
        assert self.encoding is not None
        try:
            with self.path.open(encoding=self.encoding, newline="") as handle:
                yield from csv.reader(handle, delimiter=self.delimiter)
        except UnicodeDecodeError as exc:
            raise DomainError(
                N_(
                    "The file is not valid {encoding} text; name its encoding in the"
                    " mapping or save it as UTF-8."
                ),
                encoding=self.encoding,
            ) from exc

    def _workbook_rows(self) -> Iterator[tuple[Any, ...]]:
        from openpyxl import load_workbook

        workbook = load_workbook(self.path, read_only=True, data_only=True)
        try:
            if self.sheet is not None and self.sheet not in workbook.sheetnames:
                raise DomainError(N_("The workbook has no sheet {value}."), value=self.sheet)
            sheet = workbook[self.sheet] if self.sheet else workbook.worksheets[0]
            yield from sheet.iter_rows(values_only=True)
        finally:
            workbook.close()


def cell_text(value: object) -> str:
    """A cell as trimmed text: numbers without a spurious '.0', dates in ISO form."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def _clean(value: Any) -> Cell:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value  # type: ignore[no-any-return]
