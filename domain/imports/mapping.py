"""The column mapping of `renshi import employees`: a TOML file that says where each field is.

    [file]                      # all optional
    sheet = "Staff"             # XLSX: the sheet to read (default: the first one)
    header_row = 1              # the row with the column names
    delimiter = ","             # CSV: the field separator ("\\t" for tab-separated files)
    encoding = "gb18030"        # CSV: skip detection and read with this codec
    date_order = "DMY"          # how to read 03/04/2024: "DMY" or "MDY" (no default)

    [columns]                   # Renshi field = "header of the column in the file"
    employee_number = "工号"
    given_name = "First name"
    ...

    [defaults]                  # used where a column is absent or its cell is empty
    branch = "CN-SH"
    salary_period = "month"

    [changes]
    effective_date = 2026-01-01 # when changes to existing employees take effect
                                # (default: today in the tenant's time zone)

The fields are in `FIELDS`. `employee_number` must be mapped; a new employee also needs
`given_name`, `family_name`, `hire_date` and `branch` (a column or a default). References
are matched like this: `branch` and `job_level` by code, `org_unit` by code and then by
name, `manager` by employee number and then by name ("given family", "family given", the
name in local script or the preferred name; it must name exactly one person).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

from domain.errors import DomainError
from domain.imports.dates import DATE_ORDERS
from i18n import N_

FIELDS = (
    "employee_number",
    "given_name",
    "family_name",
    "local_name",
    "preferred_name",
    "work_email",
    "phone",
    "birth_date",
    "hire_date",
    "national_id",
    "bank_account",
    "branch",
    "org_unit",
    "job_title",
    "job_level",
    "manager",
    "salary",
    "salary_currency",
    "salary_period",
    "status",
    "effective_date",
)
_SECTIONS = {"file", "columns", "defaults", "changes"}
_FILE_KEYS = {"sheet", "header_row", "delimiter", "encoding", "date_order"}


@dataclasses.dataclass(frozen=True)
class Mapping:
    columns: dict[str, str]
    defaults: dict[str, str]
    sheet: str | None = None
    header_row: int = 1
    delimiter: str = ","
    encoding: str | None = None
    date_order: str | None = None
    effective_date: dt.date | None = None

    def column_of(self, field: str) -> str:
        """The file's header for `field`, or the field's own name when it is not mapped."""
        return self.columns.get(field, field)


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; `DomainError` names the first thing wrong."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DomainError(
            N_("The mapping file cannot be read: {reason}"), field="mapping", reason=str(exc)
        ) from exc
    return parse_mapping(raw)


def parse_mapping(raw: dict[str, Any]) -> Mapping:
    unknown = set(raw) - _SECTIONS
    if unknown:
        raise DomainError(
            N_("The mapping has an unknown section: {value}."),
            field="mapping",
            value=", ".join(sorted(unknown)),
        )
    columns = _strings(raw.get("columns", {}), "columns")
    defaults = _strings(raw.get("defaults", {}), "defaults")
    for section, names in (("columns", columns), ("defaults", defaults)):
        for name in names:
            if name not in FIELDS:
                raise DomainError(
                    N_("The mapping names an unknown field: {value}."),
                    field=f"mapping.{section}",
                    value=name,
                )
    if "employee_number" not in columns:
        raise DomainError(
            N_("The mapping must give the column of employee_number."), field="mapping.columns"
        )
    options = raw.get("file", {})
    if not isinstance(options, dict) or set(options) - _FILE_KEYS:
        raise DomainError(
            N_("The mapping's [file] section accepts {value} only."),
            field="mapping.file",
            value=", ".join(sorted(_FILE_KEYS)),
        )
    order = options.get("date_order")
    if order is not None and order not in DATE_ORDERS:
        raise DomainError(
            N_('date_order is "DMY" or "MDY".'), field="mapping.file.date_order", value=order
        )
    changes = raw.get("changes", {})
    effective = changes.get("effective_date") if isinstance(changes, dict) else None
    if effective is not None and not isinstance(effective, dt.date):
        raise DomainError(
            N_("effective_date is a date such as 2026-01-01."),
            field="mapping.changes.effective_date",
        )
    header_row = options.get("header_row", 1)
    if not isinstance(header_row, int) or header_row < 1:
        raise DomainError(N_("header_row is a row number."), field="mapping.file.header_row")
    return Mapping(
        columns=columns,
        defaults=defaults,
        sheet=options.get("sheet"),
        header_row=header_row,
        delimiter=str(options.get("delimiter", ",")),
        encoding=options.get("encoding"),
        date_order=order,
        effective_date=effective,
    )


def _strings(section: object, name: str) -> dict[str, str]:
    if not isinstance(section, dict) or not all(
        isinstance(v, str | int | float) for v in section.values()
    ):
        raise DomainError(
            N_("The mapping's [{value}] section holds names and texts only."),
            field=f"mapping.{name}",
            value=name,
        )
    return {str(k): str(v) for k, v in section.items()}
