"""Shared fixtures: where the study's released data lives (../shared/data next to the checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MDRL_SHARED_DATA", REPO.parent / "shared" / "data"))
PAPER = SHARED_DATA / "paper"


@pytest.fixture(scope="session")
def paper_data() -> Path:
    """The study's veRL parquet files; tests that need them skip where the checkout has no shared/."""
    if not PAPER.is_dir():
        pytest.skip(f"study data not found at {PAPER}")
    return PAPER


@pytest.fixture(scope="session")
def mbpp_path() -> Path:
    path = SHARED_DATA / "mbpp" / "mbpp.jsonl"
    if not path.is_file():
        pytest.skip(f"MBPP not found at {path}")
    return path
