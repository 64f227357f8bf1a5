"""The committed reference results (docs/results/) are what the default configuration produces.

Runs ``finsam_eval.load_config(None)`` (the ISF 2019 design on the bundled synthetic data) into a
temporary folder and compares, byte for byte, ``estimates.csv`` and every ``tables/*.md`` and
``tables/*.tex`` with docs/results/. A second run in the same process must give the same bytes.

After an intended change to estimators, tables or data, regenerate and commit the reference:

    finsam-eval run --out docs/results
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

import finsam_eval
from finsam_eval.estimators import METHODS
from finsam_eval.pipeline import AnalysisConfig

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "results"
REGENERATE = "finsam-eval run --out docs/results"

pytestmark = pytest.mark.slow


def compared_files(folder: Path) -> list[str]:
    """Relative paths of the files under comparison: estimates.csv, tables/*.md, tables/*.tex."""
    names = ["estimates.csv"] if (folder / "estimates.csv").is_file() else []
    tables = folder / "tables"
    if tables.is_dir():
        names += sorted(
            p.relative_to(folder).as_posix()
            for p in tables.iterdir()
            if p.suffix in (".md", ".tex")
        )
    return names


def first_difference(expected: bytes, actual: bytes, name: str) -> str:
    diff = difflib.unified_diff(
        expected.decode("utf-8", "replace").splitlines(),
        actual.decode("utf-8", "replace").splitlines(),
        f"committed/{name}",
        f"regenerated/{name}",
        n=1,
        lineterm="",
    )
    return "\n".join(list(diff)[:20])


def assert_same_files(expected_dir: Path, actual_dir: Path, hint: str) -> None:
    expected, actual = compared_files(expected_dir), compared_files(actual_dir)
    assert expected, f"no estimates.csv or tables in {expected_dir}"
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    assert not missing and not extra, f"files differ: missing {missing}, unexpected {extra}; {hint}"
    for name in expected:
        old = (expected_dir / name).read_bytes()
        new = (actual_dir / name).read_bytes()
        if old != new:
            pytest.fail(f"{name} differs; {hint}\n{first_difference(old, new, name)}")


@pytest.fixture(scope="module")
def default_config() -> AnalysisConfig:
    missing = [m for m in AnalysisConfig().methods if m not in METHODS]
    if missing:
        pytest.skip(f"default methods not registered yet in estimators.METHODS: {missing}")
    return finsam_eval.load_config(None)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory, default_config: AnalysisConfig) -> Path:
    out = tmp_path_factory.mktemp("default") / "run1"
    finsam_eval.run_analysis(default_config, out, progress=False)
    return out


def test_matches_committed_results(first_run: Path) -> None:
    if not (REFERENCE / "estimates.csv").is_file():
        pytest.fail(
            f"{REFERENCE.relative_to(ROOT)}/ with the reference results is missing: run "
            f"`{REGENERATE}` and commit it"
        )
    assert_same_files(
        REFERENCE,
        first_run,
        f"if the change is intended, run `{REGENERATE}` and commit docs/results/",
    )


def test_two_runs_are_byte_identical(
    first_run: Path, default_config: AnalysisConfig, tmp_path: Path
) -> None:
    second = tmp_path / "run2"
    finsam_eval.run_analysis(default_config, second, progress=False)
    assert_same_files(first_run, second, "the pipeline is not deterministic")
