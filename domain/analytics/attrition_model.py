"""The attrition model (the probability that an employee leaves) and how it is measured.

One scikit-learn pipeline serves the IBM evaluation (`domain.analytics.evaluation`) and
tenant models (`domain.analytics.attrition`): preprocessing and classifier in one object,
so cross-validation refits the imputation, scaling and encoding inside every fold and
nothing about the held-out rows reaches training.

- Missing numbers (no review yet, no pay band) are replaced by the training median (0
  when a column has no value at all), with an indicator column saying they were missing.

- Skewed counts (income, years, distances) are log1p-transformed, then scaled: attrition
  risk falls steeply over the first years and flattens later, which a linear model on raw
  years cannot express.
- Other numbers are scaled.
- Categories, and ordinal survey scores or levels with a handful of values, are one-hot
  encoded, so "satisfaction 1" may matter more than the step from 3 to 4. Categories
  unseen in training are ignored.
- The classifier is a logistic regression without class weights or resampling, which
  would shift its probabilities away from the observed rates.
- Calibration: on IBM's table the plain logistic regression ranks well but is
  overconfident in the middle deciles (predicted 0.22 where 0.13 leave; expected
  calibration error 0.035). Isotonic regression fitted by `CalibratedClassifierCV` on
  inner folds of the training rows halves that error at the same ROC AUC, so it is the
  default; "sigmoid" (Platt scaling) made it worse (0.043). See benchmarks/README.md.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.special import expit
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

Calibration = Literal["none", "sigmoid", "isotonic"]
CALIBRATIONS: tuple[Calibration, ...] = ("none", "sigmoid", "isotonic")
# Folds of the inner split that CalibratedClassifierCV fits its calibrator on.
CALIBRATION_FOLDS = 3
MODEL_DESCRIPTION = "logistic regression (log1p on skewed counts, scaling, one-hot)"
CALIBRATION_BINS = 10


def attrition_pipeline(
    *,
    numeric: Sequence[int],
    skewed: Sequence[int],
    categorical: Sequence[int],
    calibration: Calibration = "isotonic",
    ensemble: bool = True,
) -> Any:
    """An unfitted classifier over a feature matrix whose columns the index lists name.

    Numeric and skewed columns hold numbers (NaN when missing; skewed ones not below 0),
    categorical ones strings. Returns a scikit-learn estimator with `fit` and
    `predict_proba` (typed Any: scikit-learn ships no types).

    `ensemble` (calibrated only): keep one pipeline per inner fold, each with its own
    calibrator, and average them (scikit-learn's default); without it, one pipeline fitted
    on all rows and one calibrator fitted on its inner folds' out-of-fold decisions, which
    predicts a third as many times over.
    """
    scale = Pipeline(
        [
            ("impute", _imputer()),
            ("scale", StandardScaler()),
        ]
    )
    log_then_scale = Pipeline(
        [
            ("impute", _imputer()),
            (
                "log1p",
                FunctionTransformer(np.log1p, validate=True, feature_names_out="one-to-one"),
            ),
            ("scale", StandardScaler()),
        ]
    )
    preprocess = ColumnTransformer(
        [
            ("numeric", scale, list(numeric)),
            ("skewed", log_then_scale, list(skewed)),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), list(categorical)),
        ]
    )
    model = Pipeline(
        [
            ("preprocess", preprocess),
            ("classify", LogisticRegression(max_iter=2000)),
        ]
    )
    if calibration == "none":
        return model
    return CalibratedClassifierCV(
        model, method=calibration, cv=CALIBRATION_FOLDS, ensemble=ensemble
    )


def _imputer() -> Any:
    # A column with no value at all in training (nobody reviewed yet) is kept as zeros
    # rather than dropped, so the fitted model takes the same columns whatever the data.
    return SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)


@dataclasses.dataclass(frozen=True)
class Spread:
    """Mean and standard deviation of one metric over the folds."""

    mean: float
    std: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        return cls(mean=float(np.mean(values)), std=float(np.std(values)))


@dataclasses.dataclass(frozen=True)
class CalibrationBin:
    """One decile of predicted probability."""

    decile: int
    count: int
    mean_predicted: float
    observed_rate: float
    lowest_predicted: float
    highest_predicted: float


def calibration_table(
    probabilities: npt.NDArray[np.float64],
    outcomes: npt.NDArray[np.int_],
    bins: int = CALIBRATION_BINS,
) -> list[CalibrationBin]:
    """Predictions sorted and cut into `bins` groups of (nearly) equal size.

    Cutting the sorted order rather than at quantile values keeps the groups equal when
    many predictions tie, and puts every prediction in exactly one group.
    """
    order = np.argsort(probabilities, kind="stable")
    table = []
    for decile, members in enumerate(np.array_split(order, bins), start=1):
        if members.size == 0:
            continue
        predicted = probabilities[members]
        table.append(
            CalibrationBin(
                decile=decile,
                count=int(members.size),
                mean_predicted=float(predicted.mean()),
                observed_rate=float(outcomes[members].mean()),
                lowest_predicted=float(predicted.min()),
                highest_predicted=float(predicted.max()),
            )
        )
    return table


def calibration_error(table: list[CalibrationBin]) -> float:
    """Expected calibration error: |mean predicted - observed| weighted by count."""
    total = sum(b.count for b in table)
    return sum(b.count * abs(b.mean_predicted - b.observed_rate) for b in table) / total


def largest_calibration_gap(table: list[CalibrationBin]) -> float:
    return max(abs(b.mean_predicted - b.observed_rate) for b in table)


@dataclasses.dataclass(frozen=True)
class CrossValidation:
    """Per-fold metrics and every out-of-fold prediction, pooled over the folds."""

    roc_auc: Spread
    pr_auc: Spread
    brier: Spread
    scored_folds: int  # folds with leavers and stayers (the others have no AUC)
    rows: npt.NDArray[np.int_]  # which row each pooled prediction is for
    probabilities: npt.NDArray[np.float64]
    outcomes: npt.NDArray[np.int_]

    @property
    def calibration(self) -> list[CalibrationBin]:
        return calibration_table(self.probabilities, self.outcomes)


def cross_validate(
    template: Any,
    features: npt.NDArray[Any],
    outcomes: npt.NDArray[np.int_],
    splits: Iterable[tuple[npt.NDArray[np.int_], npt.NDArray[np.int_]]],
) -> CrossValidation:
    """Fit a clone of `template` on each split's training rows and predict its test rows."""
    scores: dict[str, list[float]] = {"roc_auc": [], "pr_auc": [], "brier": []}
    pooled_rows = []
    pooled_probabilities = []
    for train, test in splits:
        model = clone(template).fit(features[train], outcomes[train])
        probability = model.predict_proba(features[test])[:, 1]
        actual = outcomes[test]
        scores["brier"].append(float(brier_score_loss(actual, probability)))
        if 0 < actual.sum() < actual.size:
            scores["roc_auc"].append(float(roc_auc_score(actual, probability)))
            scores["pr_auc"].append(float(average_precision_score(actual, probability)))
        pooled_rows.append(test)
        pooled_probabilities.append(probability)
    rows = np.concatenate(pooled_rows)
    return CrossValidation(
        roc_auc=Spread.of(scores["roc_auc"]),
        pr_auc=Spread.of(scores["pr_auc"]),
        brier=Spread.of(scores["brier"]),
        scored_folds=len(scores["roc_auc"]),
        rows=rows,
        probabilities=np.concatenate(pooled_probabilities),
        outcomes=outcomes[rows],
    )


@dataclasses.dataclass(frozen=True)
class Contribution:
    """How much one input moved one prediction, in log-odds (positive: more likely to leave)."""

    feature: str
    contribution: float


@dataclasses.dataclass(frozen=True)
class ExplainableModel:
    """A fitted estimator with the average training row, seen through each inner pipeline.

    Contributions are measured from that average, so an input every employee shares (a
    single status, the same unit) explains nothing, as it should.
    """

    estimator: Any
    baselines: list[npt.NDArray[np.float64]]

    def predict_proba(self, features: npt.NDArray[Any]) -> Any:
        return self.estimator.predict_proba(features)


def fit_explainable(
    template: Any, features: npt.NDArray[Any], outcomes: npt.NDArray[np.int_]
) -> ExplainableModel:
    """Fit a clone of `template` on all rows and remember their average transformed row."""
    estimator = clone(template).fit(features, outcomes)
    baselines = [
        _dense(pipeline.named_steps["preprocess"].transform(features)).mean(axis=0)
        for pipeline in _pipelines(estimator)
    ]
    return ExplainableModel(estimator=estimator, baselines=baselines)


_SOURCE_COLUMN = re.compile(r"__(?:missingindicator_)?x(\d+)")


def contributions(
    model: ExplainableModel, row: npt.NDArray[Any], names: Sequence[str], *, top: int = 5
) -> list[Contribution]:
    """The `top` inputs that moved the prediction for one row most, largest first.

    Each transformed column adds coefficient x (value - training average) to the log-odds,
    relative to an average employee. Columns are summed back to the input they came from
    (a number and its missing-indicator, a category's one-hot columns). A calibrated model
    averages its inner pipelines; the isotonic step is monotone, so the signs hold.
    """
    [totals] = contribution_matrix(model, row.reshape(1, -1), names)
    order = np.argsort(-np.abs(totals), kind="stable")[:top]
    return [Contribution(feature=names[i], contribution=float(totals[i])) for i in order]


# Rows transformed at a time by `predict_and_explain`: bounds the dense intermediate.
CONTRIBUTION_CHUNK = 20_000


@dataclasses.dataclass(frozen=True)
class Explained:
    """Predictions for a matrix of rows, and what moved each of them."""

    probabilities: npt.NDArray[np.float64]  # of the positive class, one per row
    contributions: npt.NDArray[np.float64]  # rows x inputs, in log-odds


def contribution_matrix(
    model: ExplainableModel, features: npt.NDArray[Any], names: Sequence[str]
) -> npt.NDArray[np.float64]:
    """Every input's contribution to every row's log-odds (rows x inputs), as in
    `contributions`."""
    return predict_and_explain(model, features, names).contributions


def predict_and_explain(
    model: ExplainableModel, features: npt.NDArray[Any], names: Sequence[str]
) -> Explained:
    """`predict_proba` and the contributions of `contributions` for a whole matrix, with
    one transformation of the rows per inner pipeline instead of two.

    Each inner pipeline's decision (its log-odds) is its transformed row times the
    coefficients, plus the intercept; a calibrated model maps it through that pipeline's
    calibrator and averages, as `CalibratedClassifierCV.predict_proba` does for two
    classes (the test suite checks they agree). Scikit-learn's own calls cost a few
    milliseconds of checks each, which one employee's re-score would pay six times.
    """
    pipelines = _pipelines(model.estimator)
    calibrated = getattr(model.estimator, "calibrated_classifiers_", None)
    weights = [_input_weights(pipeline, len(names)) for pipeline in pipelines]
    offsets = [baseline @ weight for baseline, weight in zip(model.baselines, weights, strict=True)]
    probabilities = np.zeros(len(features))
    totals = np.zeros((len(features), len(names)))
    for start in range(0, len(features), CONTRIBUTION_CHUNK):
        rows = slice(start, start + CONTRIBUTION_CHUNK)
        chunk = features[rows]
        for index, pipeline in enumerate(pipelines):
            transformed = pipeline.named_steps["preprocess"].transform(chunk)
            classify = pipeline.named_steps["classify"]
            decision = np.asarray(transformed @ classify.coef_[0]) + classify.intercept_[0]
            if calibrated:
                probabilities[rows] += calibrated[index].calibrators[0].predict(decision)
            else:
                probabilities[rows] += expit(decision)
            totals[rows] += np.asarray(transformed @ weights[index]) - offsets[index]
    probabilities /= len(pipelines)
    totals /= len(pipelines)
    return Explained(probabilities=probabilities, contributions=totals)


def _input_weights(pipeline: Any, inputs: int) -> npt.NDArray[np.float64]:
    """(transformed columns x inputs): each column's coefficient, in its input's column."""
    preprocess = pipeline.named_steps["preprocess"]
    coefficients = pipeline.named_steps["classify"].coef_[0]
    columns = preprocess.get_feature_names_out()
    weights = np.zeros((len(columns), inputs))
    for index, (column, coefficient) in enumerate(zip(columns, coefficients, strict=True)):
        found = _SOURCE_COLUMN.search(column)
        assert found is not None, column
        weights[index, int(found.group(1))] = coefficient
    return weights


def _pipelines(estimator: Any) -> list[Any]:
    inner = getattr(estimator, "calibrated_classifiers_", None)
    return [c.estimator for c in inner] if inner else [estimator]


def _dense(matrix: Any) -> npt.NDArray[np.float64]:
    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype=float)
