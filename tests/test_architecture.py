"""Project-wide rules: layer directions, lint, and the committed GraphQL schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from renshi.settings import PROJECT_ROOT, get_settings
from schema.api import build_schema

BIN = Path(sys.executable).parent


def test_domain_never_imports_the_api_or_workers() -> None:
    result = subprocess.run(
        [str(BIN / "lint-imports")], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_ruff_finds_nothing() -> None:
    result = subprocess.run(
        [str(BIN / "ruff"), "check", "--output-format", "concise", "."],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout


def test_committed_schema_matches_the_live_schema() -> None:
    committed = (PROJECT_ROOT / "schema" / "schema.graphql").read_text(encoding="utf-8")

    live = build_schema(get_settings()).as_str() + "\n"

    assert committed == live, "The schema changed: run `renshi schema export` and commit it."
