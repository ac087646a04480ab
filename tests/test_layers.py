"""The packages import one another one way, down the layers of spec/architecture.md: no lower layer
imports a higher one, counting every import (lazy ones in functions too)."""

from __future__ import annotations

import ast
import shutil
from graphlib import CycleError, TopologicalSorter
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


def _module(parts: tuple[str, ...], root: Path) -> Path | None:
    """The file of ``tracelang.<parts>``, or of the module a name in it is imported from."""
    while parts:
        if (root / Path(*parts)).with_suffix(".py").is_file():
            return (root / Path(*parts)).with_suffix(".py")
        if (root / Path(*parts) / "__init__.py").is_file():
            return root / Path(*parts) / "__init__.py"
        parts = parts[:-1]
    return None


def _cycles(root: Path) -> list[str]:
    """Module-level import cycles, counting every import (lazy and type-only ones too); a package's
    ``__init__`` importing its own modules is not one (they import their package's face)."""
    graph: dict[Path, set[Path]] = {}
    for file in sorted(root.rglob("*.py")):
        targets = {_module(t, root) for t in _targets(file, root)} - {None, file}
        if file.name == "__init__.py":
            targets = {t for t in targets if t.parent != file.parent}  # type: ignore[union-attr]
        graph[file] = targets  # type: ignore[assignment]
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as err:
        return [str(p.relative_to(root)) for p in err.args[1]]
    return []


def test_no_module_imports_itself_round_a_circle(tmp_path: Path) -> None:
    assert _cycles(ROOT) == []
    copy = tmp_path / "tracelang"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    file = copy / "ir.py"  # the formatter imports the IR: a lazy import back is a circle
    file.write_text(file.read_text() + "\n\ndef _late():\n    from .formatter import format_step  # noqa\n")
    assert {"ir.py", "formatter.py"} <= set(_cycles(copy))


def test_the_core_floors_of_the_architecture_page_are_the_imports() -> None:
    """spec/architecture.md draws the core's modules in floors: each one floor above the highest it
    imports (experts/ counted as one); the drawing is recomputed here from the imports."""
    import re

    def node(file: Path) -> str:
        return "experts/" if file.parent.name == "experts" else file.name

    core = [f for f in ROOT.rglob("*.py") if _layer(f.relative_to(ROOT).with_suffix("").parts) == "core"
            and f.name != "__init__.py" or f == ROOT / "experts" / "__init__.py"]
    deps: dict[str, set[str]] = {}
    for file in core:
        found = {node(m) for t in _targets(file) if (m := _module(t, ROOT)) and _layer(t) == "core"
                 and m != ROOT / "__init__.py"}
        deps.setdefault(node(file), set()).update(found - {node(file)})
    floor: dict[str, int] = {}
    for name in TopologicalSorter(deps).static_order():
        floor[name] = 1 + max((floor[d] for d in deps.get(name, ())), default=0)
    page = (ROOT.parent / "spec" / "architecture.md").read_text(encoding="utf-8")
    drawn = {name: int(n) for n, names in re.findall(r"^ (\d)  (\S.*)$", page, re.M) for name in names.split()}
    assert drawn == floor
