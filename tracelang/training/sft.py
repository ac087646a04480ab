"""Supervised fine-tuning with partial unfreezing, on ``accelerate``.

One optimiser step takes ``per_device_train_batch_size x gradient_accumulation_steps x processes``
examples from the epoch's order (data.epoch_order: a pure function of the seed and the epoch).
Every process knows the whole step's examples, so the loss is normalised by the step's total
number of target tokens without communication, and a resumed run picks up the very same batches.

The frozen prefix's output is cached per example (computed alone, unpadded, so the value does not
depend on which batch it first came in: a resumed run computes bit-identical states).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..closure import source_digest
from ..decoding.constraint import Constraint, compile_tokenizer, make_config
from ..decoding.levels import Levels
from .batching import make_batch
from .config import DataSource, Recipe, SFTConfig
from .data import DataTally, Example, TrainingDataError, epoch_order, load_examples
from .masks import REFUSED, MaskStore, MaskTable, Recorder, teacher_masks
from .prefix_store import PrefixStore, frozen_digest
from .setup import Setup, optimizer_for, scheduler_for
from .stage import Evaluate, Stage


class MaskBuilder:
    """The decoder's masks along each target (teacher forcing), built when a step first needs
    them (on a worker thread, a step ahead of the one training) and kept on disk (MaskStore).

    A trace the full constraint refuses (an input the question does not state, say) gets the
    masks of the levels without grounding, then of the bare grammar; one refused even so is
    left out of every step it is drawn in."""

    def __init__(self, tokenizer: Any, subset: np.ndarray, table: MaskTable, levels: str, tally: DataTally,
                 cache: bool, surface: str = "yaml"):
        """``subset``: the grammar subset's token ids, sorted (emittable.py)."""
        from ..decoding.vocab import fingerprint
        from ..grammar import grammar_hash
        from ..paths import cache_dir

        tok = tokenizer
        self.compiled = compile_tokenizer(tok, surface=surface)
        index = np.full(max(len(tok), int(subset.max()) + 1), -1, dtype=np.int64)
        index[subset] = np.arange(len(subset))
        self.recorder = Recorder(index, table, len(tok))
        full = Levels.parse(levels)
        self.tries = [full]
        for lv in (full.without("grounding"), Levels.none()):
            if lv not in self.tries:
                self.tries.append(lv)
        self.tally = tally
        digest = hashlib.sha256(np.ascontiguousarray(subset, dtype=np.int64).tobytes()).hexdigest()[:16]
        # the code the masks depend on is every module the constraint imports (decoder, guide, scope,
        # experts, IR, numbers ...), computed from its imports, and the grammar
        code = source_digest(Constraint.__module__)
        namespace = f"{fingerprint(tok)}:{grammar_hash()}:{code}:{self.tries}:{digest}"
        if surface != "yaml":  # (the YAML's masks keep the namespace they had)
            namespace += f":{surface}"
        self.store = MaskStore(cache_dir() / "masks", namespace, table) if cache else None
        self._lock = threading.Lock()

    def ensure(self, examples: list[Example]) -> None:
        with self._lock:
            for ex in examples:
                if ex.masks is None and not ex.refused:
                    self._one(ex)

    def _one(self, ex: Example) -> None:
        hit = self.store.get(ex.question, ex.trace) if self.store is not None else None
        if hit is None:
            masks, tried = None, len(self.tries)
            for i, lv in enumerate(self.tries):
                con = Constraint(self.compiled, make_config(lv, question=ex.question))
                masks = teacher_masks(con, ex.target_ids, self.recorder)
                if masks is not None:
                    tried = i
                    break
            if self.store is not None:
                self.store.put(ex.question, ex.trace, masks, tried)
            self.tally.add("masks built")
        else:
            masks, tried = hit
            masks = None if masks == REFUSED else masks
            self.tally.add("masks from the cache")
        if masks is None:
            ex.refused = True
            self.tally.add("skipped (the decoder refuses the trace)")
        else:
            ex.masks = masks  # type: ignore[assignment]
            self.tally.add("masks: full levels" if tried == 0 else "masks: relaxed levels")


def _check_grammar_targets(setup: Setup, per_source: list[list[Example]], sources: list[DataSource]) -> None:
    """The `grammar` loss normalises over the grammar subset: refuse, before training, a target
    token outside it (found mid-run it would be a traceback)."""
    for si, examples in enumerate(per_source):
        for ex in examples:
            outside = [t for t in ex.target_ids if setup.subset_index[t] < 0]
            if outside:
                raise TrainingDataError(f"{sources[si].path}: record {ex.id}: target token {outside[0]} is outside "
                                        "the grammar's tokens; use loss_vocab: full")


