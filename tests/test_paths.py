"""tracelang.paths: shipped data is found inside an installed package (the wheel's layout) as well as
in the source checkout, and the cache directory follows $TRACELANG_CACHE."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tracelang import paths

ROOT = Path(__file__).resolve().parents[1]


def test_the_checkout_holds_the_shipped_data() -> None:
    assert paths.SHOTS.is_file() and paths.TEMPLATES.is_dir() and paths.EXAMPLES.is_dir()
    assert (paths.shipped("weights", "shipped") / "training.json").is_file()


def test_an_installed_package_finds_its_data_inside_itself(tmp_path: Path) -> None:
    """The wheel's layout (pyproject's force-include): the data sits in the package folder, and there
    is no checkout around it."""
    site = tmp_path / "site-packages"
    shutil.copytree(ROOT / "tracelang", site / "tracelang", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "grammar", site / "tracelang" / "grammar")
    shutil.copytree(ROOT / "corpora", site / "tracelang" / "corpora")
    code = ("from tracelang import paths; from tracelang.grammar import grammar_path; "
            "print(paths.SHOTS, paths.TEMPLATES, paths.EXAMPLES, grammar_path(), sep='\\n')")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout.split()
    package = site / "tracelang"
    assert [Path(p) for p in out] == [package / "corpora" / "shots.jsonl", package / "corpora" / "templates",
                                      package / "corpora" / "examples", package / "grammar" / "trace.lark"]


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRACELANG_CACHE", str(tmp_path / "cache"))
    assert paths.cache_dir() == tmp_path / "cache" and (tmp_path / "cache").is_dir()
