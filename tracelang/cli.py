"""The `tracelang` command line."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from . import diagnostics as diag
from .checker import Grounder
from .compact import SURFACES, surface_of
from .corpus import commands as corpus_commands
from .data import commands as data_commands
from .decoding import commands as decoding_commands
from .errors import TracelangError, UsageError
from .evaluation import commands as evaluation_commands
from .fileio import InputError, Item, atomic_write, is_corpus, iter_items, open_lines, read_text, splice_field
from .formatter import format_program
from .grounding import grounder_for
from .ir import Program
from .numbers import answer_value, render
from .pipeline import analyze, parse
from .training import commands as training_commands


class _Root(TyperGroup):
    """The command tree's root: the one place a `TracelangError` from any command ends the run, as one
    `error: ...` line on stderr and exit status 2, without a traceback."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TracelangError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None
        except OSError as err:  # a path that cannot be read or written: the user's to fix, not a bug
            typer.echo(f"error: {_os_error(err)}", err=True)
            raise typer.Exit(2) from None


def _os_error(err: OSError) -> str:
    """One line naming the path: ``PATH: reason``."""
    reason = err.strerror or str(err)
    if err.filename is not None and err.filename2 is not None:
        return f"{err.filename} -> {err.filename2}: {reason}"
    return f"{err.filename}: {reason}" if err.filename is not None else reason


app = typer.Typer(
    cls=_Root,
    help="tracelang: symbolic math traces that an exact runtime executes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        from . import __version__

        try:
            installed = version("tracelang")
        except PackageNotFoundError:  # run from a checkout that is not installed
            installed = __version__
        typer.echo(f"tracelang {installed}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit."),
) -> None:
    """tracelang: symbolic math traces that an exact runtime executes."""


def _items(files: list[str], unreadable_as_records: bool = False) -> list[Item]:
    """Every record of every source. An unreadable source stops the command (exit 2), or with
    ``unreadable_as_records`` becomes one record carrying an E002 diagnostic (JSON Lines output)."""
    items: list[Item] = []
    for source in files:
        try:
            items.extend(iter_items(source))
        except InputError as err:
            if not unreadable_as_records:
                raise
            error = diag.Diagnostic(diag.INVALID_RECORD, str(err), 1, 1)
            items.append(Item(source, 0, "", error=error, unreadable=True))
    return items


QUESTION_HELP = ("The problem's question, for the grounding check (W701) as evaluation does it; a .jsonl record's "
                 "own `question` wins over it.")


def _grounder(question: str | None) -> Grounder | None:
    """Grounding (W701) for records that carry their question, or with the one `--question` gives."""
    if not question:
        return None
    return grounder_for(question)


@app.command()
def check(
    files: list[str] = typer.Argument(..., help="Trace files (.yaml), corpora (.jsonl), or - for stdin."),
    output_format: str = typer.Option("text", "--format", help="text (human) or json (JSON Lines)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the summary."),
    question: str | None = typer.Option(None, help=QUESTION_HELP),
) -> None:
    """Check traces: syntax, experts and ops, names, the query; execute those without errors.

    Exit status: 0 when no record has an error, 1 when one does, 2 for usage or I/O errors.
    """
    if output_format not in ("text", "json"):
        raise UsageError("--format takes `text` or `json`")
    counts = {"records": 0, "failed": 0, "errors": 0, "warnings": 0, "graded": 0, "correct": 0}
    items = _items(files, unreadable_as_records=output_format == "json")
    for item in items:
        counts["records"] += 1
        record_diags: list[diag.Diagnostic] = []  # about the record's `answer`: at its line in the file
        if item.error is not None:
            diags, report_json = [item.error], {"ok": False, "answer": None, "expected": None, "correct": None,
                                                "diagnostics": [item.error.to_json()]}
            text, location = "", item.source
        else:
            expected = None
            if item.answer is not None:
                expected = answer_value(item.answer)
                if expected is None:
                    shown = json.dumps(item.answer)
                    shown = shown if len(shown) <= 40 else shown[:37] + "..."
                    record_diags.append(diag.Diagnostic(
                        diag.INVALID_ANSWER,
                        f"the record's answer {shown} is not a finite exact number; it is not graded",
                        item.file_line or 1, 1, hint="write the answer as a number or a string like \"72\", "
                        "\"-3.5\" or \"2/3\" (or leave `answer` null)"))
            report = analyze(item.text, expected=expected, grounder=_grounder(item.question or question))
            diags, report_json, text, location = report.diagnostics, report.to_json(), item.text, item.location
            if report.correct is False and report.answer is not None:
                record_diags.append(diag.Diagnostic(
                    diag.WRONG_ANSWER, f"the trace runs to {render(report.answer)}, the record's answer is "
                    f"{render(expected)}", item.file_line or 1, 1))  # type: ignore[arg-type]
            if record_diags:
                report_json["ok"] = False
                report_json["diagnostics"] = [d.to_json() for d in record_diags] + report_json["diagnostics"]
            if report.correct is not None:
                counts["graded"] += 1
                counts["correct"] += int(report.correct)
        counts["errors"] += sum(d.severity == "error" for d in record_diags + diags)
        counts["warnings"] += sum(d.severity == "warning" for d in diags)
        counts["failed"] += int(not report_json["ok"])
        if output_format == "json":
            typer.echo(json.dumps({"source": item.source, "index": item.index, **report_json}))
        elif not quiet:
            for d in record_diags:
                typer.echo(diag.render(d, "", item.source) + "\n")
            for d in diags:
                typer.echo(diag.render(d, text, location) + "\n")
    if output_format == "text":
        line = (f"{counts['records']} checked: {counts['records'] - counts['failed']} ok, "
                f"{counts['failed']} with errors ({counts['errors']} errors, {counts['warnings']} warnings)")
        if counts["graded"]:
            line += f"; {counts['correct']}/{counts['graded']} answers correct"
        typer.echo(line)
    raise typer.Exit(2 if any(i.unreadable for i in items) else 1 if counts["failed"] else 0)


