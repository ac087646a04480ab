"""What the SFT and RL trainers share: the accelerator and seed, the trainable set-up, checkpoints
(only what changed, with the metadata every checkpoint carries) and exact resume, the metrics
log, evaluation during training, and the end of a run."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..models.trained import CheckpointError, chain, read_meta
from . import checkpoint as ckpt
from .config import Recipe, to_dict
from .runlog import RunLog
from .setup import Setup, build, load_trained_into, trained_tensors
from .stages import STAGES
from .summary import write_summary

TRAINERS: dict[str, type[Stage]] = {}  # stage name -> trainer, filled as the trainers' modules load
Evaluate = Callable[[Setup, int], dict[str, Any]]  # (setup, step) -> metrics to log


class Stage:
    """A trainer. A subclass registers itself under its ``name``, which must be a stage of
    ``stages.STAGES``; the command line finds it in ``TRAINERS``."""

    name = ""  # the run directory under output_dir, and `stage` in every checkpoint
    prepares = False  # the recipe's `prepare` steps run first (they make the corpora it trains on)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name not in STAGES:
            raise TypeError(f"{cls.__name__}.name {cls.name!r} is not a stage ({', '.join(STAGES)})")
        if cls.name in TRAINERS and TRAINERS[cls.name] is not cls:
            raise TypeError(f"stage {cls.name!r} already has a trainer, {TRAINERS[cls.name].__name__}")
        TRAINERS[cls.name] = cls

    def __init__(self, cfg: Any, recipe: Recipe | None, run_dir: Path | None,
                 init_checkpoint: Path | None, echo: Callable[[str], None], evaluate: Evaluate | None):
        from accelerate import Accelerator

        self.cfg, self.recipe = cfg, recipe
        self.run_dir = Path(run_dir) if run_dir else Path(cfg.output_dir) / self.name
        self.init_checkpoint = init_checkpoint
        from accelerate.utils import ProjectConfiguration

        # None leaves it to `accelerate launch` / `accelerate config` (the environment)
        self.accelerator = Accelerator(mixed_precision=mixed_precision(cfg.mixed_precision),
                                       log_with=cfg.report_to or None,
                                       project_config=ProjectConfiguration(self.run_dir, self.run_dir / "trackers"))
        self.main = self.accelerator.is_main_process
        self.echo = echo if self.main else (lambda _s: None)
        self.evaluate = evaluate
        self.total_steps = 0
        self.totals: dict[str, int] = {}  # whole-run counts, kept in state.pt so a resume carries them on
        self.revision = ckpt.code_revision()  # at the start: the code that trains, not the one that ships

    def build(self) -> None:
        """Seed everything, then load the model with its trainable part (and say what trains)."""
        from accelerate.utils import set_seed

        set_seed(self.cfg.seed)
        self.setup = build(self.cfg, self.init_checkpoint, self.accelerator.device)
        for line in self.setup.pm.describe():
            self.echo(line)

    # ---------------------------------------------------------------- checkpoints

    def meta(self, step: int) -> dict[str, Any]:
        base = self.cfg.model if self.init_checkpoint is None else \
            read_meta(chain(self.init_checkpoint)[0])["base_model"]
        # A continued adapter is part of this checkpoint's adapter: the chain to apply at load time
        # is only what was merged into the base weights.
        start = self.setup.merged_into_base
        return {"stage": self.name, "base_model": base, "step": step, "total_steps": self.total_steps,
                "init_checkpoint": str(start) if start else None,
                "continued_from": str(self.setup.continued_from) if self.setup.continued_from else None,
                "prompt_version": self.setup.prompter.version, "config": to_dict(self.cfg),
                "code_revision": self.revision,
                "recipe": self.recipe.raw if self.recipe else {},
                "recipe_path": self.recipe.path if self.recipe else None, "head_mode": self.cfg.train_lm_head,
                "unfreeze_layers": self.cfg.unfreeze_layers, "parameters": self.setup.pm.describe()}

    def save(self, step: int, final: bool = False) -> None:
        acc = self.accelerator
        acc.wait_for_everyone()
        tensors = trained_tensors(acc.unwrap_model(self.model), acc, self.model)
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "rng": ckpt.rng_state(), "step": step, "totals": dict(self.totals)}
        path = self.run_dir / ("final" if final else f"checkpoints/step-{step}")
        ckpt.save(path, tensors, self.meta(step) if self.main else {}, state, acc, adapter=self.setup.adapter)
        if not final and self.main:
            ckpt.prune(self.run_dir, self.cfg.save_total_limit)

    def resume_from(self, path: Path) -> int:
        return self.apply(*ckpt.read_resumable(path, self.accelerator.process_index))

    def apply(self, tensors: dict[str, Any], state: dict[str, Any]) -> int:
        load_trained_into(self.setup.pm, tensors)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        ckpt.set_rng_state(state["rng"])
        self.totals = {k: int(v) for k, v in state.get("totals", {}).items()}
        return int(state["step"])

    # ---------------------------------------------------------------- a run

    def start(self, resume: bool) -> tuple[int, RunLog]:
        """Prepare, continue from the latest checkpoint if asked, open the log (cut after the step
        resumed from) and hand the model and optimiser to the accelerator."""
        self.prepare()
        if not resume:
            self.clear_checkpoints()
        start = 0
        found = self.readable_checkpoint() if resume else None
        if found is not None:
            path, tensors, state = found
            start = self.apply(tensors, state)
            self.echo(f"resumed from {path} at step {start}")
        if self.cfg.report_to:
            from .trackers import hparams

            self.accelerator.init_trackers("tracelang", config=hparams({"stage": self.name, **to_dict(self.cfg)}))
        log = RunLog(self.run_dir, self.echo, enabled=self.main,
                     accelerator=self.accelerator if self.cfg.report_to else None)
        log.truncate_after(start)
        self.model, self.optimizer = self.accelerator.prepare(self.setup.pm, self.optimizer)
        return start, log

    def readable_checkpoint(self) -> tuple[Path, dict[str, Any], dict[str, Any]] | None:
        """The latest checkpoint that reads whole; a damaged one (a truncated trained.safetensors, a
        garbage state.pt) is skipped, saying so, for the one before it. None when there is none; an
        error when there are checkpoints and every one is damaged (resuming from step 0 would
        silently throw their steps away)."""
        candidates = ckpt.resumable(self.run_dir)
        for path in candidates:
            try:
                return (path, *ckpt.read_resumable(path, self.accelerator.process_index))
            except CheckpointError as err:
                self.echo(f"cannot resume from {path}: {err}; falling back to the checkpoint before it")
        if candidates:
            raise CheckpointError(f"{self.run_dir}: no checkpoint reads whole; start afresh with --no-resume")
        return None

    def clear_checkpoints(self) -> None:
        """A fresh start removes the stage's earlier checkpoints: kept, pruning (lowest steps first)
        would delete the new ones, and a later resume would pick up the old run's."""
        old = [d for d in (self.run_dir / "checkpoints", self.run_dir / "final") if d.exists()]
        if self.main and old:
            for d in old:
                shutil.rmtree(d)
            self.echo(f"not resuming: removed the earlier {' and '.join(d.name + '/' for d in old)} in {self.run_dir}")
        self.accelerator.wait_for_everyone()

    def after_step(self, done: int, log: RunLog, row: dict[str, Any]) -> None:
        cfg = self.cfg
        if done % cfg.logging_steps == 0 or done == self.total_steps:
            log.metrics(done, row)
        if cfg.save_steps and done % cfg.save_steps == 0 and done < self.total_steps:
            self.save(done)
        if self.evaluate and cfg.eval_steps and done % cfg.eval_steps == 0 and done < self.total_steps:
            self.eval(done, log)

    def finish(self, log: RunLog) -> None:
        self.save(self.total_steps)  # resumable at the end too (a longer run can continue from it)
        self.save(self.total_steps, final=True)
        if self.evaluate and (self.cfg.eval_at_end or self.cfg.eval_steps):
            self.eval(self.total_steps, log)
        log.close()
        if self.main:
            self.echo(f"wrote {write_summary(self.run_dir)}")

    def eval(self, step: int, log: RunLog) -> None:
        self.accelerator.wait_for_everyone()
        if self.main and self.evaluate is not None:
            metrics = self.evaluate(self.setup, step)
            log.metrics(step, metrics, kind="eval")
            self.echo(f"eval at step {step}: {metrics}")
            write_summary(self.run_dir)  # the learning curve so far
        self.accelerator.wait_for_everyone()

    def prepare(self) -> None:
        raise NotImplementedError


def mixed_precision(asked: str | None) -> str | None:
    """``auto``: bf16 autocast where the hardware multiplies bfloat16 natively (a GPU with bf16, a
    CPU with AVX512-BF16 or AMX), else none: elsewhere torch runs bf16 matmuls through a reference
    kernel many times slower than float32 (measured: an SFT step of the embedded recipe took over
    an hour on a 2-core AVX2 EPYC). The others pass through."""
    if asked != "auto":
        return asked
    import torch

    from ..models.loading import resolve_dtype

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return "bf16" if resolve_dtype("auto", device) == "bfloat16" else "no"
