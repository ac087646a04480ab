"""Dev-split evaluation of a model in training, through the evaluation harness.

The model is evaluated as it is in memory (with the trained head rows installed for the call),
unconstrained (``FreeBackend``) and constrained (the evaluation package's ``ConstrainedBackend``,
which runs the decoder's own generation loop). Each evaluation gets its own directory, named by
stage and step, so an interrupted run resumes its evaluations like everything else; the directory
records the model's identity (``model_identity``), so a model retrained into the same run directory
is evaluated afresh instead of being credited with the old one's predictions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..evaluation.backends import FreeBackend
from ..evaluation.runner import EvalConfig, run
from ..models import LoadedModel, Prompter
from ..models.prompt import load_shots
from ..paths import SHOTS
from .config import ConfigError, EvalSettings
from .setup import Setup


def _shots_source(settings: EvalSettings, shots: int) -> Path:
    source = Path(settings.shots_from) if settings.shots_from else SHOTS
    if shots and not source.is_file():
        raise ConfigError(f"eval.shots_from: no corpus at {source}")
    return source


def model_identity(setup: Setup) -> dict[str, Any]:
    """The base model, the checkpoints applied to it, and a hash of the trained tensors as they are
    in memory (a step's model need not have been saved)."""
    digest = hashlib.sha256()
    for name, p in sorted(setup.pm.trained_parameters().items()):
        t = p.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{t.dtype}:{tuple(p.shape)};".encode())
        digest.update(t.view(torch.uint8).numpy())
    return {**setup.origin, "trained_sha256": digest.hexdigest()}


def weights_dtype(setup: Setup) -> str:
    """The frozen weights' dtype (``float32`` or ``bfloat16``), as ``tracelang eval`` records it."""
    return str(setup.pm.head_weight.dtype).removeprefix("torch.")


def _forget_unrecorded_dtype(out: Path, config: EvalConfig, echo: Callable[[str], None]) -> None:
    """A directory that says float32 while the weights are not, with every other setting the same,
    was written by code that recorded float32 whatever the weights were: its predictions are of
    unknown precision, so they are dropped and the evaluation is redone (the harness would refuse
    the directory as a run with other settings)."""
    path = out / "config.json"
    if config.dtype == "float32" or not path.is_file():
        return
    try:
        held = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # the harness decides what an unreadable config.json means
    if not isinstance(held, dict) or held.get("dtype") != "float32":
        return
    held = {**asdict(EvalConfig()), **held}  # as the harness reads it: older directories lack newer fields
    held.pop("model_identity", None)
    if {**held, "dtype": config.dtype} == asdict(config):
        for name in ("config.json", "predictions.jsonl", "metrics.json", "results.json", "report.md"):
            (out / name).unlink(missing_ok=True)
        echo(f"{out}: recorded as float32, but the weights are {config.dtype}; evaluating afresh")


def evaluate(setup: Setup, settings: EvalSettings, out_dir: Path, label: str, shots: int,
             echo: Callable[[str], None] = print, instructions: bool | None = None) -> dict[str, Any]:
    """Accuracy and valid-trace rate on the dev sample, per decoding mode. The prompt is the one
    the model trains with, unless ``instructions`` says otherwise (the untrained base gets them)."""
    identity = model_identity(setup)
    tok = setup.loaded.tokenizer
    prompter = Prompter(tok, load_shots(_shots_source(settings, shots), shots, settings.seed) if shots else [],
                        instructions=setup.prompter.instructions if instructions is None else instructions,
                        surface=setup.prompter.surface)
    dtype = weights_dtype(setup)
    results: dict[str, Any] = {}
    modes = [m for m, on in (("free", settings.free), ("constrained", settings.constrained)) if on]
    with setup.pm.serving() as model:
        loaded = LoadedModel(label, model, tok)
        for mode in modes:
            if mode == "free":
                backend = FreeBackend(loaded, prompter, settings.max_new_tokens)
            else:
                from ..evaluation.constrained import ConstrainedBackend

                backend = ConstrainedBackend(loaded, prompter, settings.max_new_tokens, seed=settings.seed)
            config = settings.run_config(label=label, constrain=mode == "constrained", shots=shots,
                                         prompt_version=prompter.version, dtype=dtype)
            out = Path(out_dir) / f"{label.replace('/', '_')}-{mode}"
            _forget_unrecorded_dtype(out, config, echo)
            metrics = run(config, out, backend, prompter.prompt, identity=identity, echo=echo)
            n = metrics["n"] or 1
            results[f"{mode}_accuracy"] = metrics["accuracy"]
            results[f"{mode}_valid"] = metrics["valid"] / n
            results[f"{mode}_n"] = metrics["n"]
    return results


def hook(settings: EvalSettings, out_dir: Path, stage: str, shots: int, echo: Callable[[str], None] = print):
    """An ``evaluate(setup, step)`` callback for the trainers."""
    _shots_source(settings, shots)  # a missing shots corpus is an error now, not after training

    def call(setup: Setup, step: int) -> dict[str, Any]:
        return evaluate(setup, settings, out_dir, f"{stage}-step-{step}", shots, echo)

    return call
