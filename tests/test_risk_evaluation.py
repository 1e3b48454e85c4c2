"""`renshi risk evaluate` on IBM's attrition table, and the fairness report it carries."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from domain.analytics.fairness import age_band, fairness_report
from renshi.cli import main
from tests.conftest import shared_data

RENSHI = Path(sys.executable).parent / "renshi"
SHA256 = "a5c31e38bd7fafc9bc333884eb181b06b41b8e5e488e8f7ccb27199fb3be7659"
IBM = ("ibm_attrition", "WA_Fn-UseC_-HR-Employee-Attrition.csv")
NEVER_INPUTS = {
    "Gender",
    "Age",
    "MaritalStatus",
    "EmployeeCount",
    "EmployeeNumber",
    "Over18",
    "StandardHours",
    "Attrition",
}


def evaluate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run `renshi risk evaluate ARGS...` as an operator would."""
    return subprocess.run(
        [str(RENSHI), "risk", "evaluate", *map(str, args)],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def ibm_table() -> Path:
    path = shared_data(*IBM)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA256
    return path


def rewrite(source: Path, target: Path, change: Any) -> Path:
    """A copy of a CSV file with `change(row)` applied to every row (a dict)."""
    with source.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        rows = []
        for row in reader:
            change(row)
            rows.append(row)
    header = [c for c in header if c in rows[0]]
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows({c: row[c] for c in header} for row in rows)
    return target


# --- the evaluation on the shared file ---------------------------------------------------


def test_the_ibm_evaluation_reaches_the_agreed_roc_auc_with_calibration_and_fairness() -> None:
    path = ibm_table()

    run = evaluate(path, "--dataset", "ibm-attrition", "--json")

    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert set(report) == {
        "dataset", "source", "attribution", "horizon_months", "rows", "left_out", "leavers",
        "model",
        "calibration_method", "features", "not_features", "cross_validation",
        "roc_auc", "pr_auc", "brier", "calibration", "fairness", "seconds",
    }  # fmt: skip
    assert (report["rows"], report["leavers"]) == (1470, 237)
    assert (report["horizon_months"], report["left_out"]) == (None, 0)
    assert report["calibration_method"] == "isotonic"
    assert report["cross_validation"] == {
        "kind": "repeated stratified k-fold",
        "folds": 5,
        "repeats": 5,
        "seed": 42,
    }

    # CI fails below 0.80 (the floor; 0.83 is the target, measured in benchmarks).
    assert report["roc_auc"]["mean"] >= 0.80, report["roc_auc"]
    assert 0 < report["roc_auc"]["std"] < 0.1
    assert 0.16 < report["pr_auc"]["mean"] <= 1  # above the 16 % a random ranking gets
    assert 0 < report["brier"]["mean"] < 0.16 * 0.84  # below always saying the base rate

    # Gender, age, marital status, the constant columns and the id are never inputs.
    assert NEVER_INPUTS.isdisjoint(report["features"])
    assert len(report["features"]) == 27 == len(set(report["features"]))
    assert report["not_features"] == {
        "protected": ["Gender", "Age", "MaritalStatus"],
        "constant_or_id": ["EmployeeCount", "EmployeeNumber", "Over18", "StandardHours"],
    }

    # Every row's out-of-fold prediction of every repeat is in exactly one decile.
    calibration = report["calibration"]
    deciles = calibration["deciles"]
    assert calibration["predictions"] == 1470 * 5 == sum(d["count"] for d in deciles)
    assert calibration["predictions_per_row"] == 5
    assert [d["decile"] for d in deciles] == list(range(1, 11))
    assert [d["count"] for d in deciles] == [735] * 10
    leavers_seen = sum(round(d["observed_rate"] * d["count"]) for d in deciles)
    assert leavers_seen == 237 * 5
    means = [d["mean_predicted"] for d in deciles]
    assert means == sorted(means)
    assert calibration["largest_gap"] == max(
        abs(d["mean_predicted"] - d["observed_rate"]) for d in deciles
    )
    assert calibration["expected_calibration_error"] < 0.05

    # The fairness report counts every prediction once per attribute.
    fairness = report["fairness"]
    assert fairness["threshold"] == 0.5
    gender, age = fairness["attributes"]
    assert gender["attribute"] == "gender"
    assert [(g["group"], g["count"], g["positives"]) for g in gender["groups"]] == [
        ("Female", 588 * 5, 87 * 5),
        ("Male", 882 * 5, 150 * 5),
    ]
    assert age["attribute"] == "age band"
    assert [g["group"] for g in age["groups"]] == ["<30", "30-39", "40-49", "50+"]
    assert sum(g["count"] for g in age["groups"]) == 1470 * 5
    for attribute in (gender, age):
        rates = [g["selection_rate"] for g in attribute["groups"]]
        assert attribute["selection_rate_ratio"] == min(rates) / max(rates)
    warned = {w["attribute"] for w in fairness["warnings"]}
    assert warned == {a["attribute"] for a in (gender, age) if a["selection_rate_ratio"] < 0.8}


def test_gender_age_and_marital_status_do_not_change_the_model(tmp_path: Path) -> None:
    # Given the table and a copy where everyone's protected attributes are rewritten
    path = ibm_table()

    def scramble(row: dict[str, str]) -> None:
        row["Gender"] = "Male" if row["Gender"] == "Female" else "Female"
        row["Age"] = str(80 - int(row["Age"]))
        row["MaritalStatus"] = "Single"

    altered = rewrite(path, tmp_path / "altered.csv", scramble)
    quick = ("--dataset", "ibm-attrition", "--repeats", "1", "--calibration", "none", "--json")

    # When both are evaluated on the same folds
    original = json.loads(evaluate(path, *quick).stdout)
    changed = json.loads(evaluate(altered, *quick).stdout)

    # Then every model figure is identical; only the fairness groups moved
    for key in ("roc_auc", "pr_auc", "brier"):
        assert changed[key] == original[key]
    assert changed["calibration"]["deciles"] == original["calibration"]["deciles"]
    assert changed["fairness"] != original["fairness"]


def test_the_job_retention_table_is_evaluated_for_leaving_within_a_horizon() -> None:
    # Given the time-to-leave table: who left (left = 1) or was last seen (0), in which month
    path = shared_data("people_analytics", "job_retention.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    within = [r for r in rows if r["left"] == "1" and int(r["month"]) <= 6]
    unknown = [r for r in rows if r["left"] == "0" and int(r["month"]) < 6]

    # When the 6-month outcome is evaluated
    run = evaluate(path, "--dataset", "job-retention", "--horizon", "6", "--json")

    # Then stayers last seen before six months are left out, the rest are known
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert (report["dataset"], report["horizon_months"]) == ("job-retention", 6)
    assert report["left_out"] == len(unknown) == 183
    assert report["rows"] == len(rows) - len(unknown) == 3587
    assert report["leavers"] == len(within) == 647
    assert report["features"] == ["sentiment", "intention", "field", "level"]
    assert report["not_features"] == {"protected": ["gender"], "constant_or_id": ["month"]}
    assert 0.6 < report["roc_auc"]["mean"] < 1
    assert sum(d["count"] for d in report["calibration"]["deciles"]) == 3587 * 5
    [gender] = report["fairness"]["attributes"]
    assert [(g["group"], g["count"]) for g in gender["groups"]] == [
        ("F", 5 * sum(r["gender"] == "F" for r in rows if r not in unknown)),
        ("M", 5 * sum(r["gender"] == "M" for r in rows if r not in unknown)),
    ]


# --- the fairness report on a hand-built example -----------------------------------------


def test_the_fairness_report_counts_selections_and_true_positives_per_group() -> None:
    # Given ten employees, six women and four men, with their probabilities and outcomes
    genders = ["F", "F", "F", "F", "F", "F", "M", "M", "M", None]
    ages = [25, 29, 30, 45, 52, 61, 33, 39, 49, 50]
    probabilities = [0.9, 0.6, 0.2, 0.5, 0.1, 0.49, 0.7, 0.1, 0.3, 0.8]
    outcomes = [1, 0, 1, 1, 0, 1, 1, 0, 1, 1]

    # When flagging at 0.5
    report = fairness_report(
        probabilities,
        outcomes,
        {"gender": genders, "age band": [age_band(a) for a in ages]},
        threshold=0.5,
    )

    # Then women: 3 of 6 flagged (0.9, 0.6, 0.5), 2 of their 4 leavers caught;
    # men: 1 of 3 (0.7), 1 of 2 leavers; the unknown one is listed but not compared.
    gender = report.attribute("gender")
    assert [g.as_dict() for g in gender.groups] == [
        {"group": "F", "count": 6, "selected": 3, "positives": 4, "true_positives": 2,
         "selection_rate": 0.5, "true_positive_rate": 0.5},
        {"group": "M", "count": 3, "selected": 1, "positives": 2, "true_positives": 1,
         "selection_rate": 1 / 3, "true_positive_rate": 0.5},
        {"group": "unknown", "count": 1, "selected": 1, "positives": 1, "true_positives": 1,
         "selection_rate": 1.0, "true_positive_rate": 1.0},
    ]  # fmt: skip
    assert gender.selection_rate_ratio == pytest.approx(2 / 3)

    # Age bands: <30 2 of 2, 30-39 1 of 3, 40-49 1 of 2, 50+ 1 of 3 (0.8 at exactly 50).
    age = report.attribute("age band")
    assert [(g.group, g.count, g.selected, g.true_positive_rate) for g in age.groups] == [
        ("<30", 2, 2, 1.0),
        ("30-39", 3, 1, 0.5),
        ("40-49", 2, 1, 0.5),
        ("50+", 3, 1, 0.5),
    ]
    assert age.selection_rate_ratio == pytest.approx(1 / 3)

    # Both ratios are below 0.8, so both warn, naming the groups and rates.
    assert [w.text() for w in report.warnings] == [
        "gender: the lowest selection rate (M, 33.3%) is 0.67 of the highest (F, 50.0%), "
        "below 0.8.",
        "age band: the lowest selection rate (30-39, 33.3%) is 0.33 of the highest "
        "(<30, 100.0%), below 0.8.",
    ]
    assert report.as_dict()["warnings"][1]["ratio"] == pytest.approx(1 / 3)


def test_the_fairness_report_is_quiet_at_or_above_four_fifths() -> None:
    # Five of ten women and four of ten men flagged: 0.4 / 0.5 = 0.8 exactly.
    genders = ["F"] * 10 + ["M"] * 10
    probabilities = [0.9] * 5 + [0.1] * 5 + [0.9] * 4 + [0.1] * 6

    report = fairness_report(probabilities, [0] * 20, {"gender": genders}, threshold=0.5)

    gender = report.attribute("gender")
    assert gender.selection_rate_ratio == pytest.approx(0.8)
    assert [g.true_positive_rate for g in gender.groups] == [None, None]  # no leavers
    assert report.warnings == []


def test_a_threshold_nobody_reaches_gives_no_ratio_and_no_warning() -> None:
    report = fairness_report([0.1, 0.2], [1, 0], {"gender": ["F", "M"]}, threshold=0.5)

    assert report.attribute("gender").selection_rate_ratio is None
    assert report.warnings == []


def test_age_bands_split_at_30_40_and_50() -> None:
    ages = [18, 29, 30, 39, 40, 49, 50, 70, None]

    assert [age_band(a) for a in ages] == [
        "<30", "<30", "30-39", "30-39", "40-49", "40-49", "50+", "50+", None,
    ]  # fmt: skip


# --- bad input ---------------------------------------------------------------------------


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["risk", "evaluate", *args], prog_name="renshi")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    result = run_cli(str(tmp_path / "nowhere.csv"), "--dataset", "ibm-attrition")

    assert result.exit_code == 2
    assert "File '" in result.output and "nowhere.csv' does not exist." in result.output


def test_an_unknown_dataset_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("Attrition\nYes\n", encoding="utf-8")

    result = run_cli(str(path), "--dataset", "kaggle-titanic")

    assert result.exit_code == 2
    assert (
        "Invalid value for '--dataset': 'kaggle-titanic' is not one of 'ibm-attrition', "
        "'job-retention'."
    ) in result.output


def test_the_horizon_goes_with_job_retention_only(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("left\n1\n", encoding="utf-8")

    without = run_cli(str(path), "--dataset", "job-retention")
    with_ibm = run_cli(str(path), "--dataset", "ibm-attrition", "--horizon", "3")
    too_far = run_cli(str(path), "--dataset", "job-retention", "--horizon", "13")

    assert without.exit_code == with_ibm.exit_code == too_far.exit_code == 2
    assert "Error: --horizon is required with --dataset job-retention." in without.output
    assert "it takes no --horizon." in with_ibm.output
    assert "13 is not in the range 1<=x<=12." in too_far.output


def test_a_table_without_the_attrition_column_is_refused(tmp_path: Path) -> None:
    path = rewrite(ibm_table(), tmp_path / "no-outcome.csv", lambda row: row.pop("Attrition"))

    result = run_cli(str(path), "--dataset", "ibm-attrition")

    assert result.exit_code == 1
    assert result.output == "Error: no-outcome.csv: The file has no column Attrition.\n"


def test_a_table_missing_a_feature_or_with_a_bad_cell_is_refused(tmp_path: Path) -> None:
    no_income = rewrite(ibm_table(), tmp_path / "a.csv", lambda row: row.pop("MonthlyIncome"))

    def bad_cell(row: dict[str, str]) -> None:
        if row["EmployeeNumber"] == "2":
            row["YearsAtCompany"] = "ten"

    bad = rewrite(ibm_table(), tmp_path / "b.csv", bad_cell)

    assert run_cli(str(no_income), "--dataset", "ibm-attrition").output == (
        "Error: a.csv: The file has no column MonthlyIncome.\n"
    )
    assert run_cli(str(bad), "--dataset", "ibm-attrition").output == (
        'Error: b.csv: Row 3, column "YearsAtCompany": "ten" is not a number.\n'
    )


def test_too_few_leavers_for_the_folds_is_refused(tmp_path: Path) -> None:
    # Given a table where only the first four leavers are kept as leavers
    seen = {"leavers": 0}

    def few_leavers(row: dict[str, str]) -> None:
        if row["Attrition"] == "Yes":
            seen["leavers"] += 1
            if seen["leavers"] > 4:
                row["Attrition"] = "No"

    path = rewrite(ibm_table(), tmp_path / "few.csv", few_leavers)

    result = run_cli(str(path), "--dataset", "ibm-attrition")

    assert result.exit_code == 1
    assert result.output == (
        "Error: few.csv: 5-fold cross-validation needs at least 5 leavers and 5 stayers; "
        "the file has 4 and 1466.\n"
    )
