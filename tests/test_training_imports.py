"""The training modules import one another one way: no cycle, counting every import (lazy ones in
functions and those for type checking too)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tracelang" / "training"


def _imports(path: Path) -> set[str]:
    """Sibling modules this module imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {a.name for a in node.names}
    return {name.split(".")[0] for name in found}


def test_no_import_cycle_in_training() -> None:
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py")}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as err:
        raise AssertionError(f"import cycle: {err.args[1]}") from None
    assert order.index("batching") < order.index("logprobs") < order.index("partial")
