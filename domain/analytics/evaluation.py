"""Leak-free evaluation of the attrition pipeline on IBM's HR attrition table.

`renshi risk evaluate --dataset ibm-attrition FILE` runs this. Repeated stratified k-fold
cross-validation: each fold fits a fresh pipeline (scaling, encoding, classifier and any
calibration) on its training rows only and predicts the held-out rows, so every row gets
one out-of-fold probability per repeat from a model that never saw it.

- ROC AUC, PR AUC (average precision) and Brier score are computed per fold; the report
  gives their mean and standard deviation over all folds.
- The calibration table pools every out-of-fold prediction (rows x repeats), sorts them and
  cuts them into ten groups of equal size (deciles of predicted probability): count, mean
  predicted probability and observed leaving rate per decile.
- The fairness report (`domain.analytics.fairness`) uses the same pooled predictions.

Gender, Age and MaritalStatus are read for the fairness report only; they, the constant
columns and the employee number never enter the feature matrix.
"""

from __future__ import annotations

import csv
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
class AttritionTable:
    """Features, outcomes and protected attributes of one attrition table, row by row."""

    source: str
    features: npt.NDArray[np.object_]  # columns in FEATURES order
    outcomes: npt.NDArray[np.int_]  # 1 = left
    genders: list[str | None]
    ages: list[int | None]

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
    for number, row in _rows(path):
        cells.append(
            [_number(row, column, number) for column in NUMERIC + SKEWED]
            + [row[column] for column in CATEGORICAL]
        )
        outcomes.append(_outcome(row, number))
        genders.append(row["Gender"] or None)
        ages.append(int(_number(row, "Age", number)) if row["Age"] else None)
    if not cells:
        raise DomainError(N_("The file has no rows."))
    return AttritionTable(
        source=path.name,
        features=np.array(cells, dtype=object),
        outcomes=np.array(outcomes, dtype=np.int_),
        genders=genders,
        ages=ages,
    )


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            if TARGET not in header:
                raise DomainError(N_("The file has no column {value}."), value=TARGET)
            missing = [c for c in FEATURES + PROTECTED if c not in header]
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


def _outcome(row: dict[str, str], number: int) -> int:
    value = row[TARGET]
    if value not in ("Yes", "No"):
        raise DomainError(
            N_('Row {row}, column "{column}": "{value}" is neither Yes nor No.'),
            row=number,
            column=TARGET,
            value=value,
        )
    return 1 if value == "Yes" else 0


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Everything `renshi risk evaluate` prints."""

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
            "dataset": "ibm-attrition",
            "source": self.source,
            "attribution": IBM_ATTRIBUTION,
            "rows": self.rows,
            "leavers": self.leavers,
            "model": MODEL_DESCRIPTION,
            "calibration_method": self.calibration_method,
            "features": list(FEATURES),
            "not_features": {"protected": list(PROTECTED), "constant_or_id": list(NOT_FEATURES)},
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
    columns = column_indices()
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
        {
            "gender": [table.genders[i] for i in rows],
            "age band": [age_band(table.ages[i]) for i in rows],
        },
        threshold=threshold,
    )
    return Evaluation(
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


def column_indices() -> dict[str, list[int]]:
    """Where each kind of feature sits in the feature matrix (FEATURES order)."""
    return {
        "numeric": [FEATURES.index(c) for c in NUMERIC],
        "skewed": [FEATURES.index(c) for c in SKEWED],
        "categorical": [FEATURES.index(c) for c in CATEGORICAL],
    }
