"""Reading dates as spreadsheets and HR systems write them.

Accepted, besides real date cells of a workbook:
- ISO and year-first forms: 2024-03-01, 2024/3/1, 2024.03.01, 2024年3月1日, 20240301, and
  date-times whose time part is dropped (2024-03-01 00:00:00, 2024-03-01T08:00);
- day-first or month-first forms (01.03.2024, 1/3/24, 03-01-2024): these need the
  mapping's `date_order` ("DMY" or "MDY"), because 03/04/2024 means two different days;
- month names in English: 1 Mar 2024, 01-MAR-24, March 1, 2024;
- Excel serial day numbers (45352 is 2024-03-01), in the 1900 date system Excel uses.

Two-digit years are read by one rule, relative to today's year:
- a birth date is never in the future, so its year is the latest year with those two
  digits that is not after this year (in 2026: 26 -> 2026, 27 -> 1927, 85 -> 1985);
- any other date falls in the 100 years from 80 years ago to 19 years ahead
  (in 2026: 46 -> 1946, 45 -> 2045, 30 -> 2030).
"""

from __future__ import annotations

import datetime as dt
import re

from domain.errors import DomainError
from i18n import N_

DATE_ORDERS = ("DMY", "MDY")

# Excel's day 0 is 1899-12-31, and it counts a 29 February 1900 that never was (day 60).
_EXCEL_DAY_ZERO = dt.date(1899, 12, 31)
_EXCEL_LAST_SERIAL = 2958465  # 9999-12-31

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}

_YEAR_FIRST = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_NUMERIC = re.compile(r"(\d{1,2})\s*([-/.])\s*(\d{1,2})\s*\2\s*(\d{2}|\d{4})")
_DAY_MONTH_NAME = re.compile(r"(\d{1,2})[-\s]+([A-Za-z]{3,9})\.?[-\s,]+(\d{2}|\d{4})")
_MONTH_NAME_DAY = re.compile(r"([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{2}|\d{4})")
_SERIAL = re.compile(r"\d{1,7}(?:\.\d+)?")
_TIME_SUFFIX = re.compile(r"[T\s]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?$")


def full_year(two_digits: int, today: dt.date, *, birth: bool = False) -> int:
    """The four-digit year of a two-digit year, by the rule in this module's docstring."""
    if birth:
        return today.year - (today.year - two_digits) % 100
    low = today.year - 80
    return low + (two_digits - low) % 100


def excel_serial(serial: float, shown: object = None) -> dt.date:
    """The date of an Excel serial day number (the time of day is dropped)."""
    day = int(serial)
    if day < 1 or day > _EXCEL_LAST_SERIAL or day == 60:
        raise DomainError(N_("{value} is not an Excel date number."), value=shown or serial)
    return _EXCEL_DAY_ZERO + dt.timedelta(days=day - 1 if day > 60 else day)


def parse_date(
    value: object, *, today: dt.date, order: str | None = None, birth: bool = False
) -> dt.date:
    """A date from a cell: a workbook date, an Excel serial number or text; `DomainError`."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return excel_serial(value)
    text = str(value).strip()
    try:
        return _parse_text(_TIME_SUFFIX.sub("", text), today, order, birth)
    except ValueError as exc:  # a day or month out of range
        raise DomainError(N_("{value} is not a valid date."), value=text) from exc


def _parse_text(text: str, today: dt.date, order: str | None, birth: bool) -> dt.date:
    def year(digits: str) -> int:
        return int(digits) if len(digits) == 4 else full_year(int(digits), today, birth=birth)

    if m := _YEAR_FIRST.fullmatch(text):
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    if m := _COMPACT.fullmatch(text):
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    if m := _NUMERIC.fullmatch(text):
        first, second = int(m[1]), int(m[3])
        if order == "DMY":
            return dt.date(year(m[4]), second, first)
        if order == "MDY":
            return dt.date(year(m[4]), first, second)
        raise DomainError(
            N_('Dates like {value} need date_order = "DMY" or "MDY" in the mapping.'),
            value=text,
        )
    if (m := _DAY_MONTH_NAME.fullmatch(text)) and m[2].casefold() in _MONTHS:
        return dt.date(year(m[3]), _MONTHS[m[2].casefold()], int(m[1]))
    if (m := _MONTH_NAME_DAY.fullmatch(text)) and m[1].casefold() in _MONTHS:
        return dt.date(year(m[3]), _MONTHS[m[1].casefold()], int(m[2]))
    if _SERIAL.fullmatch(text):
        return excel_serial(float(text), text)
    raise DomainError(N_("{value} is not a date this import can read."), value=text)
