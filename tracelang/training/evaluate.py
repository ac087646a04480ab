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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..evaluation.backends import FreeBackend
from ..evaluation.runner import EvalConfig, run
from ..models import LoadedModel, Prompter
from ..models.prompt import load_shots
from .config import ConfigError, EvalSettings
from .setup import SHOTS, Setup


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


def evaluate(setup: Setup, settings: EvalSettings, out_dir: Path, label: str, shots: int,
             echo: Callable[[str], None] = print, instructions: bool | None = None) -> dict[str, Any]:
    """Accuracy and valid-trace rate on the dev sample, per decoding mode. The prompt is the one
    the model trains with, unless ``instructions`` says otherwise (the untrained base gets them)."""
    identity = model_identity(setup)
    tok = setup.loaded.tokenizer
    prompter = Prompter(tok, load_shots(_shots_source(settings, shots), shots, settings.seed) if shots else [],
                        instructions=setup.prompter.instructions if instructions is None else instructions)
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
            config = EvalConfig(label, "dev", settings.n, settings.seed, mode == "constrained", settings.batch_size,
                                shots, settings.shots_from if shots else None, settings.max_new_tokens, settings.data,
                                prompter.version)
            metrics = run(config, Path(out_dir) / f"{label.replace('/', '_')}-{mode}", backend, prompter.prompt,
                          identity=identity, echo=echo)
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
