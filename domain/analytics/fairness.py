"""Fairness of a risk model's decisions: who gets flagged, per gender and per age band.

A model flags an employee when its probability is at or above a decision threshold. For
each protected attribute the report gives, per group, the selection rate (the share
flagged) and the true-positive rate (the share of actual leavers flagged), and the ratio of
the lowest selection rate to the highest. Below 0.8 (the "four-fifths rule" of the US
Uniform Guidelines on Employee Selection) the report carries a warning.

The attributes are reported on, never used as model inputs: a model may still reach them
through proxies (years of experience say a lot about age), which is what this measures.
Groups whose value is unknown are listed as "unknown" and left out of the ratio. Small
groups make the rates noisy; the counts are there to judge that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from i18n import N_

# The selection-rate ratio below which a report warns (the four-fifths rule).
DISPARITY_FLOOR = 0.8
UNKNOWN = "unknown"
RATIO_WARNING = N_(
    "{attribute}: the lowest selection rate ({low_group}, {low_rate:.1%}) is "
    "{ratio:.2f} of the highest ({high_group}, {high_rate:.1%}), below {floor}."
)
AGE_BANDS = ("<30", "30-39", "40-49", "50+")


def age_band(age: int | None) -> str | None:
    """The age band of an age in whole years: <30, 30-39, 40-49 or 50+ (None stays None)."""
    if age is None:
        return None
    if age < 30:
        return AGE_BANDS[0]
    if age >= 50:
        return AGE_BANDS[3]
    return AGE_BANDS[1] if age < 40 else AGE_BANDS[2]


@dataclasses.dataclass(frozen=True)
class GroupRates:
    """What the decisions were for one group of one attribute."""

    group: str
    count: int
    selected: int
    positives: int
    true_positives: int

    @property
    def selection_rate(self) -> float:
        return self.selected / self.count

    @property
    def true_positive_rate(self) -> float | None:
        """None when the group has no actual positives (the rate is undefined)."""
        return self.true_positives / self.positives if self.positives else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "count": self.count,
            "selected": self.selected,
            "positives": self.positives,
            "true_positives": self.true_positives,
            "selection_rate": self.selection_rate,
            "true_positive_rate": self.true_positive_rate,
        }


@dataclasses.dataclass(frozen=True)
class FairnessWarning:
    """A selection-rate ratio below the floor; `message` is untranslated, `params` fill it."""

    attribute: str
    ratio: float
    message: str
    params: dict[str, object]

    def text(self) -> str:
        return self.message.format(**self.params)


@dataclasses.dataclass(frozen=True)
class AttributeFairness:
    """The groups of one attribute and the ratio of their lowest to highest selection rate."""

    attribute: str
    groups: tuple[GroupRates, ...]

    def _compared(self) -> list[GroupRates]:
        return [g for g in self.groups if g.group != UNKNOWN]

    @property
    def selection_rate_ratio(self) -> float | None:
        """Lowest over highest selection rate among known groups.

        None when fewer than two known groups exist or nobody was selected: there is
        nothing to compare then.
        """
        rates = [g.selection_rate for g in self._compared()]
        if len(rates) < 2 or max(rates) == 0:
            return None
        return min(rates) / max(rates)

    @property
    def warning(self) -> FairnessWarning | None:
        ratio = self.selection_rate_ratio
        if ratio is None or ratio >= DISPARITY_FLOOR:
            return None
        compared = self._compared()
        lowest = min(compared, key=lambda g: g.selection_rate)
        highest = max(compared, key=lambda g: g.selection_rate)
        return FairnessWarning(
            attribute=self.attribute,
            ratio=ratio,
            message=RATIO_WARNING,
            params={
                "attribute": self.attribute,
                "low_group": lowest.group,
                "low_rate": lowest.selection_rate,
                "high_group": highest.group,
                "high_rate": highest.selection_rate,
                "ratio": ratio,
                "floor": DISPARITY_FLOOR,
            },
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "groups": [g.as_dict() for g in self.groups],
            "selection_rate_ratio": self.selection_rate_ratio,
        }


@dataclasses.dataclass(frozen=True)
class FairnessReport:
    """Per-attribute group rates at one decision threshold."""

    threshold: float
    attributes: tuple[AttributeFairness, ...]

    @property
    def warnings(self) -> list[FairnessWarning]:
        return [a.warning for a in self.attributes if a.warning is not None]

    def attribute(self, name: str) -> AttributeFairness:
        return next(a for a in self.attributes if a.attribute == name)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (stored with tenant models, printed by the CLI)."""
        return {
            "threshold": self.threshold,
            "disparity_floor": DISPARITY_FLOOR,
            "attributes": [a.as_dict() for a in self.attributes],
            "warnings": [
                {
                    "attribute": w.attribute,
                    "ratio": w.ratio,
                    "message": w.text(),
                    # Untranslated template and its values, to show in the reader's language.
                    "template": w.message,
                    "params": w.params,
                }
                for w in self.warnings
            ],
        }


def fairness_report(
    probabilities: npt.ArrayLike,
    outcomes: npt.ArrayLike,
    attributes: Mapping[str, Sequence[str | None]],
    *,
    threshold: float,
) -> FairnessReport:
    """Rates per group of each attribute when `probabilities >= threshold` flags someone.

    `outcomes` are 1 for an actual positive (a leaver) and 0 otherwise; every attribute
    gives one group label (or None) per prediction, in the same order.
    """
    scores = np.asarray(probabilities, dtype=np.float64)
    actual = np.asarray(outcomes).astype(bool)
    if scores.shape != actual.shape or scores.ndim != 1:
        raise ValueError("probabilities and outcomes must be two vectors of one length")
    selected = scores >= threshold

    reports = []
    for name, labels in attributes.items():
        if len(labels) != len(scores):
            raise ValueError(f"attribute {name} has {len(labels)} labels for {len(scores)} rows")
        groups = np.array([UNKNOWN if label is None else label for label in labels])
        rates = [
            _rates(str(group), selected[groups == group], actual[groups == group])
            for group in sorted(set(groups.tolist()), key=_group_order)
        ]
        reports.append(AttributeFairness(attribute=name, groups=tuple(rates)))
    return FairnessReport(threshold=threshold, attributes=tuple(reports))


def _rates(
    group: str, selected: npt.NDArray[np.bool_], actual: npt.NDArray[np.bool_]
) -> GroupRates:
    return GroupRates(
        group=group,
        count=int(selected.size),
        selected=int(selected.sum()),
        positives=int(actual.sum()),
        true_positives=int((selected & actual).sum()),
    )


def _group_order(group: str) -> tuple[int, int, str]:
    """Age bands in age order, other labels alphabetically, "unknown" last."""
    if group == UNKNOWN:
        return (2, 0, group)
    if group in AGE_BANDS:
        return (0, AGE_BANDS.index(group), group)
    return (1, 0, group)
