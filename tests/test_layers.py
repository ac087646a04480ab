"""The packages import one another one way, down the layers of spec/architecture.md: no lower layer
imports a higher one, counting every import (lazy ones in functions too)."""

from __future__ import annotations

import ast
import shutil
from graphlib import TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "tracelang"
TOP = {"cli", "__main__"}  # the command line sits above every package

# each package and what it may import besides itself (spec/architecture.md); "core" is tracelang/*.py
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "data": {"core"},
    "corpus": {"core", "data"},
    "models": {"core"},
    "decoding": {"core", "models"},
    "evaluation": {"core", "models", "decoding", "data"},
    "training": {"core", "models", "decoding", "data", "corpus", "evaluation"},
    "integrations": {"core", "models", "decoding", "data", "evaluation", "training"},
}


CORE_PACKAGES = {"experts"}  # the runtime's experts are part of the core


def _layer(parts: tuple[str, ...], root: Path = ROOT) -> str:
    """The layer of module ``tracelang.<parts>``."""
    if (root / parts[0]).is_dir():
        return "core" if parts[0] in CORE_PACKAGES else parts[0]
    return "top" if parts[0] in TOP else "core"


def _targets(file: Path, root: Path = ROOT) -> set[tuple[str, ...]]:
    """The tracelang modules (as parts under tracelang) a file imports."""
    package = file.relative_to(root).parent.parts
    found: set[tuple[str, ...]] = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1]
            found |= {(*base, *node.module.split("."))} if node.module else {(*base, a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tracelang."):
            found.add(tuple(node.module.split(".")[1:]))
        elif isinstance(node, ast.Import):
            found |= {tuple(a.name.split(".")[1:]) for a in node.names if a.name.startswith("tracelang.")}
    return {t for t in found if t}


def test_the_layers_are_a_stack() -> None:
    order = list(TopologicalSorter(ALLOWED).static_order())  # raises CycleError on a cycle
    assert order[0] == "core" and order[-1] == "integrations"


def _arrows_up(root: Path) -> list[str]:
    wrong = []
    for file in sorted(root.rglob("*.py")):
        mine = _layer(file.relative_to(root).with_suffix("").parts, root)
        if mine == "top":
            continue
        for target in _targets(file, root):
            theirs = _layer(target, root)
            if theirs != mine and theirs not in ALLOWED[mine]:
                wrong.append(f"{file.relative_to(root)} ({mine}) imports tracelang.{'.'.join(target)} ({theirs})")
    return wrong


def test_no_layer_imports_a_layer_above_it() -> None:
    wrong = _arrows_up(ROOT)
    assert not wrong, "\n".join(wrong)


def test_a_lazy_import_back_up_is_seen(tmp_path: Path) -> None:
    copy = tmp_path / "tracelang"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    file = copy / "evaluation" / "commands.py"
    file.write_text(file.read_text() + "\n\ndef _late():\n    from ..training.checkpoint import save  # noqa\n")
    assert _arrows_up(copy) == ["evaluation/commands.py (evaluation) imports tracelang.training.checkpoint (training)"]
