"""The attrition model: the probability that an employee leaves.

One scikit-learn pipeline serves the IBM evaluation and (later) tenant models: preprocessing
and classifier in one object, so cross-validation refits the scaling and the encoding inside
every fold and nothing about the held-out rows reaches training.

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

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

Calibration = Literal["none", "sigmoid", "isotonic"]
CALIBRATIONS: tuple[Calibration, ...] = ("none", "sigmoid", "isotonic")
# Folds of the inner split that CalibratedClassifierCV fits its calibrator on.
CALIBRATION_FOLDS = 3
MODEL_DESCRIPTION = "logistic regression (log1p on skewed counts, scaling, one-hot)"


def attrition_pipeline(
    *,
    numeric: Sequence[int],
    skewed: Sequence[int],
    categorical: Sequence[int],
    calibration: Calibration = "isotonic",
) -> Any:
    """An unfitted classifier over a feature matrix whose columns the index lists name.

    Numeric and skewed columns hold numbers, categorical ones strings. Returns a scikit-learn
    estimator with `fit` and `predict_proba` (typed Any: scikit-learn ships no types).
    """
    log_then_scale = Pipeline(
        [
            (
                "log1p",
                FunctionTransformer(np.log1p, validate=True, feature_names_out="one-to-one"),
            ),
            ("scale", StandardScaler()),
        ]
    )
    preprocess = ColumnTransformer(
        [
            ("numeric", StandardScaler(), list(numeric)),
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
    return CalibratedClassifierCV(model, method=calibration, cv=CALIBRATION_FOLDS)
