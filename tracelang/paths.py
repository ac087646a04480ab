"""Where tracelang's files are: the cache directory, and the data that ships with the package (the
grammar, the default shots, the template library, the example traces, the shipped adapter).

Shipped data sits inside the installed package (the wheel copies it there: ``force-include`` in
pyproject.toml) or, in a source checkout, at the repository root; ``shipped`` looks in that order.
This module imports nothing else of tracelang, so every module may use it.
"""

from __future__ import annotations

import errno
import os
from importlib.resources import files
from pathlib import Path

# The source checkout's root (the folder that holds tracelang/); in an installed wheel, site-packages.
CHECKOUT = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """``$TRACELANG_CACHE``, else ``~/.cache/tracelang``; made when missing."""
    root = os.environ.get("TRACELANG_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "tracelang"
    if path.exists() and not path.is_dir():  # an OSError naming it: the CLI prints one line, exit 2
        raise NotADirectoryError(errno.ENOTDIR, "the cache ($TRACELANG_CACHE) is not a directory", str(path))
    path.mkdir(parents=True, exist_ok=True)
    return path


def candidates(*parts: str) -> tuple[Path, Path]:
    """Where a shipped file may be: inside the installed package, then in the source checkout."""
    # tracelang is installed as plain files (never zipped), so the package resource is a real path
    packaged = Path(str(files(__package__).joinpath(*parts)))
    return packaged, CHECKOUT.joinpath(*parts)


def shipped(*parts: str) -> Path:
    """The first of ``candidates`` that exists; else the checkout's, for its user to report missing."""
    for path in candidates(*parts):
        if path.exists():
            return path
    return CHECKOUT.joinpath(*parts)


SHOTS = shipped("corpora", "shots.jsonl")  # the default few-shot examples (a corpus of records)
TEMPLATES = shipped("corpora", "templates")  # the template library `corpus generate` draws from
EXAMPLES = shipped("corpora", "examples")  # example traces (.yaml) the decoding benchmarks replay
