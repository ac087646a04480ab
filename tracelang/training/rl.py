"""GRPO with the verifier's reward, on constrained rollouts.

Each step: ``prompts_per_step`` questions (from corpora and GSM-8K train — never test, never dev),
``num_generations`` constrained samples each, graded by the checker and runtime (reward.py).
Advantages are normalised within each question's group; a group whose rewards are all equal
carries no signal and is skipped (and counted). The policy loss is PPO's clipped surrogate on the
log-probabilities of the sampled tokens *renormalised over the tokens the decoder allowed at that
step* — the distribution that was actually sampled from — so the update is on-policy.

``loss_type`` picks the variant:

- ``grpo``: advantages (r - mean) / std; each sequence's token losses averaged, then sequences;
- ``dr_grpo`` (Dr. GRPO): advantages r - mean (no std), token losses summed and divided by a
  constant (sequences x max_new_tokens), removing the length and difficulty biases;
- ``dapo`` (DAPO): std-normalised advantages, token-level averaging over the whole batch, and
  clip-higher (``epsilon_high``, 0.28 by default); zero-variance groups are skipped as always.

``beta > 0`` adds the k3 estimate of KL(policy || starting model); the starting model is the
trainable part as it was when RL began (the frozen part is shared), evaluated with
``torch.func.functional_call``.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.gsm8k import load, split_of_path
from ..data.splits import dev_ids, split_of
from ..decoding.levels import Levels
from ..numbers import render
from .batching import make_batch
from .config import Recipe, RLConfig
from .data import DataTally, TrainingDataError, epoch_order, read_source, tokenize
from .reward import RewardFn, RewardSpec, verifier_reward
from .sampling import Rollout, Sampler
from .setup import optimizer_for, scheduler_for
from .stage import Evaluate, Stage


@dataclass
class PromptItem:
    id: str
    question: str
    answer: str | None
    prompt_ids: list[int]


def load_prompts(cfg: RLConfig, tokenizer, prompter, tally: DataTally) -> tuple[list[list[PromptItem]], list[float]]:
    pools: list[list[PromptItem]] = []
    weights: list[float] = []
    for src in cfg.data:
        items = []
        for r in read_source(src.path, tally):
            if r.get("answer") is None:
                tally.add("prompts skipped (no answer)")
                continue
            items.append(PromptItem(r["id"], r["question"], r["answer"], tokenize(tokenizer, prompter, r["question"],
                                                                                  "")[0]))
        pools.append(items)
        weights.append(src.weight)
    if cfg.gsm8k_train:
        if split_of_path(cfg.gsm8k_train) == "test":
            raise TrainingDataError(f"{cfg.gsm8k_train}: GSM-8K test is for evaluation only")
        dev = dev_ids()
        items = []
        for p in load(cfg.gsm8k_train):
            if split_of(p.id) == "test" or p.split == "test":
                raise TrainingDataError(f"{cfg.gsm8k_train}: holds GSM-8K test problems ({p.id}); train only")
            if p.id in dev:
                tally.add("prompts skipped (dev split)")
                continue
            if p.gold is None:
                continue
            items.append(PromptItem(p.id, p.question, render(p.gold), tokenize(tokenizer, prompter, p.question, "")[0]))
        pools.append(items)
        weights.append(cfg.gsm8k_weight)
    tally.add("prompts", sum(len(p) for p in pools))
    return pools, weights


def advantages(rewards: Tensor, loss_type: str) -> Tensor:
    centred = rewards - rewards.mean()
    if loss_type == "dr_grpo":
        return centred
    return centred / (rewards.std() + 1e-4)


def token_losses(logp: Tensor, old: Tensor, adv_tok: Tensor, eps_low: float, eps_high: float,
                 ref: Tensor | None, beta: float) -> tuple[Tensor, Tensor, Tensor]:
    """Clipped-surrogate loss per token, the k3 KL per token, and whether clipping was active."""
    ratio = torch.exp(logp - old)
    clipped = torch.clamp(ratio, 1 - eps_low, 1 + eps_high)
    loss = -torch.min(ratio * adv_tok, clipped * adv_tok)
    kl = torch.zeros_like(logp)
    if ref is not None and beta > 0:
        d = ref - logp
        kl = torch.exp(d) - d - 1
        loss = loss + beta * kl
    was_clipped = (ratio * adv_tok > clipped * adv_tok).detach()
    return loss, kl.detach(), was_clipped


def grpo_loss(logp: Tensor, old: Tensor, ref: Tensor | None, adv: Tensor, lens: Tensor, cfg: RLConfig,
              n_seqs: float, n_tokens: float) -> tuple[Tensor, Tensor, Tensor]:
    """One group's share of the step's loss under ``cfg.loss_type``, with its per-token KL and where
    clipping was active. ``logp``, ``old``, ``ref``: the sampled tokens' log-probabilities (now, at
    sampling, under the reference), sequences concatenated; ``adv``: one advantage per sequence;
    ``lens``: the sequences' lengths; ``n_seqs``, ``n_tokens``: the whole step's kept counts."""
    seq = torch.repeat_interleave(torch.arange(len(lens), device=logp.device), lens)
    loss_tok, kl, clipped = token_losses(logp, old, adv.to(logp.device)[seq], cfg.epsilon, cfg.epsilon_high, ref,
                                         cfg.beta)
    if cfg.loss_type == "grpo":
        per_seq = torch.zeros(len(lens), device=logp.device).index_add(0, seq, loss_tok) / lens
        loss = per_seq.sum() / n_seqs
    elif cfg.loss_type == "dapo":
        loss = loss_tok.sum() / n_tokens
    else:
        loss = loss_tok.sum() / (n_seqs * cfg.max_new_tokens)
    return loss, kl, clipped


ROLLOUT_SUMS = ("rollouts", "reward", "correct", "valid", "finished", "completion_tokens")


def rollout_sums(groups: list[list[Rollout]]) -> list[float]:
    """This process's rollouts, summed (``ROLLOUT_SUMS``): summed over the processes, the step's."""
    rolls = [r for g in groups for r in g]
    kinds = Counter(r.info["kind"] for r in rolls)
    return [float(len(rolls)), sum(r.reward for r in rolls), float(kinds["correct"]),
            float(kinds["correct"] + kinds["valid"]), float(sum(r.finished for r in rolls)),
            float(sum(len(r.completion) for r in rolls))]


def rollout_metrics(sums: list[float]) -> dict[str, float]:
    """Rewards, outcomes and lengths per sample, from the step's ``rollout_sums``."""
    total = dict(zip(ROLLOUT_SUMS, sums, strict=True))
    n = max(1.0, total["rollouts"])
    return {"reward_mean": total["reward"] / n, "correct": total["correct"] / n, "valid": total["valid"] / n,
            "finished": total["finished"] / n, "completion_tokens": total["completion_tokens"] / n}


