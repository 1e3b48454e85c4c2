"""What an import found and did: problems per row and cell, counts, and notes."""

from __future__ import annotations

import dataclasses
from collections import Counter

from domain.errors import DomainError
from i18n import N_

# Problems kept for the report; past this only the count grows, so memory stays flat.
MAX_PROBLEMS = 1000


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with the source. `row` counts the header as row 1; None: the file."""

    row: int | None
    column: str | None
    value: str | None
    message: str  # untranslated, placeholders unfilled
    params: dict[str, object] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, row: int | None, column: str | None, value: object, error: DomainError) -> Problem:
        return cls(row, column, _text(value), error.message, dict(error.params))


@dataclasses.dataclass
class ImportReport:
    """Filled in by an importer and printed by the command line."""

    source: str
    dry_run: bool = False
    rows: int = 0
    problems: list[Problem] = dataclasses.field(default_factory=list)
    problem_count: int = 0
    created: Counter[str] = dataclasses.field(default_factory=Counter)
    changed: Counter[str] = dataclasses.field(default_factory=Counter)
    unchanged: Counter[str] = dataclasses.field(default_factory=Counter)
    notes: list[tuple[str, dict[str, object]]] = dataclasses.field(default_factory=list)

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def note(self, message: str, **params: object) -> None:
        self.notes.append((message, params))

    @property
    def rejected(self) -> bool:
        return self.problem_count > 0

    @property
    def wrote(self) -> bool:
        return bool(self.created or self.changed)


class ImportRejected(DomainError):
    """Raised inside the import transaction so that a late problem rolls everything back."""

    code = "IMPORT_REJECTED"

    def __init__(self) -> None:
        super().__init__(N_("The file was rejected; nothing was written."))


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)
