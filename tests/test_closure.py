"""The mask cache's code key is computed from what the decoder imports, so an edit to any of it
(not only to a hand-picked list of folders) is a new key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import tracelang
from tracelang.closure import import_closure, module_file, source_digest

ROOT = Path(tracelang.__file__).resolve().parent
DECODER = "tracelang.decoding.constraint"


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    out = tmp_path / "tracelang"
    shutil.copytree(ROOT, out, ignore=shutil.ignore_patterns("__pycache__"))
    return out


def test_the_closure_reaches_what_the_guide_imports_through_other_modules() -> None:
    closure = import_closure(DECODER)
    # the modules the old hand-written list missed, and the experts the registry imports lazily
    for name in ("degenerate", "build", "ir", "numbers", "scope", "grounding", "decoding.guide",
                 "experts.arithmetic", "experts.percentage"):
        assert f"tracelang.{name}" in closure
    # training and evaluation are above the decoder: not part of its key
    assert not any(m.startswith(("tracelang.training", "tracelang.evaluation")) for m in closure)
    assert all(module_file(m) is not None for m in closure)


def test_the_digest_depends_on_the_source_not_the_place(copy: Path) -> None:
    assert source_digest(DECODER, copy) == source_digest(DECODER)


@pytest.mark.parametrize("edited", ["degenerate.py", "build.py", "ir.py", "numbers.py", "decoding/guide.py",
                                    "experts/rate_equation.py"])
def test_an_edit_to_any_imported_module_changes_the_digest(copy: Path, edited: str) -> None:
    before = source_digest(DECODER, copy)
    file = copy / edited
    file.write_text(file.read_text() + "\n# edited\n")
    assert source_digest(DECODER, copy) != before


def test_an_edit_outside_the_closure_keeps_the_digest(copy: Path) -> None:
    before = source_digest(DECODER, copy)
    file = copy / "training" / "sft.py"
    file.write_text(file.read_text() + "\n# edited\n")
    assert source_digest(DECODER, copy) == before


def test_a_new_import_joins_the_closure(copy: Path) -> None:
    assert "tracelang.corpus.numwords" not in import_closure(DECODER, copy)
    guide = copy / "decoding" / "guide.py"
    guide.write_text(guide.read_text() + "\n\ndef _later() -> None:\n    from ..corpus import numwords  # noqa\n")
    assert "tracelang.corpus.numwords" in import_closure(DECODER, copy)
