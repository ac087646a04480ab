"""`tracelang decode ...` and `tracelang bench decode|generate`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer

from ..diagnostics import UNGROUNDED_VALUE
from ..errors import UsageError
from ..fileio import read_jsonl
from ..paths import EXAMPLES
from .levels import HELP as LEVELS_HELP


def register(app: typer.Typer) -> None:
    """Add the `decode` and `bench` groups to ``app``."""
    decode_app = typer.Typer(help="Grammar-constrained decoding.", no_args_is_help=True)
    decode_app.command("fuzz")(fuzz_command)
    decode_app.command("export")(export_command)
    decode_app.command("compile")(compile_command)
    bench_app = typer.Typer(help="Benchmarks that compare against a baseline in the same run.", no_args_is_help=True)
    bench_app.command("decode")(bench_decode)
    bench_app.command("generate")(bench_generate)
    app.add_typer(decode_app, name="decode")
    app.add_typer(bench_app, name="bench")


def _tokenizer(name: str):
    from ..models.tokenizer_store import vocabulary_tokenizer

    try:
        return vocabulary_tokenizer(name)
    except (OSError, ValueError) as err:
        raise UsageError(f"--tokenizer {name}: {err}") from None


def _levels(text: str):
    from .levels import Levels

    try:
        return Levels.parse(text)
    except ValueError as err:
        raise UsageError(f"--levels: {err}") from None


def _questions(path: Path | None) -> list[str | None] | None:
    if path is None:
        return None
    out: list[str | None] = []
    for n, record in read_jsonl(path):
        if not isinstance(record.get("question"), str):
            raise UsageError(f"{path}:{n}: the record has no `question` string")
        out.append(record["question"])
    if not out:
        raise UsageError(f"{path}: no records")
    return out


def _surface(surface: str) -> str:
    from ..grammar import SURFACES

    if surface not in SURFACES:
        raise UsageError(f"--surface takes {' or '.join(SURFACES)}, not {surface!r}")
    return surface


def fuzz_command(
    tokenizer: str = typer.Option("embedded", "--tokenizer", help="embedded | tiny-bpe | tiny-spm | a local "
                                  "tokenizer directory."),
    n: int = typer.Option(100, "--n", min=1, help="How many traces to sample."),
    out: Path = typer.Option(..., "--out", help="Corpus JSONL to write (all or nothing)."),
    question_file: Path | None = typer.Option(None, "--question-file", help="JSONL records with a `question`: "
                                              "trace i is grounded in question i (cycling)."),
    seed: int = typer.Option(0, "--seed"),
    levels: str = typer.Option("all", "--levels", help=LEVELS_HELP),
    max_tokens: int = typer.Option(4096, "--max-tokens", min=16, help="A sample longer than this is dropped "
                                   "(and counted)."),
    surface: str = typer.Option("yaml", "--surface", help="The surface the decoder writes: yaml or compact."),
    close: bool = typer.Option(False, "--close", help="At --max-tokens, end the sample with the decoder's "
                               "closing text (as generation ends a row out of budget) instead of dropping it."),
) -> None:
    """Sample traces under the constraint from random logits (no model) and check every one.

    Without --question-file, grounding uses a few random quantities per trace (kept in `meta`).
    Exit status: 0 when every trace checks with no error, 1 otherwise, 2 for usage errors.
    """
    if seed < 0:  # before any tokenizer or model loads
        raise UsageError(f"--seed must be 0 or more (got {seed})")
    from ..fileio import refuse_overwriting, write_jsonl

    refuse_overwriting({"question_file": question_file}, {"out": out})
    from ..pipeline import analyze
    from ..record import make_record
    from .constraint import compile_tokenizer
    from .fuzz import fuzz

    _surface(surface)
    tok = _tokenizer(tokenizer)
    lv = _levels(levels)
    questions = _questions(question_file)
    grounders: dict[str, object] = {}
    t0 = time.perf_counter()
    compiled = compile_tokenizer(tok, surface=surface)
    counts = {"sampled": 0, "ok": 0, "with_errors": 0, "too_long": 0, "closed": 0, "tokens": 0}
    codes: dict[str, int] = {}
    records = []
    for i, question, sample in fuzz(compiled, n, seed, lv, questions, max_tokens, close=close):
        if sample.text is None:
            counts["too_long"] += 1
            continue
        counts["sampled"] += 1
        counts["closed"] += sample.closed
        counts["tokens"] += sample.tokens
        grounder = None
        if question is not None and lv.grounding:
            if question not in grounders:
                from ..grounding import grounder_for

                grounders[question] = grounder_for(question)
            grounder = grounders[question]
        elif sample.allowed_values is not None:
            allowed = set(sample.allowed_values)
            grounder = allowed.__contains__
        report = analyze(sample.text, grounder=grounder)  # type: ignore[arg-type]
        bad = [d for d in report.diagnostics if d.severity == "error" or (lv.grounding and d.code == UNGROUNDED_VALUE)]
        for d in bad:
            codes[d.code] = codes.get(d.code, 0) + 1
        counts["with_errors" if bad else "ok"] += 1
        expert = report.program.blocks[0].expert if report.program and report.program.blocks else ""
        meta = {"tokenizer": tokenizer, "seed": seed, "index": i, "tokens": sample.tokens, "levels": levels,
                "diagnostics": [d.code for d in report.diagnostics], "surface": surface, "closed": sample.closed}
        if sample.allowed_values is not None:
            from ..numbers import render

            meta["allowed_values"] = [render(v) for v in sample.allowed_values]
        records.append(make_record(f"fuzz-{seed}-{i:05d}", question, sample.text, report.answer, expert,
                                   "synthetic:decode-fuzz", meta))
    write_jsonl(out, records)
    dt = time.perf_counter() - t0
    typer.echo(f"{counts['sampled']} traces ({counts['tokens']} tokens) in {dt:.1f}s with {tokenizer}: "
               f"{counts['ok']} check with no error, {counts['with_errors']} with errors"
               + (f" {codes}" if codes else "") + f"; {counts['closed']} closed and {counts['too_long']} dropped "
               f"at --max-tokens; wrote {out}")
    raise typer.Exit(1 if counts["with_errors"] else 0)


def export_command(
    fmt: str = typer.Option("lark", "--format", help="lark (llguidance), ebnf (xgrammar, llguidance), regex, "
                            "or vllm (the JSON `structured_outputs` request fragment, in EBNF: vLLM's xgrammar "
                            "and guidance backends both take it)."),
    surface: str = typer.Option("yaml", "--surface", help="The surface: yaml (canonical) or compact."),
) -> None:
    """Print a surface's canonical grammar for another engine (derived from grammar/trace.lark)."""
    from .export import to_ebnf, to_lark, to_regex, vllm_request

    _surface(surface)
    if fmt == "lark":
        sys.stdout.write(to_lark(surface))
    elif fmt == "ebnf":
        sys.stdout.write(to_ebnf(surface))
    elif fmt == "regex":
        sys.stdout.write(to_regex(surface) + "\n")
    elif fmt == "vllm":
        sys.stdout.write(json.dumps(vllm_request("ebnf", surface), indent=2) + "\n")
    else:
        raise UsageError("--format takes lark, ebnf, regex or vllm")


