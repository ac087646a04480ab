"""`tracelang train sft | rl | masks | run | export | summary | ship`, and `filter`, which
``corpus.commands`` adds to the `corpus` group."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..decoding.levels import HELP as LEVELS_HELP
from ..errors import UsageError
from ..fileio import atomic_write, refuse_overwriting
from ..models.loading import ATTN_HELP, DEVICE_HELP, DTYPE_HELP, REVISION_HELP, resolve_device
from .stages import SECTIONS
from .stages import STAGES as STAGE_HELP

if TYPE_CHECKING:
    from .config import Recipe

STAGES = ("base", *STAGE_HELP)  # `train run`'s stages, in the order they run: base is evaluation only
JSON_HELP = "Print only the result, as one JSON object, on stdout; every other line goes to stderr."


def register(app: typer.Typer) -> None:
    """Add the `train` group to ``app``."""
    train_app = typer.Typer(help="Training: SFT with partial unfreezing, GRPO with the verifier's reward, recipes.",
                            no_args_is_help=True)
    for stage in STAGE_HELP:
        train_app.command(stage)(_stage_command(stage))
    train_app.command("masks")(masks_command)
    train_app.command("run")(run_command)
    train_app.command("export")(export_command)
    train_app.command("summary")(summary_command)
    train_app.command("ship")(ship_command)
    app.add_typer(train_app, name="train")


def _say(json_out: bool):
    """Where human lines go: stdout, or stderr when stdout is for JSON only."""
    return (lambda line: typer.echo(line, err=True)) if json_out else typer.echo


_SET_HELP = "Override a recipe key: --set learning_rate=5e-5 --set data.0.weight=2 --set eval.n=20 (repeatable)."


@contextmanager
def _missing_files() -> Iterator[None]:
    """A file the recipe names that is not there is a usage error (the command line reports it in one
    line); tracelang's own errors need no translation."""
    try:
        yield
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None


