"""Leak-free evaluation of the attrition pipeline on public tables.

`renshi risk evaluate --dataset ibm-attrition FILE` runs this on IBM's HR attrition table
(who left, ever), `--dataset job-retention FILE --horizon H` on the job retention table of
the people analytics handbook (who left within H months: the horizon formulation).

Repeated stratified k-fold cross-validation: each fold fits a fresh pipeline (scaling,
encoding, classifier and any calibration) on its training rows only and predicts the
held-out rows, so every row gets one out-of-fold probability per repeat from a model that
never saw it.

- ROC AUC, PR AUC (average precision) and Brier score are computed per fold; the report
  gives their mean and standard deviation over all folds.
- The calibration table pools every out-of-fold prediction (rows x repeats), sorts them and
  cuts them into ten groups of equal size (deciles of predicted probability): count, mean
  predicted probability and observed leaving rate per decile.
- The fairness report (`domain.analytics.fairness`) uses the same pooled predictions.

Protected attributes (IBM: Gender, Age, MaritalStatus; job retention: gender) are read
for the fairness report only; they, constant columns and identifiers never enter the
feature matrix.

In the job retention table `month` is when someone left (`left` = 1) or when observation
ended (`left` = 0). Within H months: a leaver with month <= H is positive; a stayer seen
for at least H months is negative; a stayer seen for less is unknown and left out (its
count is reported), as is usual for censored time-to-event data.
"""

from __future__ import annotations

import csv
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
from sklearn.model_selection import RepeatedStratifiedKFold

from domain.analytics.attrition_model import (
    MODEL_DESCRIPTION,
    Calibration,
    CalibrationBin,
    Spread,
    attrition_pipeline,
    calibration_error,
    cross_validate,
    largest_calibration_gap,
)
from domain.analytics.fairness import FairnessReport, age_band, fairness_report
from domain.errors import DomainError
from i18n import N_

IBM_ATTRIBUTION = "IBM HR Analytics Employee Attrition & Performance, IBM"
TARGET = "Attrition"
# Reported on in the fairness report, never model inputs.
PROTECTED = ("Gender", "Age", "MaritalStatus")
# Constant columns and the row's identifier: nothing to learn from, never model inputs.
NOT_FEATURES = ("EmployeeCount", "EmployeeNumber", "Over18", "StandardHours")
NUMERIC = (
    "DailyRate",
    "HourlyRate",
    "MonthlyRate",
    "PercentSalaryHike",
    "PerformanceRating",
    "TrainingTimesLastYear",
)
SKEWED = (
    "DistanceFromHome",
    "MonthlyIncome",
    "NumCompaniesWorked",
    "TotalWorkingYears",
    "YearsAtCompany",
    "YearsInCurrentRole",
    "YearsSinceLastPromotion",
    "YearsWithCurrManager",
)
CATEGORICAL = (
    "BusinessTravel",
    "Department",
    "EducationField",
    "JobRole",
    "OverTime",
    # Ordinal scores and levels with four or five values each.
    "Education",
    "EnvironmentSatisfaction",
    "JobInvolvement",
    "JobLevel",
    "JobSatisfaction",
    "RelationshipSatisfaction",
    "StockOptionLevel",
    "WorkLifeBalance",
)
FEATURES = NUMERIC + SKEWED + CATEGORICAL
DEFAULT_THRESHOLD = 0.5


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """What one public table holds: its outcome, its inputs by kind, what is never an input."""

    dataset: str
    attribution: str
    target: str
    numeric: tuple[str, ...]
    skewed: tuple[str, ...]
    categorical: tuple[str, ...]
    protected: tuple[str, ...]
    not_features: tuple[str, ...]
    # Further columns the reader needs (to build the outcome, not as inputs).
    also_read: tuple[str, ...] = ()

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.skewed + self.categorical


IBM = TableSpec(
    dataset="ibm-attrition",
    attribution=IBM_ATTRIBUTION,
    target=TARGET,
    numeric=NUMERIC,
    skewed=SKEWED,
    categorical=CATEGORICAL,
    protected=PROTECTED,
    not_features=NOT_FEATURES,
)
JOB_RETENTION = TableSpec(
    dataset="job-retention",
    attribution="job_retention, peopleanalyticsdata 0.1.7 (MIT), from 'Handbook of "
    "Regression Modeling in People Analytics'",
    target="left",
    # Survey scores of 1 to 10: numbers.
    numeric=("sentiment", "intention"),
    skewed=(),
    categorical=("field", "level"),
    protected=("gender",),
    # When the person left or was last seen: it defines the outcome, so never an input.
    not_features=("month",),
    also_read=("month",),
)
SPECS = {spec.dataset: spec for spec in (IBM, JOB_RETENTION)}


