"""`tracelang eval`: decode a GSM-8K split, check and execute every trace, write what happened.

Each prediction is appended to ``predictions.jsonl`` as soon as its batch is done, so an
interrupted run resumes where it stopped; ``metrics.json``, ``report.md`` and ``report.html`` (every
problem, to look at: ``html_report``) are written at the end (atomically). The run's settings are
kept in ``config.json``; resuming with other settings is refused.
A caller that knows what the model is (training: its weights' fingerprint) passes ``identity``; the
same settings for another model make the old predictions stale, and the run starts afresh.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..compact import is_compact
from ..data.gsm8k import Problem, load
from ..data.importer import convert
from ..data.splits import dev_ids
from ..errors import UsageError
from ..fileio import (
    InputError,
    LineError,
    append_to,
    atomic_write,
    dumps_line,
    loads_line,
    open_lines,
    parse_lines,
    read_text,
    refuse_overwriting,
    write_jsonl,
)
from ..formatter import format_program
from ..grounding import grounder_for
from ..ir import Program
from ..models.loading import SHIPPED
from ..numbers import render
from ..pipeline import analyze, parse
from .backends import Backend
from .datasets import is_file_source, load_file
from .html_report import write_html
from .lm_eval_shape import results as lm_eval_results
from .metrics import summarize
from .report import write_report
from .taxonomy import classify


class EvalError(UsageError, RuntimeError):
    """A run that cannot start (missing data, a resumed directory with other settings)."""


@dataclass(frozen=True)
class EvalConfig:
    model: str = SHIPPED  # the default of `solve` and `eval` too
    split: str = "test"  # test | dev
    n: int | None = None  # a seeded sample of n problems; None = the whole split
    seed: int = 42
    constrain: bool = True
    batch_size: int = 32
    shots: int = 3
    shots_from: str | None = None  # a corpus of records with question + trace; default corpora/shots.jsonl
    max_new_tokens: int = 320
    data_dir: str | None = None
    prompt_version: str = ""
    # Fields added later default to what runs did before them, so older directories still resume.
    dtype: str = "float32"  # of the weights; `tracelang eval` records what `--dtype auto` resolved to
    question_field: str = "question"  # for a dataset file (`data_dir` naming a .jsonl or hf:...)
    answer_field: str = "answer"
    samples: int = 1  # maj@k: k sampled traces per problem, majority vote on the exact answer
    temperature: float = 0.0  # of those samples (0: greedy, with samples 1)
    revision: str | None = None  # of a hub model (`--revision`)


def data_dir(explicit: str | None) -> Path:
    """The GSM-8K folder: the one named (never a fallback past a typo), else the usual places."""
    if explicit:
        if (Path(explicit) / "test.jsonl").is_file():
            return Path(explicit)
        raise EvalError(f"--data {explicit}: not a GSM-8K folder (with train.jsonl and test.jsonl), a .jsonl file "
                        "or hf:REPO:SPLIT")
    for candidate in (os.environ.get("TRACELANG_GSM8K"), "../shared/data/gsm8k", "shared/data/gsm8k"):
        if candidate and (Path(candidate) / "test.jsonl").is_file():
            return Path(candidate)
    raise EvalError("GSM-8K not found: pass --data DIR (with train.jsonl and test.jsonl) or set TRACELANG_GSM8K")


def dataset_name(config: EvalConfig) -> str:
    """What the report says was evaluated."""
    if is_file_source(config.data_dir):
        return f"{config.data_dir} (fields `{config.question_field}`, `{config.answer_field}`)"
    return f"GSM-8K {config.split}"


def problems(config: EvalConfig) -> list[Problem]:
    if is_file_source(config.data_dir):
        try:
            pool = load_file(str(config.data_dir), config.question_field, config.answer_field)
        except InputError as err:
            raise EvalError(str(err)) from None
        if not pool:  # n = 0 with exit 0 would read as a finished evaluation
            raise EvalError(f"{config.data_dir}: no problems (an empty file)")
        if config.n is not None and config.n < len(pool):
            pool = sorted(random.Random(config.seed).sample(pool, config.n), key=lambda p: p.index)
        return pool
    root = data_dir(config.data_dir)
    if config.split == "test":
        pool = list(load(str(root / "test.jsonl"), "test"))
    elif config.split == "dev":
        ids = dev_ids()
        pool = [p for p in load(str(root / "train.jsonl"), "train") if p.id in ids]
    else:
        raise EvalError(f"--split takes test or dev, not {config.split!r}")
    if not pool:
        raise EvalError(f"{root}: no {config.split} problems")
    if config.n is not None and config.n < len(pool):
        pool = sorted(random.Random(config.seed).sample(pool, config.n), key=lambda p: p.index)
    return pool


def _gold(problem: Problem) -> tuple[Program | None, str | None]:
    record = convert(problem).record
    if record is None:
        return None, None
    return parse(record["trace"]).program, record["expert"]


BUDGET_CLOSED = "budget_closed"  # the failure class of a trace the decoder ended when the budget ran out


def predict(problem: Problem, text: str, new_tokens: int, seconds: float,
            budget_closed: bool = False, sample_answers: list[str | None] | None = None) -> dict[str, Any]:
    """One prediction row. A budget-closed trace is never valid nor correct: its end is the
    decoder's, so whatever it runs to is not the model's answer."""
    report = analyze(text, expected=problem.gold, grounder=grounder_for(problem.question))
    gold, gold_expert = _gold(problem)
    experts = [b.expert for b in report.program.blocks] if report.program else []
    row = {
        "id": problem.id,
        "question": problem.question,
        "gold": None if problem.gold is None else render(problem.gold),
        "trace": text,
        "answer": None if report.answer is None else render(report.answer),
        "correct": bool(report.correct),
        "parsed": report.program is not None,
        "valid": report.ok and report.answer is not None,
        "codes": [d.code for d in report.diagnostics],
        "expert": experts[-1] if experts else None,
        "gold_expert": gold_expert,
        "wrong_expert": bool(experts and gold_expert and gold_expert not in experts),
        "failure": classify(report, gold, problem.question),
        "new_tokens": new_tokens,
        "seconds": round(seconds, 4),
    }
    if is_compact(text):  # also in the canonical YAML, for the tools that read only that
        row["trace_yaml"] = format_program(report.program) if report.program is not None and report.complete else None
    if budget_closed:
        row.update(answer=None, correct=False, valid=False, failure=BUDGET_CLOSED, budget_closed=True)
    if sample_answers is not None:  # maj@k: pass@k is a right answer among the samples (both rendered exactly)
        row["sample_answers"] = list(sample_answers)
        row["pass"] = row["gold"] is not None and row["gold"] in sample_answers
    return row


def _read_settings(settings: Path) -> dict[str, Any]:
    """A resumed run's config.json; anything but a JSON object there is an error naming the file."""
    try:
        held = loads_line(read_text(settings, 1 << 20))
    except (InputError, LineError) as err:
        raise EvalError(f"{settings}: not a run's settings ({getattr(err, 'message', err)}); use another --out") \
            from None
    if not isinstance(held, dict):
        raise EvalError(f"{settings}: not a run's settings (not a JSON object); use another --out")
    return held


