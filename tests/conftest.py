"""Shared test fixtures. Reference data is read from ../shared, never copied into the project."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = PROJECT_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared/ folder beside the project; tests that need it skip where it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(
            f"shared reference folder not found at {SHARED_DIR}: reference tests need ../shared "
            "(present in CI and on developer machines, absent on a user's machine)"
        )
    return SHARED_DIR


@pytest.fixture(scope="session")
def r_did_dir(shared_dir: Path) -> Path:
    path = shared_dir / "reference" / "r-did"
    if not path.is_dir():
        pytest.skip(f"R did reference outputs not found at {path}")
    return path


@pytest.fixture(scope="session")
def seeds_dir(shared_dir: Path) -> Path:
    path = shared_dir / "seeds"
    if not path.is_dir():
        pytest.skip(f"seed documents not found at {path}")
    return path
