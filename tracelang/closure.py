"""The tracelang modules a module imports, transitively, and one digest of their source.

A cache of something a module computes (the decoder's masks) is valid only while none of the code
it runs has changed. Listing that code by hand goes stale the day someone adds an import, so the
list is computed: every ``import`` and ``from ... import`` in the source (those inside functions
too, since a lazy import runs just the same), and the ``__init__`` of every package on the way,
which Python runs first. Read as text with ``ast``; nothing is imported or run.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE = "tracelang"


def _root() -> Path:
    return Path(__file__).resolve().parent


def module_file(name: str, root: Path | None = None) -> Path | None:
    """The source file of ``tracelang.a.b`` under ``root`` (the package folder), or None."""
    root = root or _root()
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts[1:])
    for file in (base.with_suffix(".py") if len(parts) > 1 else None, base / "__init__.py"):
        if file is not None and file.is_file():
            return file
    return None


def _imports(name: str, file: Path, root: Path) -> set[str]:
    """The tracelang modules that ``file`` (module ``name``) names in an import."""
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(file.read_bytes(), filename=str(file))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            found.add(base)
            # `from pkg import mod` imports a module, `from mod import name` only the module
            found.update(f"{base}.{alias.name}" for alias in node.names
                         if module_file(f"{base}.{alias.name}", root) is not None)
    return {m for m in found if module_file(m, root) is not None}


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def import_closure(name: str, root: Path | None = None) -> list[str]:
    """``name`` and every tracelang module it imports, transitively, with their packages; sorted."""
    root = root or _root()
    seen: set[str] = set()
    todo = [name]
    while todo:
        for mod in _with_parents(todo.pop()):
            if mod in seen:
                continue
            file = module_file(mod, root)
            if file is None:
                raise ValueError(f"no source for module {mod!r} under {root}")
            seen.add(mod)
            todo.extend(_imports(mod, file, root) - seen)
    return sorted(seen)


def source_digest(name: str, root: Path | None = None) -> str:
    """A digest of the source of ``import_closure(name)``: it changes when any of that code does."""
    root = root or _root()
    digest = hashlib.sha256()
    for mod in import_closure(name, root):
        file = module_file(mod, root)
        assert file is not None  # import_closure found it
        digest.update(mod.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
