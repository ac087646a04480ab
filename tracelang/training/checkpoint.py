"""Checkpoints: only what trained, as safetensors, plus what it takes to use or resume it.

A checkpoint directory holds

- ``trained.safetensors``: the trained parameters by name (the unfrozen layers, the final norm,
  the head rows with ``head_rows_ids`` naming their tokens) — never pickle for weights;
- ``adapter_config.json`` + ``adapter_model.safetensors`` when LoRA adapters train: peft's own
  format (``PeftModel.from_pretrained`` loads the directory). A directory with these and
  ``training.json`` but no ``trained.safetensors`` (a shipped adapter) is a checkpoint too, for
  inference and as the start of a new run;
- ``training.json``: base model, the checkpoint it started from (``init_checkpoint``), the stage's config,
  the recipe, the prompt version, the step;
- ``state.pt`` (resumable checkpoints): optimizer, scheduler and RNG state, the position in the
  data and whole-run totals, as plain tensors and primitives (``torch.load(weights_only=True)`` reads it).

Reading one, and applying it to a model, is models/' part (models/trained.py); this module writes
them and holds what only training needs (state, resume, export, ship).

Directories are written beside their final name and renamed into place: an interrupted save
never leaves a half checkpoint that a resume would trust.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ..models import adapters
from ..models.loading import load_trained
from ..models.trained import FORMAT, CheckpointError, read_meta, read_tensors


def state_name(rank: int) -> str:
    """Each process keeps its own optimizer state (sharded under FSDP); process 0's is state.pt."""
    return "state.pt" if rank == 0 else f"state-rank{rank}.pt"


def save(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any], state: dict[str, Any] | None,
         accelerator=None, adapter: Any = None) -> Path:
    """Write a checkpoint directory; with an ``accelerator``, every process calls this (the main
    one writes the weights, each its own state) and it returns when the directory is in place."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    main = accelerator is None or accelerator.is_main_process
    rank = accelerator.process_index if accelerator is not None else 0
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / "trained.safetensors"),
                  metadata={"format": FORMAT})
        if adapter is not None:
            adapters.save(adapter, tmp)
        (tmp / "training.json").write_text(json.dumps({"format": FORMAT, **meta}, indent=2, default=str) + "\n")
    if accelerator is not None:
        accelerator.wait_for_everyone()
    if state is not None:
        torch.save(state, tmp / state_name(rank))
    if accelerator is not None:
        accelerator.wait_for_everyone()
    if main:
        old = path.with_name(path.name + ".old")
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return path


def weight_files(path: Path) -> list[Path]:
    """The files that hold a checkpoint's weights: the trained tensors and/or the adapter."""
    files = [Path(path) / name for name in ("trained.safetensors", adapters.WEIGHTS)]
    return [f for f in files if f.is_file()]


def fingerprint(path: Path) -> str:
    """sha256 of a checkpoint's weights: what it holds, not where it lies or when it was saved. For
    a checkpoint with one weight file (every shipped adapter) it is that file's own sha256."""
    files = weight_files(path)
    if not files:
        raise CheckpointError(f"{path}: no trained.safetensors or {adapters.WEIGHTS}")
    return _sha256(*files)


def _sha256(*files: Path) -> str:
    """One sha256 over the files' bytes in order, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    for file in files:
        with Path(file).open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


STATE_KEYS = ("optimizer", "scheduler", "rng", "step")


def read_state(path: Path, rank: int = 0) -> dict[str, Any] | None:
    """A checkpoint's training state (None when it has none); a damaged one is a CheckpointError."""
    file = Path(path) / state_name(rank)
    if not file.is_file():
        return None
    try:
        state = torch.load(file, weights_only=True)
    except Exception as err:  # torch.load fails in many ways on garbage (UnpicklingError, RuntimeError, EOFError, ...)
        raise CheckpointError(f"{file}: not a readable training state ({type(err).__name__})") from None
    if not isinstance(state, dict) or any(k not in state for k in STATE_KEYS):
        raise CheckpointError(f"{file}: not a training state (it needs {', '.join(STATE_KEYS)})")
    return state