# What a run writes in its --out directory (report.md's charts included).
OUTPUT_FILES = ("config.json", "predictions.jsonl", "metrics.json", "results.json", "report.md", "report.html",
                "accuracy_by_expert.png", "failure_taxonomy.png")


def check_out(out: Path, inputs: dict[str, str | Path | None] | None = None) -> None:
    """What `run` would refuse about ``out``, before a model loads: not a directory, a file it writes
    that is one of ``inputs`` (``--data``, ``--shots-from``), damaged settings."""
    if out.exists() and not out.is_dir():
        raise EvalError(f"--out {out}: not a directory")
    refuse_overwriting(inputs or {}, {"out": [out / name for name in OUTPUT_FILES]})
    if (out / "config.json").exists():
        _read_settings(out / "config.json")


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _read_predictions(path: Path, todo: dict[str, Problem]) -> tuple[dict[str, dict], int]:
    """The rows already decoded, each checked and run again from its stored trace (an edited verdict
    is never trusted), and how many lines were dropped: a line cut by an interrupt, a row that is not
    a prediction of this run. Their problems are decoded again."""
    done: dict[str, dict] = {}
    dropped = 0
    if not path.exists():
        return done, 0
    with open_lines(path) as lines:
        rows = list(parse_lines(lines))
    for _, row in rows:
        if isinstance(row, LineError):
            dropped += 1
            continue
        problem = todo.get(row.get("id")) if isinstance(row, dict) and isinstance(row.get("id"), str) else None
        if problem is None or not isinstance(row.get("trace"), str):  # type: ignore[union-attr]
            dropped += 1
            continue
        samples = row.get("sample_answers")  # type: ignore[union-attr]
        samples = [a if isinstance(a, str) else None for a in samples] if isinstance(samples, list) else None
        done[problem.id] = predict(problem, row["trace"], int(_number(row.get("new_tokens"))),  # type: ignore[index]
                                   _number(row.get("seconds")), row.get("budget_closed") is True,  # type: ignore[union-attr]
                                   samples)
    return done, dropped


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def run(config: EvalConfig, out: Path, backend: Backend, prompt: Callable[[str], str],
        progress: Callable[[int], None] | None = None, identity: dict[str, Any] | None = None,
        echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate; returns the metrics. ``prompt`` turns a question into the model's prompt."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    settings = out / "config.json"
    wanted = asdict(config)
    if identity is not None:  # only then: a plain `tracelang eval` directory stays as it was
        wanted["model_identity"] = identity
    held = {**asdict(EvalConfig()), **_read_settings(settings)} if settings.exists() else wanted
    if held != wanted:
        if identity is None or {k: v for k, v in held.items() if k != "model_identity"} != asdict(config):
            raise EvalError(f"{out} holds a run with other settings ({settings}); use another --out")
        for name in ("predictions.jsonl", "metrics.json", "report.md", "report.html"):
            (out / name).unlink(missing_ok=True)
        echo(f"{out}: evaluated another model before (retrained?); its predictions removed, evaluating afresh")
    with atomic_write(settings) as fh:
        json.dump(wanted, fh, indent=2)
    todo_all = problems(config)
    preds_path = out / "predictions.jsonl"
    done, dropped = _read_predictions(preds_path, {p.id: p for p in todo_all})
    if dropped:
        echo(f"{preds_path}: {dropped} line(s) not a prediction of this run (cut by an interrupt, or edited): "
             "decoding those problems again")
    # rewrite without cut lines before appending, so the file stays one JSON object per line
    write_jsonl(preds_path, done.values())
    todo = [p for p in todo_all if p.id not in done]
    if progress:
        progress(len(todo_all) - len(todo))
    with append_to(preds_path) as fh:  # the file just written, never a link planted since
        for batch in _batches(todo, config.batch_size):
            outputs = backend.generate([prompt(p.question) for p in batch], [p.question for p in batch])
            for problem, gen in zip(batch, outputs, strict=True):
                row = predict(problem, gen.text, gen.new_tokens, gen.seconds, gen.budget_closed,
                              None if gen.sample_answers is None else list(gen.sample_answers))
                done[problem.id] = row
                fh.write(dumps_line(row) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            if progress:
                progress(len(batch))
    rows = [done[p.id] for p in todo_all]
    metrics = summarize(rows)
    metrics["config"] = wanted
    metrics["dataset"] = dataset_name(config)
    # this process's wall time (model loading aside); a resumed run's earlier rows are in the rows' seconds
    metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
    with atomic_write(out / "metrics.json") as fh:
        json.dump(metrics, fh, indent=2)
    with atomic_write(out / "results.json") as fh:
        json.dump(lm_eval_results(metrics, rows, len(todo_all)), fh, indent=2)
    write_report(out / "report.md", metrics, rows)
    write_html(out / "report.html", metrics, rows, todo_all)
    return metrics