def rollout_seed(seed: int, step: int, index: int) -> int:
    """The sampling seed of the step's ``index``-th question: one generator per question, so that a
    question's rollouts are the same whichever process samples it (one process or several)."""
    return int(np.random.SeedSequence([seed, step, index]).generate_state(1, dtype=np.uint64)[0] >> 1)


class GRPOTrainer(Stage):
    name = "rl"

    def __init__(self, cfg: RLConfig, recipe: Recipe | None = None, *, run_dir: Path | None = None,
                 init_checkpoint: Path | None = None, echo: Callable[[str], None] = print,
                 reward_fn: RewardFn | None = None, evaluate: Evaluate | None = None,
                 prompts: tuple[list[list[PromptItem]], list[float]] | None = None):
        super().__init__(cfg, recipe, run_dir, init_checkpoint, echo, evaluate)
        self.reward_fn = reward_fn or verifier_reward(RewardSpec.of(cfg))
        self._prompts = prompts

    def prepare(self) -> None:
        cfg = self.cfg
        self.build()
        self.total_steps = cfg.max_steps
        self.tally = DataTally()
        if self._prompts is None:
            self._prompts = load_prompts(cfg, self.setup.loaded.tokenizer, self.setup.prompter, self.tally)
        self.pools, self.weights = self._prompts
        self.sizes = [len(p) for p in self.pools]
        if not sum(self.sizes):
            raise TrainingDataError("no prompts to train on")
        self.epoch_len = len(epoch_order(self.sizes, self.weights, cfg.seed, 0))
        if not self.epoch_len:
            raise TrainingDataError("no prompts to train on: every source with prompts has weight 0")
        self.echo(f"prompts: {self.tally.line() or sum(self.sizes)}")
        pm = self.setup.pm
        self.sampler = Sampler(pm, self.setup.loaded.tokenizer, self.setup.table, self.setup.subset_index,
                               Levels.parse(cfg.constraint_levels), capture_states=cfg.cache_prefix,
                               surface=self.setup.prompter.surface)
        self.reference = {n: p.detach().clone() for n, p in pm.trained_parameters().items()} if cfg.beta > 0 else None
        self.optimizer = optimizer_for(cfg, pm)
        self.updates = cfg.max_steps * cfg.num_iterations
        self.scheduler = scheduler_for(cfg, self.optimizer, self.updates)
        self.echo(f"GRPO ({cfg.loss_type}): {cfg.max_steps} steps x {cfg.prompts_per_step} prompts x "
                  f"{cfg.num_generations} samples, {cfg.num_iterations} update(s) per step, clip "
                  f"[{1 - cfg.epsilon:g}, {1 + cfg.epsilon_high:g}], KL beta {cfg.beta:g}; log-probabilities "
                  "renormalised over the decoder's mask at each sampled step")

    def step_prompts(self, step: int) -> list[PromptItem]:
        p = self.cfg.prompts_per_step
        out = []
        for idx in range(step * p, (step + 1) * p):
            epoch, pos = divmod(idx, self.epoch_len)
            si, i = epoch_order(self.sizes, self.weights, self.cfg.seed, epoch)[pos]
            out.append(self.pools[si][i])
        return out

    def sample(self, step: int) -> list[tuple[PromptItem, list[Rollout]]]:
        """This process's share of the step's prompts (every ``num_processes``-th), ``num_generations``
        constrained samples each, from the question's own generator (``rollout_seed``)."""
        cfg, acc = self.cfg, self.accelerator
        prompts = self.step_prompts(step)
        out = []
        with torch.no_grad():
            for index in range(acc.process_index, len(prompts), acc.num_processes):
                item = prompts[index]
                gen = torch.Generator().manual_seed(rollout_seed(cfg.seed, step, index))
                out.append((item, self.sampler.sample(item.prompt_ids, item.question, cfg.num_generations,
                                                      cfg.temperature, cfg.max_new_tokens, gen)))
        return out

    def reward(self, groups: list[tuple[PromptItem, list[Rollout]]]) -> None:
        for item, rolls in groups:
            for r in rolls:
                r.reward, r.info = self.reward_fn(r.text, item.answer, item.question)
                r.info["prompt"] = item.id

    def _logp(self, model, group: list[Rollout], grad: bool, params: dict | None = None) -> Tensor:
        cfg = self.cfg
        tok = self.setup.loaded.tokenizer
        states = [r.states for r in group] if all(r.states is not None for r in group) else None
        batch = make_batch(group, tok.pad_token_id, self.setup.table, states).to(self.accelerator.device)
        ctx = nullcontext() if grad else torch.no_grad()
        with ctx, self.accelerator.autocast():
            if params is not None:  # the starting model: its trained part swapped in for this call
                pm = self.accelerator.unwrap_model(model)
                return torch.func.functional_call(pm, params, (batch, "constrained", cfg.temperature), strict=False)
            return model(batch, "constrained", cfg.temperature)

    def train_step(self, step: int) -> dict[str, Any]:
        """Sample, reward, then ``num_iterations`` updates on the groups whose rewards differ."""
        t0 = time.perf_counter()
        sampled = self.sample(step)
        self.reward(sampled)
        groups = [rolls for _, rolls in sampled]
        sums = self.accelerator.reduce(torch.tensor(rollout_sums(groups), dtype=torch.float64,
                                                    device=self.accelerator.device), reduction="sum")
        row = rollout_metrics([float(x) for x in sums])
        kept = [g for g in groups if len({r.reward for r in g}) > 1]  # equal rewards: no advantage, no signal
        n_groups, n_seqs, n_tokens, skipped = self._counts(kept, len(groups))
        row.update({"groups_skipped_no_variance": int(skipped), "groups_used": int(n_groups),
                    "sampling_seconds": round(time.perf_counter() - t0, 2)})
        if n_groups == 0:
            self._skip_update()
        else:
            row.update(self._update(kept, n_seqs, n_tokens, groups))
        row.update({"lr": self.scheduler.get_last_lr()[0], "seconds": round(time.perf_counter() - t0, 2)})
        return row

    def _counts(self, kept: list[list[Rollout]], n_groups: int) -> tuple[float, float, float, float]:
        """Kept groups, their sequences and tokens, and skipped groups, summed over the processes:
        the loss is normalised by the whole step's counts."""
        acc = self.accelerator
        local = torch.tensor([len(kept), sum(len(g) for g in kept), sum(len(r.completion) for g in kept for r in g),
                              n_groups - len(kept)], dtype=torch.float64, device=acc.device)
        n_kept, n_seqs, n_tokens, skipped = (float(x) for x in acc.reduce(local, reduction="sum"))
        return n_kept, n_seqs, n_tokens, skipped

    def _skip_update(self) -> None:
        """Nothing to learn from: no update, but the schedule moves on so that it ends at max_steps."""
        with warnings.catch_warnings():  # torch warns when the scheduler steps before any optimizer step
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
            for _ in range(self.cfg.num_iterations):
                self.scheduler.step()

    def _update(self, kept: list[list[Rollout]], n_seqs: float, n_tokens: float,
                own: list[list[Rollout]] | None = None) -> dict[str, float]:
        """``num_iterations`` optimiser steps on the kept groups; each group's loss is backpropagated
        on its own (the gradients add up), and processes synchronise on the last. ``own``: all of this
        process's groups, kept or not."""
        cfg, acc = self.cfg, self.accelerator
        advs = [advantages(torch.tensor([r.reward for r in g], dtype=torch.float32), cfg.loss_type) for g in kept]
        refs = [self._logp(self.model, g, False, self.reference) for g in kept] if self.reference is not None else None
        olds = [self._logp(self.model, g, False) for g in kept] if cfg.num_iterations > 1 else None
        params = [p for p in self.model.parameters() if p.requires_grad]
        stats: Counter[str] = Counter()
        for _ in range(cfg.num_iterations):
            for gi, g in enumerate(kept):
                with nullcontext() if gi == len(kept) - 1 else acc.no_sync(self.model):
                    logp = self._logp(self.model, g, True)
                    lens = torch.tensor([len(r.completion) for r in g], device=logp.device)
                    old = olds[gi] if olds is not None else logp.detach()
                    loss, kl, clipped = grpo_loss(logp, old, refs[gi] if refs is not None else None, advs[gi], lens,
                                                  cfg, n_seqs, n_tokens)
                    acc.backward(loss * acc.num_processes)
                stats["loss"] += float(loss.detach())
                stats["kl"] += float(kl.sum())
                stats["clipped"] += float(clipped.sum())
                stats["tokens"] += len(logp)
            if not kept:
                # the other processes have groups: join their gradient reduction with a zero-weighted
                # forward and backward through the wrapped model (a backward without a forward never
                # reaches DDP's reducer, and the others would wait in their all-reduce for ever)
                if own:
                    acc.backward(self._logp(self.model, own[0], True).sum() * 0.0)
                else:  # no question on this process at all (prompts_per_step < processes)
                    acc.backward(sum(p.sum() * 0.0 for p in params))
            stats["grad_norm"] += self._step(params)
        mu = cfg.num_iterations
        # each process's loss is its groups' share of the step's (normalised by the global counts):
        # summed over the processes, the step's loss; kl and clipping per token of the whole step
        local = torch.tensor([stats["loss"], stats["kl"], stats["clipped"], stats["tokens"]], dtype=torch.float64,
                             device=acc.device)
        loss, kl, clipped, tokens = (float(x) for x in acc.reduce(local, reduction="sum"))
        return {"loss": loss / mu, "kl": kl / max(1, tokens), "clip_fraction": clipped / max(1, tokens),
                "grad_norm": stats["grad_norm"] / mu}

    def _step(self, params: list[torch.nn.Parameter]) -> float:
        """Clip, step the optimiser and the schedule; the gradient norm before clipping (0 when not clipped)."""
        cfg = self.cfg
        grad_norm = self.accelerator.clip_grad_norm_(params, cfg.max_grad_norm) if cfg.max_grad_norm > 0 else None
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(grad_norm) if grad_norm is not None else 0.0

    def train(self, resume: bool = True) -> dict[str, Any]:
        from tqdm import tqdm

        cfg = self.cfg
        start, log = self.start(resume)
        bar = tqdm(total=cfg.max_steps, initial=start, desc="rl", disable=not (cfg.progress and self.main),
                   dynamic_ncols=True)
        row: dict[str, Any] = {}
        key = "groups_skipped_no_variance"
        self.totals.setdefault(key, 0)
        for step in range(start, cfg.max_steps):
            row = self.train_step(step)
            self.totals[key] += row[key]
            bar.update(1)
            bar.set_postfix(reward=f"{row['reward_mean']:.3f}", correct=f"{row['correct']:.2f}")
            self.after_step(step + 1, log, row)
        bar.close()
        self.finish(log)
        return {"steps": cfg.max_steps, "final": str(self.run_dir / "final"), **row, key: self.totals[key]}

