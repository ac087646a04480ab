"""`tracelang corpus`: generate, lint and stats here; contamination (data) and filter (training) join
them in `register`, the one place the group is assembled. Training sits above corpus, so cli.py
hands its filter command in rather than this module importing training."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import typer

from ..data.commands import contamination_command
from ..paths import TEMPLATES
from .library import Library


def register(app: typer.Typer, filter_command: Callable[..., None]) -> None:
    """Add the `corpus` group to ``app``; ``filter_command`` is training's `corpus filter`."""
    corpus_app = typer.Typer(help="Corpora: generate, lint, stats, contamination, filter.", no_args_is_help=True)
    corpus_app.command("contamination")(contamination_command)
    corpus_app.command("generate")(generate_cmd)
    corpus_app.command("lint")(lint_cmd)
    corpus_app.command("stats")(stats_cmd)
    corpus_app.command("filter")(filter_command)
    app.add_typer(corpus_app, name="corpus")


def _progress(total: int | None, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="rec", disable=quiet, file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5)


def _test_path(explicit: Path | None, train: Path | None) -> Path | None:
    from ..data.contamination import default_reference

    if explicit is not None:
        return explicit
    if train is not None and (train.parent / "test.jsonl").is_file():
        return train.parent / "test.jsonl"
    return default_reference()


def generate_cmd(
    n: int = typer.Option(..., "--n", min=1, help="How many records to write."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed: the same seed and inputs give the same file."),
    out: Path = typer.Option(..., "--out", help="Output JSONL (written atomically)."),
    gsm8k_train: Path | None = typer.Option(None, "--gsm8k-train",
                                            help="GSM-8K train (raw JSONL, or imported records) to lift numbers from."),
    templates: Path = typer.Option(TEMPLATES, "--templates", help="Template directory."),
    lifted_share: float = typer.Option(0.5, "--lifted-share", min=0.0, max=1.0,
                                       help="Share of records lifted from GSM-8K train (with --gsm8k-train)."),
    gsm8k_test: Path | None = typer.Option(None, "--gsm8k-test",
                                           help="GSM-8K test, for the contamination guard only "
                                                "(default: beside --gsm8k-train, else the shared copy)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Generate a verified corpus from templates (and, with --gsm8k-train, lifted train problems).

    Every record passes the checker with no diagnostics and the runtime's answer; duplicates are
    dropped; records overlapping GSM-8K test are refused. Exit 1 if the sources cannot supply N.
    """
    from ..data.contamination import load_guard
    from ..fileio import refuse_overwriting
    from .compose import TemplateSource
    from .generate import GenerationError, Tally, generate
    from .lift import LiftSource, train_records

    test_path = _test_path(gsm8k_test, gsm8k_train)
    refuse_overwriting({"gsm8k_train": gsm8k_train, "gsm8k_test": test_path, "templates": templates}, {"out": out})
    library = Library.load(templates)
    lifted = None
    if gsm8k_train is not None:
        bar = _progress(None, "importing GSM-8K train", quiet)
        try:
            records = train_records(str(gsm8k_train), progress=bar.update)
        finally:
            bar.close()
        lifted = LiftSource.from_records(records)
        if not quiet:
            typer.echo(f"lifting from {len(lifted.plans)} of {len(records)} imported train problems", err=True)
    guard = None
    if test_path is not None:
        guard = load_guard(str(test_path))
    elif not quiet:
        typer.echo("warning: no GSM-8K test file found; the contamination guard is off (--gsm8k-test)", err=True)

    from ..record import write_records

    tally = Tally()
    bar = _progress(n, "generating", quiet)
    start = time.perf_counter()
    try:
        stream = generate(n, seed, TemplateSource(library), lifted, lifted_share, guard, tally,
                          on_record=bar.update)
        write_records(out, stream)
    except GenerationError as err:
        bar.close()
        typer.echo(f"error: {err}; nothing written", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        bar.close()
        typer.echo("interrupted; nothing written", err=True)
        raise typer.Exit(130) from None
    bar.close()
    elapsed = time.perf_counter() - start
    summary = tally.to_json() | {"seconds": round(elapsed, 2), "records_per_second": round(tally.written / elapsed, 1),
                                 "guard": str(test_path) if guard is not None else None, "out": str(out)}
    typer.echo(json.dumps(summary) if quiet else
               f"wrote {tally.written} records to {out} in {elapsed:.1f}s ({summary['records_per_second']}/s); "
               f"{tally.duplicates} duplicates dropped, {tally.refused} refused as GSM-8K test overlap, "
               f"{tally.failed} draws failed; sources: " + ", ".join(f"{k} {v}" for k, v in tally.sources.items()))


def lint_cmd(
    templates: Path = typer.Option(TEMPLATES, "--templates", help="Template directory."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed for the samples lint draws."),
    warnings: bool = typer.Option(True, "--warnings/--no-warnings", help="Show warnings too."),
) -> None:
    """Check every template: the trace checks clean, the constraints can be met, the phrasings state
    every slot. Exit 1 when a template has an error."""
    from .lint import lint_library

    errors: list[str] = []
    library = Library.load(templates, errors)
    for message in errors:
        cut = message.find("`: ", message.find("template `")) + 3 if "template `" in message else 0
        typer.echo(f"{message[:cut]}error: {message[cut:]}" if cut else f"error: {message}")
    findings = lint_library(library)
    for f in findings:
        if f.severity == "error" or warnings:
            typer.echo(str(f))
    n_err = len(errors) + sum(f.severity == "error" for f in findings)
    n_warn = sum(f.severity == "warning" for f in findings)
    typer.echo(f"{len(library.templates) + len(errors)} templates, {len(library.distractors)} distractors, "
               f"{len(library.pools)} pools: {n_err} errors, {n_warn} warnings")
    raise typer.Exit(1 if n_err else 0)


def stats_cmd(
    file: Path = typer.Argument(..., help="A corpus (.jsonl records)."),
    against: Path | None = typer.Option(None, "--against", help="GSM-8K train (raw JSONL) to compare with."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
) -> None:
    """Words per question, number words, operations per trace, distinct shapes, names and experts,
    side by side with GSM-8K train."""
    from ..fileio import read_jsonl
    from .stats import corpus_stats, gsm8k_stats, side_by_side

    records = [obj for _, obj in read_jsonl(str(file))]
    ours = corpus_stats(records)
    theirs = gsm8k_stats(str(against)) if against is not None else None
    if as_json:
        payload = {"corpus": ours.table(), "sources": dict(ours.sources)}
        if theirs is not None:
            payload["gsm8k_train"] = theirs.table()
        typer.echo(json.dumps(payload, indent=2))
    else:
        typer.echo(side_by_side(ours, theirs, label=file.name))
