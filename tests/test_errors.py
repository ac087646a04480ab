"""One exception root, caught once at the command line; commands registered explicitly."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

import tracelang
from tracelang.cli import app
from tracelang.errors import TracelangError, UsageError

PACKAGE = Path(tracelang.__file__).parent


def _modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(tracelang.__path__, "tracelang.")
            if not m.name.endswith("__main__")]  # importing __main__ runs the command line


def test_every_exception_class_derives_from_the_root() -> None:
    found, outside = [], []
    for name in _modules():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:  # an optional third-party dependency, not ours
            if err.name and err.name.startswith("tracelang"):
                raise
            continue
        for attr, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == name:
                found.append(obj)
                if not issubclass(obj, TracelangError):
                    outside.append(f"{name}.{attr}")
    assert outside == []
    assert len(found) > 20  # the walk reached the package's modules


def test_builtin_bases_are_kept_for_callers_that_catch_them() -> None:
    from tracelang.fileio import InputError, LineError
    from tracelang.training.config import ConfigError

    assert issubclass(ConfigError, ValueError) and issubclass(ConfigError, UsageError)
    assert issubclass(LineError, ValueError) and issubclass(InputError, UsageError)
    err = LineError("bad", column=3)
    assert (err.message, err.column) == ("bad", 3)


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize(("args", "line"), [
    (["decode", "export", "--format", "xml"], "error: --format takes lark, ebnf, regex or vllm"),
    (["check", "/nonexistent/x.yaml"], "error: /nonexistent/x.yaml: No such file or directory"),
    (["train", "summary", "/nonexistent"], "error: /nonexistent: no metrics.jsonl"),
])
def test_a_usage_error_is_one_line_on_stderr_and_exit_2(args: list[str], line: str) -> None:
    result = _invoke(*args)
    assert result.exit_code == 2
    assert result.stderr == line + "\n"
    assert result.stdout == ""


def test_any_tracelang_error_from_a_command_is_caught_at_the_root(monkeypatch) -> None:
    """Not only usage errors: whatever a command lets through becomes the same one line."""
    from tracelang.decoding import export
    from tracelang.grammar import GrammarError

    def missing(surface: str = "yaml") -> str:  # noqa: ARG001  (to_lark takes the surface)
        raise GrammarError("trace.lark not found")

    monkeypatch.setattr(export, "to_lark", missing)
    result = _invoke("decode", "export", "--format", "lark")
    assert (result.exit_code, result.stderr, result.stdout) == (2, "error: trace.lark not found\n", "")
    assert not isinstance(result.exception, GrammarError)


def test_commands_register_explicitly_and_the_corpus_group_is_one() -> None:
    for path in sorted(PACKAGE.glob("*/commands.py")):
        module = importlib.import_module(f"tracelang.{path.parent.name}.commands")
        assert callable(module.register), path
        text = path.read_text(encoding="utf-8")
        assert "import app" not in text and ".cli import" not in text, path
    root = get_command(app)
    ctx = root.make_context("tracelang", ["--help"], resilient_parsing=True)
    assert root.list_commands(ctx) == ["check", "run", "fmt", "schema", "solve", "eval", "gsm8k", "corpus", "decode",
                                       "bench", "train"]
    corpus = root.get_command(ctx, "corpus")
    assert corpus.list_commands(ctx) == ["contamination", "generate", "lint", "stats", "filter"]


def test_every_code_comes_from_the_table() -> None:
    """Codes are declared once, in diagnostics.py, as constants named after them; the rest of the
    package writes none as a bare string, and a Diagnostic refuses a code not in the table or retired."""
    import re
    from pathlib import Path

    import pytest

    import tracelang
    from tracelang import diagnostics
    from tracelang.diagnostics import CODES, Diagnostic

    root = Path(tracelang.__file__).resolve().parent
    bare = sorted((m.group(1), str(f.relative_to(root))) for f in root.rglob("*.py") if f.name != "diagnostics.py"
                  for m in re.finditer(r"[\"']([EW]\d{3})[\"']", f.read_text(encoding="utf-8")))
    assert not bare, bare
    for code in CODES.values():  # each live code has its constant, named after it; a retired one has none
        constant = code.name.upper().replace("-", "_")
        assert getattr(diagnostics, constant, None) == (None if code.retired else code.code), code
    assert diagnostics.UNDEFINED_VARIABLE == "E201" and diagnostics.UNGROUNDED_VALUE == "W701"
    with pytest.raises(ValueError, match="not in CODES"):
        Diagnostic("E999", "a typo")
    with pytest.raises(ValueError, match="retired"):
        Diagnostic("E204", "a retired code")
    with pytest.raises(ValueError, match="declared twice"):
        diagnostics._declare("E201", "undefined-variable", "a second declaration")