def _overrides(sets: list[str], **explicit: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """`train sft` / `train rl`: ``eval.KEY=V`` -> the evaluations, anything else -> the stage."""
    from .config import parse_overrides

    stage: dict[str, Any] = {}
    evals: dict[str, Any] = {}
    for key, value in parse_overrides(sets).items():
        head, _, rest = key.partition(".")
        if head == "eval" and rest:
            evals[rest] = value
        else:
            stage[key] = value
    stage.update({k: v for k, v in explicit.items() if v is not None})
    return stage, evals


def _split_overrides(sets: list[str]) -> dict[str, dict[str, Any]]:
    """``sft.x=1`` -> the sft stage; ``x=1`` -> every stage."""
    from .config import parse_overrides

    out: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for key, value in parse_overrides(sets).items():
        head, _, rest = key.partition(".")
        if head in out and rest:
            out[head][rest] = value
        else:
            for stage in STAGE_HELP:
                out[stage][key] = value
    return out


def _prepare(ctx: typer.Context, recipe: Recipe, say=typer.echo) -> None:
    """The recipe's `prepare` steps: tracelang commands (run on the command tree ``ctx`` belongs to)
    when what they create is missing."""
    from .config import ConfigError

    root = ctx.find_root().command
    here = str(Path(recipe.path).resolve())
    if here in _PREPARING:  # a prepare step that runs this recipe again, directly or through another
        raise ConfigError(f"{recipe.path}: prepare runs this recipe again (a loop: "
                          f"{' -> '.join([*_PREPARING, here])})")
    _PREPARING.append(here)
    try:
        for i, step in enumerate(recipe.prepare):
            if Path(step.creates).exists():
                continue
            runs = [str(Path(b).resolve()) for a, b in zip(step.run, step.run[1:], strict=False)
                    if a in ("--config", "-c")]
            if set(runs) & {*_PREPARING}:  # found before it runs: one error line, not one per level
                raise ConfigError(f"{recipe.path}: prepare.{i} runs a recipe being prepared (a loop: "
                                  f"{' -> '.join([*_PREPARING, runs[0]])})")
            say(f"prepare: tracelang {' '.join(step.run)}")
            code = root.main(step.run, prog_name="tracelang", standalone_mode=False)
            if code not in (None, 0) or not Path(step.creates).exists():
                raise ConfigError(f"{recipe.path}: prepare.{i}: `tracelang {' '.join(step.run)}` did not create "
                                  f"{step.creates}")
    finally:
        _PREPARING.pop()


_PREPARING: list[str] = []  # the recipes whose prepare steps are running, outermost first


def _init_path(stage: str, cfg: Any) -> Path | None:
    """Where a stage starts from (its `init`): a checkpoint or adapter directory, `shipped` (the
    adapter in weights/), or for RL `sft` (this recipe's SFT result)."""
    from ..models.loading import SHIPPED, shipped_dir
    from .config import ConfigError

    if cfg.init in (None, "", "none", "null"):
        return None
    hint = "no training.json"
    if stage == "rl" and cfg.init == "sft":
        path = Path(cfg.output_dir) / "sft" / "final"
        hint = "run `tracelang train sft` first, or set init: null"
    else:
        path = shipped_dir() if cfg.init == SHIPPED else Path(cfg.init)
    if not (path / "training.json").is_file():
        raise ConfigError(f"{stage}.init: no training checkpoint or shipped adapter at {path} ({hint})")
    return path


def _eval_hook(recipe: Recipe, overrides: dict[str, Any], out_dir: Path, stage: str, on: bool,
               say=typer.echo):
    if not on:
        return None
    from .config import stage_config
    from .evaluate import hook

    settings = stage_config(recipe, "eval", overrides)
    return hook(settings, out_dir / "eval", stage, settings.shots, say)  # a model in training: `shots`


def _trainer_class(stage: str):
    from . import rl, sft  # noqa: F401  (the trainers register under their stage names as they load)
    from .stage import TRAINERS

    return TRAINERS[stage]


def _trainer(stage: str, cfg: Any, recipe: Recipe, echo, evaluate=None):
    return _trainer_class(stage)(cfg, recipe, init_checkpoint=_init_path(stage, cfg), evaluate=evaluate, echo=echo)


# `train sft` and `train rl` take the same options; the recipe checks every value (one line, exit 2).
_CONFIG = typer.Option(..., "--config", "-c", help="Recipe YAML (its top level and the stage's section).")
_SETS = typer.Option([], "--set", help=_SET_HELP)
_MODEL = typer.Option(None, help="Model: `embedded`, `tiny`, a directory or a hub id.")
_OUTPUT_DIR = typer.Option(None, help="Run directory (the stage writes OUTPUT_DIR/sft or OUTPUT_DIR/rl).")
_MAX_STEPS = typer.Option(None, help="Stop after N steps (SFT: optimiser steps; RL: iterations).")
_SEED = typer.Option(None, help="One seed for everything.")
_INIT = typer.Option(None, help="Start from a checkpoint or adapter directory, `shipped` (the adapter in weights/), "
                     "`sft` (RL: this recipe's SFT result) or `none`; SFT gets a fresh optimiser.")
_RESUME = typer.Option(True, "--resume/--no-resume", help="Continue from the latest checkpoint.")
_EVAL = typer.Option(True, "--eval/--no-eval", help="Dev-split evaluations the recipe asks for.")
_JSON = typer.Option(False, "--json", help=JSON_HELP)


def _train_stage(ctx: typer.Context, stage: str, config: Path, sets: list[str], resume: bool, evaluate: bool,
                 json_out: bool, **explicit: Any) -> None:
    from .config import load_recipe, stage_config

    with _missing_files():
        recipe = load_recipe(config)
        over, eval_over = _overrides(sets, **explicit)
        cfg = stage_config(recipe, stage, over)
        say = _say(json_out)
        if _trainer_class(stage).prepares:
            _prepare(ctx, recipe, say)
        hook = _eval_hook(recipe, eval_over, Path(cfg.output_dir), stage, evaluate, say)
        result = _trainer(stage, cfg, recipe, say, hook).train(resume=resume)
    typer.echo(json.dumps(result))


def _stage_command(stage: str):
    """`train STAGE`, with the stage's help from stages.py."""

    def command(ctx: typer.Context, config: Path = _CONFIG, sets: list[str] = _SETS, model: str | None = _MODEL,
                output_dir: str | None = _OUTPUT_DIR, max_steps: int | None = _MAX_STEPS, seed: int | None = _SEED,
                init: str | None = _INIT, resume: bool = _RESUME, evaluate: bool = _EVAL,
                json_out: bool = _JSON) -> None:
        _train_stage(ctx, stage, config, sets, resume, evaluate, json_out, model=model, output_dir=output_dir,
                     max_steps=max_steps, seed=seed, init=init)

    command.__doc__ = STAGE_HELP[stage]
    command.__name__ = f"{stage}_command"
    return command


def masks_command(
    ctx: typer.Context,
    config: Path = typer.Option(..., "--config", "-c", help="Recipe YAML (its `sft` section)."),
    sets: list[str] = _SETS,
    shard: str = typer.Option("1/1", help="This process's share, I/N: run N processes, one per free core."),
) -> None:
    """Build the constrained loss's decoder masks into the cache (no model loaded), in the order
    training uses them, so that `train sft` starts on a warm cache or overtakes none."""
    from .config import ConfigError, load_recipe, stage_config
    from .sft import build_masks

    with _missing_files():
        i, _, n = shard.partition("/")
        if not (i.isdigit() and n.isdigit() and 1 <= int(i) <= int(n)):
            raise ConfigError(f"--shard {shard!r}: expected I/N with 1 <= I <= N")
        recipe = load_recipe(config)
        over, _ = _overrides(sets)
        cfg = stage_config(recipe, "sft", over)
        _prepare(ctx, recipe)
        build_masks(cfg, int(i) - 1, int(n), typer.echo)


def _summary_md(summary: dict[str, Any]) -> str:
    lines = [f"# {summary.get('recipe')}", "", "Dev split (seeded sample), accuracy / valid-trace rate.", "",
             "| stage | unconstrained acc | unconstrained valid | constrained acc | constrained valid | minutes |",
             "| --- | --- | --- | --- | --- | --- |"]
    for stage in STAGES:
        row = summary.get("stages", {}).get(stage)
        if row is None:
            continue
        ev = row.get("eval", {})

        def pct(key: str, ev=ev) -> str:
            return f"{100 * ev[key]:.1f}%" if key in ev else "–"

        minutes = f"{row['seconds'] / 60:.1f}" if "seconds" in row else "–"
        lines.append(f"| {stage} | {pct('free_accuracy')} | {pct('free_valid')} | {pct('constrained_accuracy')} | "
                     f"{pct('constrained_valid')} | {minutes} |")
    return "\n".join(lines) + "\n"


def run_command(
    ctx: typer.Context,
    config: Path = typer.Option(..., "--config", "-c", help="Recipe YAML."),
    sets: list[str] = typer.Option([], "--set", help="Override: sft.KEY=V, rl.KEY=V, eval.KEY=V, or KEY=V (all)."),
    stages: str = typer.Option(",".join(STAGES), help="Stages to run: base (evaluation only), sft, rl."),
    evaluate: bool = typer.Option(True, "--eval/--no-eval", help="Evaluate on dev after each stage."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue each stage from its checkpoint."),
) -> None:
    """A whole recipe: prepare data, evaluate the base model, SFT, evaluate, RL, evaluate.

    Writes OUTPUT_DIR/summary.json and summary.md (dev accuracy and valid-trace rate per stage,
    unconstrained and constrained) next to each stage's directory.
    """
    from .config import ConfigError, load_recipe, stage_config
    from .evaluate import evaluate as run_eval
    from .setup import build

    with _missing_files():
        wanted = {s.strip() for s in stages.split(",") if s.strip()}
        unknown = sorted(wanted - set(STAGES))
        if unknown or not wanted:
            raise ConfigError(f"--stages {stages!r}: expected a comma-separated list of {', '.join(STAGES)}")
        recipe = load_recipe(config)
        over = _split_overrides(sets)
        first = next(iter(STAGE_HELP))  # its settings name the model the base evaluation loads
        # every stage's settings checked now, not after the one before has trained for hours
        cfgs = {stage: stage_config(recipe, stage, over[stage]) for stage in STAGE_HELP
                if stage in wanted or stage == first}
        settings = stage_config(recipe, "eval", over["eval"])
        out = Path(cfgs[first].output_dir)
        out.mkdir(parents=True, exist_ok=True)
        summary_path = out / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() and resume else {}
        summary.update({"recipe": str(config), "stages": summary.get("stages", {})})

        def record(stage: str, row: dict[str, Any]) -> None:
            summary["stages"][stage] = row
            with atomic_write(summary_path) as fh:
                fh.write(json.dumps(summary, indent=2) + "\n")
            with atomic_write(out / "summary.md") as fh:
                fh.write(_summary_md(summary))

        _prepare(ctx, recipe)
        if "base" in wanted and evaluate:
            t0 = time.perf_counter()
            setup = build(cfgs[first])
            row = {"eval": run_eval(setup, settings, out / "eval", "base", settings.base_shots, typer.echo,
                                    instructions=True)}
            row["seconds"] = round(time.perf_counter() - t0, 1)
            record("base", row)
            del setup
            gc.collect()
        for stage in STAGE_HELP:
            if stage not in wanted:
                continue
            t0 = time.perf_counter()
            trainer = _trainer(stage, cfgs[stage], recipe, typer.echo)
            result = trainer.train(resume=resume)
            row = {"result": result, "seconds": round(time.perf_counter() - t0, 1)}
            if evaluate:
                row["eval"] = run_eval(trainer.setup, settings, out / "eval", f"{stage}-final", settings.shots,
                                       typer.echo)
            record(stage, row)
            del trainer
            gc.collect()
    typer.echo(_summary_md(summary))
    typer.echo(f"wrote {summary_path} and {out / 'summary.md'}")


def export_command(
    checkpoint: Path = typer.Argument(..., help="A training checkpoint directory (e.g. runs/x/rl/final)."),
    out: Path = typer.Option(..., "--out", help="Directory for the full model (safetensors + tokenizer)."),
) -> None:
    """Write a checkpoint (and the ones it started from) onto its base model as a full model
    directory, for `tracelang eval --model DIR` or any transformers code."""
    from .checkpoint import export

    refuse_overwriting({"<checkpoint>": checkpoint}, {"out": out})
    with _missing_files():
        path = export(checkpoint, out)
    typer.echo(f"wrote {path}")


def summary_command(
    stage_dirs: list[Path] = typer.Argument(..., help="A stage directory (e.g. runs/embedded/sft) with metrics.jsonl; "
                                            "several, each continuing the one before, for one curve (--out)."),
    out: Path | None = typer.Option(None, "--out", help="With several stage directories: the PNG to write."),
    hours: bool = typer.Option(False, "--hours", help="With --out: against hours of step time (the CPU budget), "
                               "not optimiser steps."),
) -> None:
    """Redraw a stage's learning curve (PNG) and summary.md from its metrics log, finished or not;
    or, given the stages of a continued run in order, one curve over all their steps."""
    from .summary import chain_curve, write_summary

    for stage_dir in stage_dirs:
        if not (stage_dir / "metrics.jsonl").is_file():
            raise UsageError(f"{stage_dir}: no metrics.jsonl")
    if len(stage_dirs) == 1 and out is None:
        typer.echo(f"wrote {write_summary(stage_dirs[0])}")
        return
    if out is None:
        raise UsageError("several stage directories draw one curve: name the PNG with --out")
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out {out}: a .png file")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: no directory {out.parent}")
    refuse_overwriting({"<stage_dirs>": [d / "metrics.jsonl" for d in stage_dirs]}, {"out": out})
    path = chain_curve(stage_dirs, out, hours)
    if path is None:
        raise UsageError("nothing to draw (no logged loss), or matplotlib is missing: pip install 'tracelang[charts]'")
    typer.echo(f"wrote {path}")


def ship_command(
    checkpoint: Path = typer.Argument(..., help="A LoRA training checkpoint (e.g. runs/embedded/sft/final)."),
    out: Path = typer.Option(None, "--out", help="Directory to write (default: weights/shipped, which `shipped` "
                             "loads)."),
) -> None:
    """Copy a checkpoint's adapter into the repository as the shipped model: peft's two files and a
    training.json with their sha256, the recipe, the code revision and the data's hashes."""
    from ..models.loading import shipped_dir
    from .checkpoint import ship

    refuse_overwriting({"<checkpoint>": checkpoint}, {"out": out})
    with _missing_files():
        path = ship(checkpoint, out or shipped_dir())
    typer.echo(f"wrote {path}")


def filter_command(
    out: Path = typer.Option(..., "--out", help="Output corpus (JSONL, written atomically)."),
    model: str = typer.Option("embedded", help="`embedded`, `tiny`, a directory or a hub id."),
    checkpoint: Path | None = typer.Option(None, help="A training checkpoint to sample from instead of --model."),
    data: list[Path] = typer.Option([], "--data", help="Corpora whose questions and answers to use (repeatable)."),
    gsm8k_train: str | None = typer.Option(None, "--gsm8k-train", help="GSM-8K train.jsonl (dev excluded)."),
    n: int | None = typer.Option(None, "--n", min=1, help="A seeded sample of N questions."),
    k: int = typer.Option(4, "--k", min=1, help="Samples per question."),
    temperature: float = typer.Option(0.8, min=0.0, help="Sampling temperature."),
    max_new_tokens: int = typer.Option(320, min=1, help="Longest trace, in tokens."),
    levels: str = typer.Option("all", help=LEVELS_HELP),
    shots: int = typer.Option(0, min=0, help="Worked examples in the prompt."),
    seed: int = typer.Option(0, min=0, help="Seed of the question sample and of the sampling."),
    allow_warnings: bool = typer.Option(False, help="Keep correct traces that have warnings (e.g. W701)."),
    dtype: str = typer.Option("auto", help=DTYPE_HELP),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    revision: str | None = typer.Option(None, help=REVISION_HELP),
    attn_implementation: str | None = typer.Option(None, help=ATTN_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Rejection sampling: k constrained traces per question from a model; keep those the runtime
    verifies against the gold answer (clean check, exact run); write them as a corpus."""
    from tqdm import tqdm

    from ..decoding.levels import Levels
    from ..models import load_model
    from ..models.loading import load_trained
    from ..record import write_records
    from .config import RLConfig, checked
    from .data import DataTally
    from .filter import choose, rejection_sample, sampler_for
    from .rl import load_prompts
    from .setup import prompter_for

    if not data and not gsm8k_train:
        raise UsageError("give questions with --data and/or --gsm8k-train")
    refuse_overwriting({"data": data, "gsm8k_train": gsm8k_train, "checkpoint": checkpoint}, {"out": out})
    with _missing_files():
        try:
            lv = Levels.parse(levels)
        except ValueError as err:
            raise UsageError(f"--levels: {err}") from None
        where = {"device": resolve_device(device), "dtype": dtype, "revision": revision,
                 "attn_implementation": attn_implementation}
        loaded = load_trained(checkpoint, seed=seed, **where) if checkpoint else load_model(model, seed=seed, **where)
        cfg = checked(RLConfig, {"model": model, "seed": seed, "shots": shots, "data": [str(p) for p in data],
                                 "gsm8k_train": gsm8k_train}, "corpus filter: ")
        prompter = prompter_for(cfg, loaded.tokenizer)
        tally = DataTally()
        pools, _ = load_prompts(cfg, loaded.tokenizer, prompter, tally)
        items = choose([x for pool in pools for x in pool], n, seed)
        sampler = sampler_for(loaded.model, loaded.tokenizer, lv)
        bar = tqdm(total=len(items), desc="filter", unit="question", disable=quiet)
        name = str(checkpoint) if checkpoint else model
        records, stats = rejection_sample(sampler, items, k, temperature, max_new_tokens, seed, name,
                                          allow_warnings, bar.update)
        bar.close()
        write_records(out, records)
    typer.echo(json.dumps(stats.to_json()))
    typer.echo(f"wrote {len(records)} records to {out}")
