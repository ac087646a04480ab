"""`tracelang solve` and `tracelang eval`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..diagnostics import render as render_diag
from ..errors import UsageError
from ..fileio import InputError
from ..grammar import SURFACES
from ..models import ModelError, Prompter, load_model
from ..models.loading import ATTN_HELP, DEVICE_HELP, DTYPE_HELP, REVISION_HELP, resolve_device, resolve_dtype
from ..models.prompt import load_shots
from ..numbers import render
from ..paths import SHOTS
from ..pipeline import analyze
from .backends import Backend, FreeBackend
from .datasets import is_file_source
from .runner import EvalConfig, run

MODEL_HELP = ("`shipped` (the default: Gemma 3 270M with the trained adapter in weights/shipped; its model card "
              "there), `embedded` (the untrained base), `tiny`, a training checkpoint, an adapter directory, a "
              "local model directory or a hub id.")
SHOTS_HELP = "Worked examples in the prompt (default: 0 for a trained model, 3 for an untrained one)."
SURFACE_HELP = ("The surface the model writes: yaml or compact (default: the one it was trained on, from its prompt "
                "version; yaml for an untrained model).")


def register(app: typer.Typer) -> None:
    """Add `solve` and `eval` to ``app``."""
    app.command()(solve)
    app.command("eval")(evaluate)


def _device(device: str) -> str:
    """The concrete device, or a one-line usage error before anything loads."""
    try:
        return resolve_device(device)
    except ModelError as err:
        raise UsageError(f"--device: {err}") from None


def load_any(model: str, seed: int = 0, dtype: str = "float32", device: str | None = None,
             revision: str | None = None, attn_implementation: str | None = None):
    """A model by name or path (``load_model``: a training checkpoint is applied to its base model)."""
    path = Path(model)
    if path.is_dir() and not any(path.iterdir()):
        raise ModelError(f"--model {model}: an empty directory")
    return load_model(model, seed=seed, dtype=dtype, device=device, revision=revision,
                      attn_implementation=attn_implementation)


def default_shots(loaded, shots: int | None) -> int:
    """As many worked examples as asked; by default none for a model trained on traces (it is
    prompted as it was trained), three for an untrained one."""
    if shots is not None:
        return shots
    return 0 if loaded.prompt_version is not None else 3


def make_backend(model: str, constrain: bool, shots: int | None, shots_from: str | None, max_new_tokens: int,
                 seed: int = 0, dtype: str = "float32", device: str | None = None, samples: int = 1,
                 temperature: float = 0.0, revision: str | None = None,
                 attn_implementation: str | None = None, surface: str | None = None) -> tuple[Backend, Prompter]:
    if surface is not None and surface not in SURFACES:
        raise UsageError(f"--surface takes {' or '.join(SURFACES)}, not {surface!r}")
    loaded = load_any(model, seed=seed, dtype=dtype, device=device, revision=revision,
                      attn_implementation=attn_implementation)
    shots = default_shots(loaded, shots)
    source = Path(shots_from) if shots_from else SHOTS
    if shots and not source.is_file():
        raise UsageError(f"no shots corpus at {source}")
    try:
        chosen = load_shots(source, shots, seed) if shots else []
    except InputError as err:
        raise UsageError(f"--shots-from: {err}") from None
    prompter = Prompter.for_version(loaded.tokenizer, loaded.prompt_version, chosen, surface)
    if not constrain:
        return FreeBackend(loaded, prompter, max_new_tokens), prompter
    from .constrained import ConstrainedBackend

    backend = ConstrainedBackend(loaded, prompter, max_new_tokens, seed=seed, temperature=temperature)
    if samples > 1:
        from .voting import VotingBackend

        return VotingBackend(backend, samples), prompter
    return backend, prompter


def solve(
    question: str = typer.Argument(..., help="The problem, in words."),
    model: str = typer.Option(EvalConfig.model, help=MODEL_HELP),
    constrain: bool = typer.Option(True, "--constrain/--no-constrain", help="Decode under the grammar."),
    shots: int | None = typer.Option(None, min=0, help=SHOTS_HELP),
    shots_from: str | None = typer.Option(None, help="Corpus (.jsonl) to draw the examples from."),
    max_new_tokens: int = typer.Option(320, min=1, help="Longest trace, in tokens."),
    dtype: str = typer.Option("auto", help=DTYPE_HELP),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    revision: str | None = typer.Option(None, help=REVISION_HELP),
    attn_implementation: str | None = typer.Option(None, help=ATTN_HELP),
    surface: str | None = typer.Option(None, help=SURFACE_HELP),
) -> None:
    """Write a trace for one question with a model, check it, run it, print the answer."""
    device = _device(device)
    backend, prompter = make_backend(model, constrain, shots, shots_from, max_new_tokens, dtype=dtype, device=device,
                                     revision=revision, attn_implementation=attn_implementation, surface=surface)
    (out,) = backend.generate([prompter.prompt(question)], [question])
    typer.echo(out.text, nl=False)
    if out.budget_closed:  # the decoder wrote the end: whatever it runs to is not the model's answer
        typer.echo(f"the model did not finish within --max-new-tokens {max_new_tokens}: the decoder closed the "
                   "trace, so it is not an answer", err=True)
        typer.echo("answer: none")
        raise typer.Exit(1)
    from ..grounding import grounder_for

    report = analyze(out.text, grounder=grounder_for(question))
    for d in report.diagnostics:
        typer.echo(render_diag(d, out.text, "trace") + "\n", err=True)
    typer.echo(f"answer: {render(report.answer) if report.answer is not None else 'none'}")
    raise typer.Exit(0 if report.answer is not None else 1)


def evaluate(
    model: str = typer.Option(EvalConfig.model, help=MODEL_HELP),
    split: str = typer.Option("test", help="`test` (evaluation only) or `dev` (500 of train, for model selection)."),
    n: int | None = typer.Option(None, min=1, help="A seeded sample of N problems; the whole split if omitted."),
    seed: int = typer.Option(42, min=0, help="Seed of the sample (`--n 30 --seed 42` is the study's protocol)."),
    out: Path = typer.Option(..., help="Directory for predictions.jsonl, metrics.json, report.md and report.html."),
    constrain: bool = typer.Option(True, "--constrain/--no-constrain", help="Decode under the grammar."),
    batch_size: int = typer.Option(32, min=1, help="Problems decoded together (on 2 CPU cores, bfloat16: 17/min at "
                                   "8, 22/min at 16, 25/min at 32 on dev problems)."),
    shots: int | None = typer.Option(None, min=0, help=SHOTS_HELP),
    shots_from: str | None = typer.Option(None, help="Corpus (.jsonl) to draw the examples from."),
    max_new_tokens: int = typer.Option(320, min=1, help="Longest trace, in tokens."),
    data: str | None = typer.Option(None, help="GSM-8K directory (default ../shared/data/gsm8k), or any question/"
                                    "answer set: a .jsonl file or hf:REPO[@CONFIG]:SPLIT (then --split is unused)."),
    question_field: str = typer.Option("question", help="With a dataset file: the question's field."),
    answer_field: str = typer.Option("answer", help="With a dataset file: the answer's field (`#### n`, a number or "
                                     "a numeric string)."),
    dtype: str = typer.Option("auto", help=DTYPE_HELP),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print only the metrics, as one JSON object, on stdout; "
                                  "every other line goes to stderr."),
    samples: int = typer.Option(1, min=1, help="maj@k: k sampled constrained traces per problem, each executed; "
                                "the exact answer most valid traces agree on wins."),
    temperature: float | None = typer.Option(None, min=0.0, help="Sampling temperature with --samples > 1 "
                                             "(default 0.7)."),
    revision: str | None = typer.Option(None, help=REVISION_HELP),
    attn_implementation: str | None = typer.Option(None, help=ATTN_HELP),
    surface: str | None = typer.Option(None, help=SURFACE_HELP),
) -> None:
    """Evaluate a model on GSM-8K: decode, check, execute; write predictions, metrics and a report.

    An interrupted run resumes where it stopped when started again with the same --out.
    """
    import dataclasses

    from tqdm import tqdm

    from ..models.prompt import PROMPT_VERSION

    device = _device(device)
    if surface is not None and surface not in SURFACES:  # before any model loads
        raise UsageError(f"--surface takes {' or '.join(SURFACES)}, not {surface!r}")
    if samples > 1 and not constrain:
        raise UsageError("--samples needs constrained decoding (every sample must parse to be executed)")
    temperature = (0.7 if samples > 1 else 0.0) if temperature is None else temperature
    if samples > 1 and temperature <= 0:
        raise UsageError("--samples > 1 needs --temperature > 0 (greedy samples are all the same)")
    try:
        dtype = resolve_dtype(dtype, device)  # recorded resolved: a resume on other hardware must not mix them
    except ModelError as err:
        raise UsageError(f"--dtype: {err}") from None
    config = EvalConfig(model=model, split=split, n=n, seed=seed, constrain=constrain, batch_size=batch_size,
                        shots=shots or 0, shots_from=shots_from, max_new_tokens=max_new_tokens, data_dir=data,
                        prompt_version=PROMPT_VERSION, dtype=dtype, question_field=question_field,
                        answer_field=answer_field, samples=samples, temperature=temperature, revision=revision)
    from .runner import check_out, problems

    total = len(problems(config))  # a bad split or data directory fails before the model loads
    check_out(out, {"data": data if is_file_source(data) else None, "shots_from": shots_from})
    backend, prompter = make_backend(model, constrain, shots, shots_from, max_new_tokens, seed, dtype, device,
                                     samples, temperature, revision, attn_implementation, surface)
    config = dataclasses.replace(config, shots=len(prompter.shots), prompt_version=prompter.version,
                                 shots_from=shots_from if prompter.shots else None)
    bar = tqdm(total=total, unit="problem", desc=f"eval {split}")
    try:
        metrics = run(config, out, backend, prompter.prompt, progress=bar.update)
    finally:
        bar.close()
    keys = ("n", "correct", "accuracy", "ci95", "parsed", "valid", "wrong_answer", "invalid_trace", "wrong_expert",
            "dataset", "wall_seconds")
    typer.echo(json.dumps({k: metrics[k] for k in keys}))
    typer.echo(f"wrote {out / 'predictions.jsonl'}, {out / 'metrics.json'}, {out / 'results.json'}, "
               f"{out / 'report.md'}, {out / 'report.html'}", err=json_out)