@app.command()
def run(
    file: str = typer.Argument(..., help="A trace file, a one-record .jsonl, or - for stdin."),
    question: str | None = typer.Option(None, help=QUESTION_HELP),
) -> None:
    """Check and execute one trace; print each step's value, and the exact answer as the last line.

    Given the question (`--question`, or a record's `question`), the grounding check is the one
    `tracelang eval` graded with: a constant the question states is not flagged."""
    items = _items([file])
    if len(items) != 1:
        raise UsageError(f"{file}: `run` takes one trace; use `tracelang check` for corpora")
    item = items[0]
    report = analyze(item.text, grounder=_grounder(item.question or question))
    for d in report.diagnostics:
        typer.echo(diag.render(d, item.text, item.location) + "\n", err=d.severity == "error")
    if report.execution is None or not report.ok:
        raise typer.Exit(1)
    width = max((len(s.op) for _, s, _ in report.execution.steps), default=4)
    for block, step, value in report.execution.steps:
        where = f"{step.span.line:>4}" if step.span else "   ?"
        tag = f"[{block}] " if report.program and report.program.composed else ""
        name = getattr(step, "var", None) or getattr(step, "entity", None) or getattr(step, "to_entity", None)
        label = f"{name.name} = " if name is not None else ""
        typer.echo(f"{where}  {tag}{step.op:<{width}}  {label}{render(value) if value is not None else ''}")
    typer.echo(render(report.answer))


def _canonical(item: Item, to: str | None) -> tuple[str | None, list[diag.Diagnostic]]:
    report = parse(item.text)
    if report.program is None or not report.complete:
        return None, report.diagnostics
    return format_program(report.program, report.comments, to or surface_of(item.text)), []


def _read_whole(source: str) -> str:
    """A source read once, within the bounds of records' readers; a corpus file line by line and as
    its bytes are (no newline translation), since its lines are rewritten in place."""
    if source.endswith(".jsonl"):
        with open_lines(source) as lines:
            return "".join(lines)
    return read_text(source)


def _spliced(text: str, items: list[Item], outputs: list[str]) -> str:
    """``text`` with each record's `trace` string replaced by its formatted trace where that differs,
    every other byte of every line kept (`fmt` changes the trace and nothing else)."""
    lines = text.split("\n")
    for item, new in zip(items, outputs, strict=True):
        if item.file_line is not None and new != item.text:
            lines[item.file_line - 1] = splice_field(lines[item.file_line - 1], "trace", new)
    return "\n".join(lines)


@app.command()
def fmt(
    files: list[str] = typer.Argument(..., help="Trace files (.yaml) or corpora (.jsonl); - reads stdin."),
    check_only: bool = typer.Option(False, "--check", help="Change nothing; exit 1 if a file would change."),
    to: str = typer.Option(None, "--to", help="Write this surface: yaml (canonical) or compact; "
                           "default: each trace's own."),
) -> None:
    """Rewrite traces in canonical form: one step per line, a fixed key order per op.

    Reads either surface; `--to` converts. A trace with syntax or structural errors is left
    untouched and reported (exit 1).
    """
    if to is not None and to not in SURFACES:
        raise UsageError(f"--to takes {' or '.join(SURFACES)}, not {to!r}")
    status = 0
    for source in files:
        raw = _read_whole(source)
        items = list(iter_items(source, raw))
        outputs: list[str] = []
        broken = False
        for item in items:
            if item.error is not None:
                typer.echo(diag.render(item.error, "", item.source), err=True)
                broken = True
                continue
            new, diags = _canonical(item, to)
            for d in diags:
                typer.echo(diag.render(d, item.text, item.location) + "\n", err=True)
            broken |= new is None
            outputs.append(new if new is not None else item.text)
        if broken:
            status = 1
            continue
        corpus = is_corpus(source, items[0].text if items else None) and any(i.record for i in items)
        if corpus:
            old_text = raw
            new_text = _spliced(raw, items, outputs)
        else:
            new_text, old_text = (outputs[0] if outputs else ""), (items[0].text if items else "")
        if source == "-":
            sys.stdout.write(new_text)
            continue
        if new_text == old_text:
            continue
        if check_only:
            typer.echo(f"would reformat {source}")
            status = 1
        else:
            with atomic_write(source, through_links=True) as fh:
                fh.write(new_text)
            typer.echo(f"reformatted {source}")
    raise typer.Exit(status)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the trace IR."""
    typer.echo(json.dumps(Program.model_json_schema(), indent=2))


# The feature packages' commands and groups, in the order `--help` lists them (commands first, then groups).
data_commands.register(app)
corpus_commands.register(app, training_commands.filter_command)
decoding_commands.register(app)
evaluation_commands.register(app)
training_commands.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