@dataclasses.dataclass(frozen=True)
class AttritionTable:
    """Features, outcomes and protected attributes of one attrition table, row by row."""

    spec: TableSpec
    source: str
    features: npt.NDArray[np.object_]  # columns in spec.features order
    outcomes: npt.NDArray[np.int_]  # 1 = left (within the horizon, if there is one)
    attributes: dict[str, list[str | None]]  # fairness groups, one label per row
    horizon_months: int | None = None
    left_out: int = 0  # rows whose outcome within the horizon is unknown

    @property
    def rows(self) -> int:
        return len(self.outcomes)

    @property
    def leavers(self) -> int:
        return int(self.outcomes.sum())


def read_ibm_attrition(path: Path) -> AttritionTable:
    """Read IBM's table (UTF-8 with or without a byte-order mark), checking every cell used."""
    cells: list[list[object]] = []
    outcomes: list[int] = []
    genders: list[str | None] = []
    ages: list[int | None] = []
    for number, row in _rows(path, IBM):
        cells.append(_cells(row, IBM, number))
        outcomes.append(_choice(row, TARGET, {"Yes": 1, "No": 0}, number))
        genders.append(row["Gender"] or None)
        ages.append(int(_number(row, "Age", number)) if row["Age"] else None)
    return AttritionTable(
        spec=IBM,
        source=path.name,
        features=_matrix(cells),
        outcomes=np.array(outcomes, dtype=np.int_),
        attributes={"gender": genders, "age band": [age_band(age) for age in ages]},
    )


def read_job_retention(path: Path, horizon_months: int) -> AttritionTable:
    """Read the job retention table for leaving within `horizon_months` (1 to 12)."""
    cells: list[list[object]] = []
    outcomes: list[int] = []
    genders: list[str | None] = []
    left_out = 0
    for number, row in _rows(path, JOB_RETENTION):
        left = _choice(row, "left", {"1": 1, "0": 0}, number)
        month = _number(row, "month", number)
        if not left and month < horizon_months:
            left_out += 1  # still there when last seen, before the horizon: unknown
            continue
        cells.append(_cells(row, JOB_RETENTION, number))
        outcomes.append(int(left and month <= horizon_months))
        genders.append(row["gender"] or None)
    return AttritionTable(
        spec=JOB_RETENTION,
        source=path.name,
        features=_matrix(cells),
        outcomes=np.array(outcomes, dtype=np.int_),
        attributes={"gender": genders},
        horizon_months=horizon_months,
        left_out=left_out,
    )


def _cells(row: dict[str, str], spec: TableSpec, number: int) -> list[object]:
    numbers: list[object] = [_number(row, c, number) for c in spec.numeric + spec.skewed]
    return numbers + [row[c] for c in spec.categorical]


def _matrix(cells: list[list[object]]) -> npt.NDArray[np.object_]:
    if not cells:
        raise DomainError(N_("The file has no rows."))
    return np.array(cells, dtype=object)


def _rows(path: Path, spec: TableSpec) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            if spec.target not in header:
                raise DomainError(N_("The file has no column {value}."), value=spec.target)
            needed = spec.features + spec.protected + spec.also_read
            missing = [c for c in needed if c not in header]
            if missing:
                raise DomainError(N_("The file has no column {value}."), value=", ".join(missing))
            for number, row in enumerate(reader, start=2):
                yield number, {k: (v or "").strip() for k, v in row.items() if k}
    except UnicodeDecodeError as exc:
        raise DomainError(N_("The file is not UTF-8 text.")) from exc


def _number(row: dict[str, str], column: str, number: int) -> float:
    value = row[column]
    try:
        return float(value)
    except ValueError:
        raise DomainError(
            N_('Row {row}, column "{column}": "{value}" is not a number.'),
            row=number,
            column=column,
            value=value,
        ) from None