def compile_command(
    tokenizer: str = typer.Option("embedded", "--tokenizer"),
) -> None:
    """Compile the automaton for a tokenizer and store it in the cache (~/.cache/tracelang)."""
    from .constraint import compile_tokenizer

    tok = _tokenizer(tokenizer)
    c = compile_tokenizer(tok, memory=False)
    info = c.info  # type: ignore[attr-defined]
    typer.echo(f"{tokenizer}: {c.vocab.size} tokens, {'loaded' if info.from_disk else 'compiled'} in "
               f"{info.seconds:.2f}s; cache {info.path}")


def _traces(corpus: list[Path], limit: int | None):
    from .bench import load_traces

    paths = [str(p) for p in corpus] or sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    if not corpus:
        typer.echo(f"note: no --corpus; using the {len(paths)} example traces", err=True)
    traces = load_traces(paths, limit)
    if not traces:
        raise UsageError("no traces in the corpus")
    return traces


def _fmt(stats: dict | None) -> str:
    if not stats:
        return "-"
    return f"{stats['mean']:8.1f} {stats['p50']:7.1f} {stats['p99']:8.1f} {stats['max']:9.1f}"


def bench_decode(
    corpus: list[Path] = typer.Option([], "--corpus", help="Corpus JSONL / trace files (repeatable)."),
    tokenizer: str = typer.Option("embedded", "--tokenizer"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Use the first N traces."),
    levels: str = typer.Option("all", "--levels", help=f"{LEVELS_HELP} Grounding applies to "
                               "traces with a question."),
    engines: str = typer.Option("tracelang,xgrammar,llguidance", "--engines"),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the numbers as JSON."),
    surfaces: str = typer.Option("yaml", "--surfaces", help="The surfaces to write the traces in: yaml, compact "
                                 "or both (yaml,compact), each timed in this run."),
) -> None:
    """Per-token mask time and compile time: tracelang vs xgrammar vs llguidance on the same traces.

    tracelang runs with its semantic levels on; xgrammar and llguidance get the same grammar
    (exported from trace.lark) and check syntax only. Mask times exclude taking the token, which is
    reported separately. The first pass fills tracelang's lazy caches; the second is steady state.
    """
    from .bench import mask_benchmark, write_json

    chosen = tuple(_surface(x.strip()) for x in surfaces.split(",") if x.strip())
    tok = _tokenizer(tokenizer)
    traces = _traces(corpus, limit)
    names = tuple(e.strip() for e in engines.split(",") if e.strip())
    rows = mask_benchmark(tok, traces, _levels(levels), engines=names,
                          progress=lambda name: typer.echo(f"running {name} ...", err=True), surfaces=chosen)
    tokens = {r["surface"]: r["tokens"] for r in rows}
    typer.echo(f"{len(traces)} traces, " + ", ".join(f"{n} tokens in {s}" for s, n in tokens.items())
               + f", tokenizer {tokenizer} ({len(tok)} ids)")
    typer.echo(f"{'engine':<22} {'compile cold':>12} {'cached':>8}   {'mask µs: mean':>13} {'p50':>7} {'p99':>8} "
               f"{'max':>9}   {'first pass mean/p99':>19}   {'take token mean':>15}  rejected")
    for r in rows:
        label = f"{r['engine']} ({r['surface']})"
        if r["error"]:
            typer.echo(f"{label:<22} unavailable: {r['error']}")
            continue
        first = r["mask_first_pass_us"]
        typer.echo(f"{label:<22} {r['compile_cold_s']:11.3f}s {r['compile_cached_s']:7.3f}s   "
                   f"{_fmt(r['mask_us']):>40}   {first['mean']:9.1f}/{first['p99']:<9.1f}   "
                   f"{r['advance_us']['mean']:15.1f}  {r['rejected']}")
    if json_out:
        write_json(json_out, {"tokenizer": tokenizer, "traces": len(traces), "tokens": tokens, "engines": rows})


def bench_generate(
    corpus: list[Path] = typer.Option([], "--corpus", help="Corpus JSONL / trace files (repeatable)."),
    tokenizer: str = typer.Option("tiny-spm", "--tokenizer"),
    limit: int | None = typer.Option(64, "--limit", min=1),
    batch: int = typer.Option(8, "--batch", min=1),
    layers: int = typer.Option(4, "--layers", min=1),
    hidden: int = typer.Option(256, "--hidden", min=16),
    json_out: Path | None = typer.Option(None, "--json"),
) -> None:
    """A small random model writes the same traces unconstrained, constrained, and constrained with
    fast-forward (teacher-forced, so all three emit identical tokens): tokens of trace per second."""
    import torch

    from .bench import generation_benchmark, write_json

    torch.set_num_threads(1)
    tok = _tokenizer(tokenizer)
    traces = _traces(corpus, limit)
    rows = generation_benchmark(tok, traces, batch=batch, layers=layers, hidden=hidden)
    typer.echo(f"{len(traces)} traces, {rows[0]['tokens']} tokens, tokenizer {tokenizer}, model {layers} layers x "
               f"{hidden}, batch {batch}")
    for r in rows:
        typer.echo(f"{r['mode']:<26} {r['tokens_per_second']:9.1f} tokens/s  {r['seconds']:7.2f}s  "
                   f"{r['forward_passes']:6d} forward passes  same tokens: {r['same_tokens_as_reference']}")
    if json_out:
        write_json(json_out, rows)