class SFTTrainer(Stage):
    name = "sft"
    prepares = True  # the recipe's prepare steps make SFT corpora (possibly slowly)

    def __init__(self, cfg: SFTConfig, recipe: Recipe | None = None, *, run_dir: Path | None = None,
                 echo: Callable[[str], None] = print, evaluate: Evaluate | None = None,
                 init_checkpoint: Path | None = None):
        super().__init__(cfg, recipe, run_dir, init_checkpoint, echo, evaluate)
        self.prefix_cache: dict[tuple[int, int], torch.Tensor] = {}
        self.prefix_store: PrefixStore | None = None

    # ---------------------------------------------------------------- set-up

    def prepare(self) -> None:
        cfg = self.cfg
        self.build()
        tally = DataTally()
        per_source = load_examples(cfg.data, self.setup.loaded.tokenizer, self.setup.prompter, cfg.max_length, tally)
        self.masks = None
        if cfg.loss_vocab == "constrained":
            self.masks = MaskBuilder(self.setup.loaded.tokenizer, self.setup.pm.subset.cpu().numpy(), self.setup.table,
                                     cfg.constraint_levels, tally, cfg.mask_cache, cfg.surface)
        self.per_source = per_source
        self.tally = tally
        self.echo(f"data: {tally.line()}")
        if cfg.loss_vocab == "grammar":
            _check_grammar_targets(self.setup, per_source, cfg.data)
        sizes = [len(x) for x in per_source]
        self.weights = [s.weight for s in cfg.data]
        self.sizes = sizes
        world = self.accelerator.num_processes
        self.global_batch = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps * world
        epoch_len = len(epoch_order(sizes, self.weights, cfg.seed, 0))
        if not epoch_len:  # nothing survived the checks, or every source with examples has weight 0
            raise TrainingDataError("no usable training examples (see the counts above, and the data weights)")
        self.steps_per_epoch = max(1, math.ceil(epoch_len / self.global_batch))
        self.total_steps = cfg.max_steps if cfg.max_steps is not None else \
            max(1, math.ceil(cfg.num_train_epochs * self.steps_per_epoch))
        self.optimizer = optimizer_for(cfg, self.setup.pm)
        self.scheduler = scheduler_for(cfg, self.optimizer, self.total_steps)
        self.use_cache = cfg.cache_prefix and self.setup.pm.prefix_frozen
        if self.use_cache and cfg.prefix_store:
            from ..paths import cache_dir

            pm = self.setup.pm
            self.prefix_store = PrefixStore(cache_dir() / "prefix", frozen_digest(pm.base, pm.k))
        self.echo(f"schedule: {self.total_steps} steps ({self.steps_per_epoch} per epoch of {epoch_len} examples), "
                  f"{self.global_batch} examples per step; loss over {cfg.loss_vocab} vocabulary; "
                  f"prefix cache {'on' if self.use_cache else 'off'}")

    def _bar(self, total: int, desc: str):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, disable=not (self.cfg.progress and self.main), dynamic_ncols=True)

    # ---------------------------------------------------------------- the data of one step

    def _order(self, epoch: int) -> list[tuple[int, int]]:
        if getattr(self, "_order_epoch", None) != epoch:
            self._order_cache = epoch_order(self.sizes, self.weights, self.cfg.seed, epoch)
            self._order_epoch = epoch
        return self._order_cache

    def step_examples(self, step: int) -> list[tuple[tuple[int, int], Example]]:
        epoch, j = divmod(step, self.steps_per_epoch)
        order = self._order(epoch)[j * self.global_batch:(j + 1) * self.global_batch]
        return [(key, self.per_source[key[0]][key[1]]) for key in order]

    def micro_batches(self, chosen: list) -> list[list]:
        """This process's share of a step, sorted by length (less padding), in micro-batches."""
        acc = self.accelerator
        mine = chosen[acc.process_index::acc.num_processes]
        mine = sorted(mine, key=lambda kv: len(kv[1].input_ids))
        size = self.cfg.per_device_train_batch_size
        return [mine[i:i + size] for i in range(0, len(mine), size)]

    def _states(self, pairs: list) -> list[torch.Tensor] | None:
        if not self.use_cache:
            return None
        pm = self.accelerator.unwrap_model(self.model)
        out = []
        for key, ex in pairs:
            st = self.prefix_cache.get(key)
            if st is None and self.prefix_store is not None:
                st = self.prefix_store.get(ex.input_ids)
                if st is not None:
                    st = st.to(self.accelerator.device)
                    self.tally.add("prefix states from disk")
            if st is None:
                ids = torch.tensor([ex.input_ids], device=self.accelerator.device)
                st = pm.prefix(ids)[0]
                if self.prefix_store is not None:
                    self.prefix_store.put(ex.input_ids, st)
            self.prefix_cache[key] = st
            out.append(st)
        return out

    # ---------------------------------------------------------------- run

    def meta(self, step: int) -> dict[str, Any]:
        return {**super().meta(step), "data": dict(self.tally.counts)}

    def _ready(self, step: int) -> list[tuple[tuple[int, int], Example]]:
        """The step's examples with their masks, and the next step's masks started on the worker."""
        chosen = self.step_examples(step)
        if self.masks is None:
            return chosen
        pending = self._pending.pop(step, None)
        if pending is not None:
            pending.result()
        else:
            self.masks.ensure([ex for _, ex in chosen])
        if step + 1 < self.total_steps:
            self._pending[step + 1] = self._worker.submit(self.masks.ensure, [ex for _, ex in
                                                                               self.step_examples(step + 1)])
        return [(key, ex) for key, ex in chosen if not ex.refused]

    def train(self, resume: bool = True) -> dict[str, Any]:
        start, log = self.start(resume)
        params = [p for p in self.model.parameters() if p.requires_grad]
        bar = self._bar(self.total_steps, "sft")
        bar.update(start)
        last: dict[str, Any] = {}
        self._pending: dict[int, Future] = {}
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="masks")
        try:
            for step in range(start, self.total_steps):
                last = self._step(step, params)
                bar.update(1)
                bar.set_postfix(loss=f"{last['loss']:.4f}")
                self.after_step(step + 1, log, last)
        finally:
            self._worker.shutdown(wait=True, cancel_futures=True)
        bar.close()
        self.finish(log)
        return {"steps": self.total_steps, "final": str(self.run_dir / "final"), **last}

    def _step(self, step: int, params: list[torch.nn.Parameter]) -> dict[str, Any]:
        """One optimiser step: micro-batches, their gradients summed, clip, update."""
        cfg, acc = self.cfg, self.accelerator
        t0 = time.perf_counter()
        chosen = self._ready(step)
        n_tokens = max(1, sum(len(ex.target_ids) for _, ex in chosen))
        loss_sum = torch.zeros((), device=acc.device)
        micro = self.micro_batches(chosen)
        padded = 0
        for i, pairs in enumerate(micro):
            exs = [ex for _, ex in pairs]
            padded += len(exs) * max(len(ex.input_ids) for ex in exs)
            batch = make_batch(exs, self.setup.loaded.tokenizer.pad_token_id,
                               self.setup.table if cfg.loss_vocab == "constrained" else None,
                               self._states(pairs)).to(acc.device)
            sync = i == len(micro) - 1
            ctx = acc.no_sync(self.model) if not sync else nullcontext()
            with ctx, acc.autocast():
                logp = self.model(batch, cfg.loss_vocab)
                # a sum over the step's tokens; DDP averages gradients over processes, hence * world
                loss = -logp.sum() / n_tokens * acc.num_processes
                acc.backward(loss)
            loss_sum += -logp.detach().float().sum()
        if not micro and chosen:
            # This process has nothing in a short last step, but the others reduce gradients: a
            # zero-weighted forward and backward on the step's first example joins them. (A backward
            # without a forward through the wrapped model never reaches DDP's reducer: the other
            # processes then wait in their all-reduce for ever.)
            pairs = chosen[:1]
            batch = make_batch([ex for _, ex in pairs], self.setup.loaded.tokenizer.pad_token_id,
                               self.setup.table if cfg.loss_vocab == "constrained" else None,
                               self._states(pairs)).to(acc.device)
            with acc.autocast():
                acc.backward(self.model(batch, cfg.loss_vocab).sum() * 0.0)
        grad_norm = acc.clip_grad_norm_(params, cfg.max_grad_norm) if cfg.max_grad_norm > 0 else None
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        total = acc.reduce(loss_sum, reduction="sum")
        seconds = time.perf_counter() - t0
        n_input = sum(len(ex.input_ids) for _, ex in chosen)
        return {"loss": float(total) / n_tokens, "lr": self.scheduler.get_last_lr()[0],
                "grad_norm": float(grad_norm) if grad_norm is not None else None,
                "epoch": round((step + 1) / self.steps_per_epoch, 4), "target_tokens": n_tokens,
                "tokens": n_input, "pad_share": round(1 - n_input / padded, 4) if padded else 0.0,
                "seconds": round(seconds, 3), "tokens_per_s": round(n_input / seconds, 1),
                "target_tokens_per_s": round(n_tokens / seconds, 1)}


