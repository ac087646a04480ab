"""CLI: ``tracelang gsm8k import|split|quantities``, and ``contamination``, which
``corpus.commands`` adds to the `corpus` group."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import typer

from ..errors import UsageError
from ..fileio import atomic_write, read_jsonl, refuse_overwriting, write_jsonl
from ..grounding import constants_for, extract
from ..numbers import render
from ..record import write_records
from . import gsm8k
from .contamination import NGRAM, Guard, default_reference
from .importer import import_problems
from .splits import DEV_SEED, DEV_SIZE, dev_ids, split_of

SPLIT_HELP = f"""The fixed dev split: {DEV_SIZE} GSM-8K train problems drawn with seed {DEV_SEED}.

With --input, partition records by id into --dev and --train (GSM-8K test records are refused:
test is evaluation-only). With --ids, print the dev ids."""


def register(app: typer.Typer) -> None:
    """Add the `gsm8k` group to ``app``."""
    gsm8k_app = typer.Typer(help="GSM-8K: import annotated solutions as traces, splits.", no_args_is_help=True)
    gsm8k_app.command("import")(import_command)
    gsm8k_app.command("split", help=SPLIT_HELP)(split_command)
    gsm8k_app.command("quantities")(quantities_command)
    app.add_typer(gsm8k_app, name="gsm8k")


def _reference(against: str | None, input_path: str, split: str) -> Path | None:
    """The reference set an import guards against: ``--against``, else (for any split but test)
    the ``test.jsonl`` beside the input, else GSM-8K test beside the repository."""
    if against is not None:
        return Path(against)
    if split == "test":
        return None
    if not input_path.startswith(gsm8k.HF_PREFIX):
        sibling = Path(input_path).with_name("test.jsonl")
        if sibling.is_file() and sibling.resolve() != Path(input_path).resolve():
            return sibling
    return default_reference()


def _guard(path: Path | None) -> Guard | None:
    return None if path is None else Guard.from_path(path)


def import_command(
    input_path: str = typer.Option(..., "--input", help="GSM-8K JSONL (question, answer), or hf:REPO[@CONFIG]:SPLIT "
                                   "to load from the Hugging Face hub (needs `datasets` and network)."),
    out: Path = typer.Option(..., "--out", help="Records JSONL to write (all or nothing)."),
    report_path: Path = typer.Option(None, "--report", help="Write the report JSON here."),
    split: str = typer.Option(None, "--split", help="Split name for ids (default: from the file name)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Import only the first N problems."),
    strict: bool = typer.Option(False, "--strict", help="Fail problems with ungrounded values instead of keeping "
                                "them with warning W701."),
    against: str = typer.Option(None, "--against", help="Reference set for the contamination guard (default: "
                                "test.jsonl beside the input, unless importing test)."),
    allow_contaminated: bool = typer.Option(False, "--allow-contaminated", help="Write records that overlap the "
                                            "reference set (they are marked in meta)."),
) -> None:
    """Convert GSM-8K's calculator annotations into checked traces; report coverage and failures.

    Exit status: 0 on success (whatever the coverage), 2 for usage or input errors.
    """
    split = split or gsm8k.split_of_path(input_path)
    reference = _reference(against, input_path, split)
    refuse_overwriting({"input": input_path, "against": reference}, {"out": out, "report": report_path})
    if report_path is not None and report_path.is_dir():
        raise UsageError(f"--report {report_path}: a directory; nothing written")
    guard = _guard(reference)
    problems = gsm8k.load(input_path, split)
    if limit is not None:
        problems = (p for p, _ in zip(problems, range(limit), strict=False))
    records, report = import_problems(problems, strict=strict, guard=guard, allow_contaminated=allow_contaminated)
    data = {"input": input_path, "split": split, "reference": str(reference) if reference else None,
            **report.to_json()}
    # the report's part file is made first: when it cannot be, --out is not written either
    with atomic_write(report_path) if report_path is not None else nullcontext() as report_fh:
        write_records(out, records)
        if report_fh is not None:
            report_fh.write(json.dumps(data, indent=2) + "\n")
    _summary(data, out)


def _summary(data: dict, out: Path) -> None:
    total = data["total"] or 1
    rows = [("total", data["total"], ""),
            ("converted", data["converted"], f"{100 * data['converted'] / total:6.2f}%"),
            ("  clean", data["clean"], f"{100 * data['clean'] / total:6.2f}%")]
    rows.append(("  with warnings", data["converted"] - data["clean"], ""))
    rows += [(f"    {code} (diagnostics)", n, "") for code, n in data["warnings"].items()]
    rows.append(("failed", data["total"] - data["converted"], f"{100 * (1 - data['converted'] / total):6.2f}%"))
    rows += [(f"  {cat}", n, "") for cat, n in data["failures"].items()]
    rows += [(f"expert {name}", n, "") for name, n in data["experts"].items()]
    width = max(len(r[0]) for r in rows)
    typer.echo(f"gsm8k import: {data['input']} -> {out}")
    for label, n, pct in rows:
        typer.echo(f"  {label:<{width}}  {n:>6}  {pct}")
    typer.echo(f"  {data['seconds']:.1f} s")


def split_command(
    input_path: Path = typer.Option(None, "--input", help="Records JSONL (ids like gsm8k-train-00012) to split."),
    dev: Path = typer.Option(None, "--dev", help="Write the dev records here."),
    train: Path = typer.Option(None, "--train", help="Write the other train records here."),
    ids: bool = typer.Option(False, "--ids", help="Print the dev split's ids, one a line."),
) -> None:
    if ids:
        for rid in sorted(dev_ids()):
            typer.echo(rid)
    if input_path is None:
        if not ids:
            raise UsageError("give --input (with --dev/--train) or --ids")
        return
    if dev is None and train is None:
        raise UsageError("give --dev and/or --train to write the split")
    refuse_overwriting({"input": input_path}, {"dev": dev, "train": train})
    parts: dict[str, list[dict]] = {"dev": [], "train": []}
    for line, record in read_jsonl(input_path):
        rid = record.get("id")
        which = split_of(rid) if isinstance(rid, str) else "other"
        if which == "test":
            raise UsageError(f"{input_path}:{line}: {rid} is GSM-8K test, which is evaluation-only")
        if which == "other":
            raise UsageError(f"{input_path}:{line}: record id {rid!r} is not a GSM-8K train id")
        parts[which].append(record)
    for name, path in (("dev", dev), ("train", train)):
        if path is not None:
            try:
                write_jsonl(path, parts[name])
            except OSError as err:
                raise UsageError(f"cannot write: {err}") from None
    typer.echo(f"dev {len(parts['dev'])}, train {len(parts['train'])}")


def quantities_command(question: str = typer.Argument(..., help="A question's text.")) -> None:
    """Show the quantities found in a question and the constants it licenses."""
    for q in extract(question):
        also = f"  (also {', '.join(render(v) for v in q.also)})" if q.also else ""
        typer.echo(f"{q.start:>4}-{q.end:<4} {q.kind:<10} {render(q.value):>10}  {q.text!r}{also}")
    consts = ", ".join(f"{c.name}={render(c.value)}" for c in constants_for(question))
    typer.echo(f"constants: {consts}")


def contamination_command(
    corpus: Path = typer.Argument(..., help="Records JSONL to check (each with a `question`)."),
    against: Path = typer.Option(None, "--against", help="Reference JSONL of questions (default: GSM-8K test "
                                 "beside the repository)."),
    n: int = typer.Option(NGRAM, "--n", min=4, help="N-gram length in tokens."),
    output_format: str = typer.Option("text", "--format", help="text or json (one JSON line per hit)."),
) -> None:
    """Report records that share a long n-gram (numbers masked) or a numbers-and-wording skeleton
    with a reference set. Exit 1 when any record is contaminated, 2 on usage errors."""
    if output_format not in ("text", "json"):
        raise UsageError("--format takes `text` or `json`")
    reference = against or default_reference()
    if reference is None:
        raise UsageError("no reference set: pass --against PATH")
    guard = Guard.from_path(reference, n)
    hits, checked, without = [], 0, 0
    for line, record in read_jsonl(corpus):
        question = record.get("question")
        if question is None:  # a synthetic record may have none: counted, and said
            without += 1
            continue
        if not isinstance(question, str):
            raise UsageError(f"{corpus}:{line}: `question` is {type(question).__name__}, not a string: "
                             "it cannot be checked")
        checked += 1
        match = guard.check(question)
        if match is not None:
            hits.append({"id": record.get("id"), "line": line, **match.to_json()})
    for hit in hits:
        if output_format == "json":
            typer.echo(json.dumps(hit))
        else:
            typer.echo(f"{corpus}:{hit['line']}: {hit['id']} {hit['kind']} {hit['reference']}: {hit['detail']}")
    if output_format == "text":
        typer.echo(f"{checked} questions checked against {len(guard)} in {reference}: {len(hits)} contaminated"
                   + (f"; {without} records without a question not checked" if without else ""))
    raise typer.Exit(1 if hits else 0)
