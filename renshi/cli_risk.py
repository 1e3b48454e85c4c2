"""`renshi risk`: risk analytics from the command line (see README, "Analytics")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from domain.errors import DomainError
from i18n import N_, translate
from renshi.cli import main

DATASETS = ("ibm-attrition", "job-retention")


@main.group("risk")
def risk_group() -> None:
    """Risk scores and attrition models."""


@risk_group.command("evaluate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--dataset",
    type=click.Choice(DATASETS),
    required=True,
    help="Which table FILE holds (its columns and outcome).",
)
@click.option(
    "--horizon",
    "horizon_months",
    type=click.IntRange(min=1, max=12),
    help="job-retention: leaving within this many months (required there).",
)
@click.option("--folds", default=5, show_default=True, type=click.IntRange(min=2))
@click.option("--repeats", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=42, show_default=True, help="Seed of the fold assignment.")
@click.option(
    "--calibration",
    type=click.Choice(["isotonic", "sigmoid", "none"]),
    default="isotonic",
    show_default=True,
    help="Calibrate the probabilities inside each fold, or not.",
)
@click.option(
    "--threshold",
    default=0.5,
    show_default=True,
    type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
    help="Probability at or above which an employee is flagged (fairness report).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def risk_evaluate(
    file: Path,
    dataset: str,
    horizon_months: int | None,
    folds: int,
    repeats: int,
    seed: int,
    calibration: Any,
    threshold: float,
    as_json: bool,
) -> None:
    """Cross-validate the attrition pipeline on a public table, without leakage."""
    from domain.analytics.evaluation import (
        evaluate_attrition,
        read_ibm_attrition,
        read_job_retention,
    )

    if dataset == "job-retention" and horizon_months is None:
        raise click.UsageError("--horizon is required with --dataset job-retention.")
    if dataset == "ibm-attrition" and horizon_months is not None:
        raise click.UsageError("IBM's table says who left, not when: it takes no --horizon.")
    try:
        if horizon_months is None:
            table = read_ibm_attrition(file)
        else:
            table = read_job_retention(file, horizon_months)
        evaluation = evaluate_attrition(
            table,
            folds=folds,
            repeats=repeats,
            seed=seed,
            calibration=calibration,
            threshold=threshold,
        )
    except DomainError as exc:
        message = translate(exc.message, None, **exc.params)
        raise click.ClickException(f"{file.name}: {message}") from exc

    if as_json:
        click.echo(json.dumps(evaluation.as_dict(), indent=2))
    else:
        _print_evaluation(evaluation)


def _print_evaluation(evaluation: Any) -> None:
    report = evaluation.as_dict()

    def say(template: str, **params: object) -> None:
        click.echo(translate(template, None, **params))

    cv = report["cross_validation"]
    say(
        N_("{source}: {rows} rows, {leavers} leavers ({share:.1%}). Data: {attribution}."),
        source=report["source"],
        rows=report["rows"],
        leavers=report["leavers"],
        share=report["leavers"] / report["rows"],
        attribution=report["attribution"],
    )
    if report["horizon_months"] is not None:
        say(
            N_(
                "Outcome: left within {horizon} months; {left_out} rows left out (still "
                "employed when last seen, before {horizon} months)."
            ),
            horizon=report["horizon_months"],
            left_out=report["left_out"],
        )
    say(
        N_("Model: {model}; calibration: {calibration}."),
        model=report["model"],
        calibration=report["calibration_method"],
    )
    say(
        N_("Not model inputs: {protected} (reported on below); {constant}."),
        protected=", ".join(report["not_features"]["protected"]),
        constant=", ".join(report["not_features"]["constant_or_id"]),
    )
    say(
        N_("Repeated stratified {folds}-fold cross-validation, {repeats} repeats, seed {seed}."),
        folds=cv["folds"],
        repeats=cv["repeats"],
        seed=cv["seed"],
    )
    for label, key in (("ROC AUC", "roc_auc"), ("PR AUC", "pr_auc"), ("Brier", "brier")):
        click.echo(f"{label:8} {report[key]['mean']:.4f} ± {report[key]['std']:.4f}")

    calibration = report["calibration"]
    say(
        N_(
            "Calibration: {predictions} out-of-fold predictions ({per_row} per row) in "
            "deciles of predicted probability."
        ),
        predictions=calibration["predictions"],
        per_row=calibration["predictions_per_row"],
    )
    click.echo(f"{'decile':>6} {'count':>6} {'predicted':>10} {'range':>15} {'observed':>9}")
    for row in calibration["deciles"]:
        span = f"{row['lowest_predicted']:.3f}-{row['highest_predicted']:.3f}"
        click.echo(
            f"{row['decile']:>6} {row['count']:>6} {row['mean_predicted']:>10.4f} "
            f"{span:>15} {row['observed_rate']:>9.4f}"
        )
    say(
        N_("Expected calibration error {error:.4f}; largest decile gap {gap:.4f}."),
        error=calibration["expected_calibration_error"],
        gap=calibration["largest_gap"],
    )

    fairness = report["fairness"]
    say(
        N_("Fairness at threshold {threshold}: flagged when the probability is at least that."),
        threshold=fairness["threshold"],
    )
    click.echo(f"{'attribute':<10} {'group':<8} {'count':>6} {'selection':>10} {'TPR':>7}")
    for attribute in fairness["attributes"]:
        for group in attribute["groups"]:
            tpr = group["true_positive_rate"]
            click.echo(
                f"{attribute['attribute']:<10} {group['group']:<8} {group['count']:>6} "
                f"{group['selection_rate']:>10.4f} {'-' if tpr is None else f'{tpr:.4f}':>7}"
            )
    for attribute in fairness["attributes"]:
        ratio = attribute["selection_rate_ratio"]
        say(
            N_("Selection-rate ratio, lowest to highest, by {attribute}: {ratio}."),
            attribute=attribute["attribute"],
            ratio="-" if ratio is None else f"{ratio:.3f}",
        )
    for warning in evaluation.fairness.warnings:
        say(N_("Warning: {text}"), text=translate(warning.message, None, **warning.params))
    say(N_("Wall time: {seconds:.1f} s."), seconds=report["seconds"])