def build_masks(cfg: SFTConfig, shard: int = 0, shards: int = 1, echo: Callable[[str], None] = print) -> DataTally:
    """Fill the mask cache for a recipe's SFT data (one shard of it), in the first epoch's order,
    without loading the model: run it beside or before training, one process per free core."""
    from ..models.loading import load_tokenizer
    from .emittable import emittable_ids
    from .setup import prompter_for

    tok = load_tokenizer(cfg.model)
    subset = np.asarray(sorted(emittable_ids(tok, cfg.surface)), dtype=np.int64)
    tally = DataTally()
    per_source = load_examples(cfg.data, tok, prompter_for(cfg, tok), cfg.max_length, tally)
    builder = MaskBuilder(tok, subset, MaskTable(len(subset)), cfg.constraint_levels, tally, True, cfg.surface)
    order = epoch_order([len(x) for x in per_source], [s.weight for s in cfg.data], cfg.seed, 0)
    seen: set[tuple[int, int]] = set()
    mine = [k for k in order if not (k in seen or seen.add(k))][shard::shards]
    from tqdm import tqdm

    for si, i in tqdm(mine, desc=f"masks {shard + 1}/{shards}", disable=not cfg.progress):
        builder.ensure([per_source[si][i]])
    echo(f"masks: {tally.line()}")
    return tally