def read_resumable(path: Path, rank: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Everything a resume reads, read and checked before anything is changed: a damaged checkpoint
    is a CheckpointError and leaves the model as it was, so a resume can fall back to another."""
    tensors = read_tensors(path)
    state = read_state(path, rank)
    if state is None:
        raise CheckpointError(f"{path}: no {state_name(rank)}; not a resumable checkpoint")
    return tensors, state


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resumable(run_dir: Path) -> list[Path]:
    """The checkpoints under ``run_dir/checkpoints`` that have a state, highest step first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [d for d in root.iterdir() if d.name.startswith("step-") and d.name[5:].isascii()
             and d.name[5:].isdigit() and (d / "state.pt").is_file()]
    return sorted(found, key=lambda d: int(d.name[5:]), reverse=True)


def latest(run_dir: Path) -> Path | None:
    """The resumable checkpoint with the highest step under ``run_dir/checkpoints``."""
    found = resumable(run_dir)
    return found[0] if found else None


def prune(run_dir: Path, keep: int) -> None:
    root = Path(run_dir) / "checkpoints"
    steps = sorted((int(d.name[5:]), d) for d in root.iterdir() if d.name.startswith("step-") and d.name[5:].isdigit())
    for _, d in steps[:-keep] if keep > 0 else []:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- using a checkpoint


def export(path: str | Path, out: str | Path) -> Path:
    """A full Hugging Face model directory (safetensors) that ``--model DIR`` loads anywhere, with a
    model card and the trained prompt as the tokenizer's chat template."""
    from .model_card import chat_template, model_card, trained_prompter

    loaded = load_trained(path)
    out = Path(out)
    tmp = out.with_name(out.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    meta = read_meta(Path(path))
    prompter = trained_prompter(loaded.tokenizer, meta)
    card = model_card(meta, prompter, Path(path))
    # plain transformers, vLLM and lm-eval then prompt the model as it was trained; on a copy, since
    # a loaded tokenizer may be shared (cached) by everything else in this process
    tokenizer = copy.deepcopy(loaded.tokenizer)
    tokenizer.chat_template = chat_template(prompter)
    loaded.model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "README.md").write_text(card, encoding="utf-8")
    (tmp / "tracelang_training.json").write_text(json.dumps({"checkpoint": str(path), "prompt_version":
                                                             meta.get("prompt_version")}, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def code_revision() -> str | None:
    """The git commit of this checkout (None outside one)."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def ship(path: str | Path, out: str | Path) -> Path:
    """An adapter-only copy of a LoRA checkpoint, with what it takes to check and reproduce it:
    ``adapter_config.json``, ``adapter_model.safetensors`` and ``training.json`` (base model,
    prompt, step, recipe and config, the adapter's sha256, the code revision, each data file's
    sha256 and size). Written beside ``out`` and renamed into place."""
    path, out = Path(path), Path(out)
    meta = read_meta(path)
    if not adapters.is_adapter(path):
        raise CheckpointError(f"{path}: not a LoRA checkpoint (no {adapters.CONFIG} / {adapters.WEIGHTS})")
    if meta.get("init_checkpoint"):
        raise CheckpointError(f"{path}: starts from {meta['init_checkpoint']} merged into its base; ship a "
                              "self-contained adapter (trained from the base, or continued from an adapter)")
    tmp = out.with_name(out.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in (adapters.CONFIG, adapters.WEIGHTS):
        shutil.copyfile(path / name, tmp / name)
    data = []
    for source in (meta.get("config") or {}).get("data") or []:
        file = Path(source["path"])
        data.append({**source, "sha256": _sha256(file) if file.is_file() else None,
                     "bytes": file.stat().st_size if file.is_file() else None})
    shipped = {"format": FORMAT, "base_model": meta["base_model"], "prompt_version": meta.get("prompt_version"),
               "adapter_sha256": _sha256(tmp / adapters.WEIGHTS), "from_checkpoint": str(path),
               "step": meta.get("step"), "total_steps": meta.get("total_steps"), "stage": meta.get("stage"),
               "continued_from": meta.get("continued_from"),
               "code_revision": meta.get("code_revision") or code_revision(), "data": data,
               "recipe_path": meta.get("recipe_path"), "recipe": meta.get("recipe"), "config": meta.get("config"),
               "init_checkpoint": None}
    (tmp / "training.json").write_text(json.dumps(shipped, indent=2, default=str) + "\n")
    if (out / "README.md").is_file():  # the model card is written by hand; keep it
        shutil.copyfile(out / "README.md", tmp / "README.md")
    old = out.with_name(out.name + ".old")
    if out.exists():
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out