def _choice(row: dict[str, str], column: str, values: dict[str, int], number: int) -> int:
    value = row[column]
    if value not in values:
        yes, no = values
        raise DomainError(
            N_('Row {row}, column "{column}": "{value}" is neither {yes} nor {no}.'),
            row=number,
            column=column,
            value=value,
            yes=yes,
            no=no,
        )
    return values[value]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Everything `renshi risk evaluate` prints."""

    spec: TableSpec
    horizon_months: int | None
    left_out: int
    source: str
    rows: int
    leavers: int
    folds: int
    repeats: int
    seed: int
    calibration_method: Calibration
    roc_auc: Spread
    pr_auc: Spread
    brier: Spread
    calibration: list[CalibrationBin]
    predictions_per_row: int
    fairness: FairnessReport
    seconds: float

    @property
    def calibration_error(self) -> float:
        return calibration_error(self.calibration)

    @property
    def largest_calibration_gap(self) -> float:
        return largest_calibration_gap(self.calibration)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form of `renshi risk evaluate --json`."""
        return {
            "dataset": self.spec.dataset,
            "source": self.source,
            "attribution": self.spec.attribution,
            "horizon_months": self.horizon_months,
            "rows": self.rows,
            "left_out": self.left_out,
            "leavers": self.leavers,
            "model": MODEL_DESCRIPTION,
            "calibration_method": self.calibration_method,
            "features": list(self.spec.features),
            "not_features": {
                "protected": list(self.spec.protected),
                "constant_or_id": list(self.spec.not_features),
            },
            "cross_validation": {
                "kind": "repeated stratified k-fold",
                "folds": self.folds,
                "repeats": self.repeats,
                "seed": self.seed,
            },
            "roc_auc": dataclasses.asdict(self.roc_auc),
            "pr_auc": dataclasses.asdict(self.pr_auc),
            "brier": dataclasses.asdict(self.brier),
            "calibration": {
                "predictions": sum(b.count for b in self.calibration),
                "predictions_per_row": self.predictions_per_row,
                "expected_calibration_error": self.calibration_error,
                "largest_gap": self.largest_calibration_gap,
                "deciles": [dataclasses.asdict(b) for b in self.calibration],
            },
            "fairness": self.fairness.as_dict(),
            "seconds": self.seconds,
        }


def evaluate_attrition(
    table: AttritionTable,
    *,
    folds: int = 5,
    repeats: int = 5,
    seed: int = 42,
    calibration: Calibration = "isotonic",
    threshold: float = DEFAULT_THRESHOLD,
) -> Evaluation:
    """Cross-validate the attrition pipeline on `table` (see the module's docstring)."""
    stayers = table.rows - table.leavers
    if min(table.leavers, stayers) < folds:
        raise DomainError(
            N_(
                "{folds}-fold cross-validation needs at least {folds} leavers and {folds} "
                "stayers; the file has {leavers} and {stayers}."
            ),
            folds=folds,
            leavers=table.leavers,
            stayers=stayers,
        )
    started = time.perf_counter()
    columns = column_indices(table.spec)
    template = attrition_pipeline(**columns, calibration=calibration)
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)

    measured = cross_validate(
        template, table.features, table.outcomes, splitter.split(table.features, table.outcomes)
    )
    rows, probabilities, outcomes = measured.rows, measured.probabilities, measured.outcomes
    per_row = np.bincount(rows, minlength=table.rows)
    assert per_row.min() == per_row.max() == repeats  # every row, once per repeat
    fairness = fairness_report(
        probabilities,
        outcomes,
        {name: [labels[i] for i in rows] for name, labels in table.attributes.items()},
        threshold=threshold,
    )
    return Evaluation(
        spec=table.spec,
        horizon_months=table.horizon_months,
        left_out=table.left_out,
        source=table.source,
        rows=table.rows,
        leavers=table.leavers,
        folds=folds,
        repeats=repeats,
        seed=seed,
        calibration_method=calibration,
        roc_auc=measured.roc_auc,
        pr_auc=measured.pr_auc,
        brier=measured.brier,
        calibration=measured.calibration,
        predictions_per_row=repeats,
        fairness=fairness,
        seconds=time.perf_counter() - started,
    )


class ColumnIndices(TypedDict):
    """`attrition_pipeline`'s column arguments."""

    numeric: list[int]
    skewed: list[int]
    categorical: list[int]


def column_indices(spec: TableSpec = IBM) -> ColumnIndices:
    """Where each kind of feature sits in the feature matrix (spec.features order)."""
    features = spec.features
    return {
        "numeric": [features.index(c) for c in spec.numeric],
        "skewed": [features.index(c) for c in spec.skewed],
        "categorical": [features.index(c) for c in spec.categorical],
    }
