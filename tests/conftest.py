from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GSM8K = ROOT.parent / "shared" / "data" / "gsm8k"
sys.path.insert(0, str(ROOT))  # benchmarks/ holds the study baseline some tests compare with


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def runner():
    """A CLI runner (run it on `tracelang.cli.app`, which has every command group registered)."""
    from typer.testing import CliRunner

    return CliRunner()
