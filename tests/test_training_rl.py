"""GRPO on the tiny model: a step raises the mean reward on a toy task, log-probabilities are
on-policy, groups without reward variance are skipped and counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tracelang.models import Prompter, load_model
from tracelang.training.batching import make_batch
from tracelang.training.config import RLConfig
from tracelang.training.data import tokenize
from tracelang.training.reward import RewardSpec, verifier_reward
from tracelang.training.rl import GRPOTrainer, PromptItem, advantages
from tracelang.training.sampling import Sampler

QUESTIONS = ["Ann has 3 boxes with 4 pens in each box. How many pens does she have?",
             "A shop sells 5 cakes at 2 dollars each. How much money does it take in?"]


def _prompts() -> tuple[list[list[PromptItem]], list[float]]:
    tok = load_model("tiny").tokenizer
    prompter = Prompter(tok)
    items = [PromptItem(f"toy-{i}", q, None, tokenize(tok, prompter, q, "")[0]) for i, q in enumerate(QUESTIONS)]
    return [items], [1.0]


def _cfg(out: Path, **kw) -> RLConfig:
    base = dict(model="tiny", output_dir=str(out), gsm8k_train="unused", init=None, unfreeze_layers=1, max_steps=2,
                prompts_per_step=2, num_generations=8, max_new_tokens=10, learning_rate=0.05, progress=False,
                lr_scheduler_type="constant", tensorboard=False, save_steps=0)
    base.update(kw)
    cfg = RLConfig(**base)
    cfg.validate()
    return cfg


def prefers_arithmetic(text: str, gold, question) -> tuple[float, dict]:  # noqa: ARG001 - the reward's signature
    """A toy task: the trace should declare the arithmetic expert (a particular valid start)."""
    good = text.startswith("expert: arithmetic")
    return float(good), {"kind": "correct" if good else "invalid"}


def _mean_reward(trainer: GRPOTrainer, n: int = 48) -> float:
    """Mean toy reward of fresh samples (a fixed generator), under the current policy."""
    gen = torch.Generator().manual_seed(1234)
    total = 0.0
    for item in trainer.pools[0]:
        for r in trainer.sampler.sample(item.prompt_ids, item.question, n // 2, 1.0, 4, gen):
            total += prefers_arithmetic(r.text, None, None)[0]
    return total / n


def _quiet(_line: str) -> None:
    pass


def test_rl_steps_raise_the_mean_reward(tmp_path: Path) -> None:
    # 4 steps at 0.03: with the guide's literal and no-op rules (issue 14) the masks of the toy samples
    # changed, and 2 steps at 0.05 no longer moved this tiny policy (0.06 -> 0.0; 4 x 0.03: -> 1.0)
    cfg = _cfg(tmp_path, max_steps=4, learning_rate=0.03)
    trainer = GRPOTrainer(cfg, reward_fn=prefers_arithmetic, prompts=_prompts(), echo=_quiet)
    trainer.prepare()
    before = _mean_reward(trainer)
    trainer.prepare = lambda: None  # type: ignore[method-assign] - keep the trainer (and sampler) measured above
    result = trainer.train(resume=False)
    after = _mean_reward(trainer)
    assert after > before + 0.15, (before, after)
    assert result["groups_used"] >= 1
    rows = [json.loads(x) for x in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all("clip_fraction" in r for r in rows)


def test_constant_reward_groups_are_skipped_and_counted(tmp_path: Path) -> None:
    trainer = GRPOTrainer(_cfg(tmp_path, max_steps=1), reward_fn=lambda t, g, q: (0.5, {"kind": "valid"}),
                          prompts=_prompts(), echo=_quiet)
    result = trainer.train(resume=False)
    assert result["groups_skipped_no_variance"] == 2 and result["groups_used"] == 0
    before = {n: p for n, p in _start(tmp_path).items()}
    assert all(torch.equal(before[n], p) for n, p in trainer.setup.pm.trained_parameters().items())


def test_skipped_steps_move_the_schedule_and_the_skip_total_survives_resume(tmp_path: Path) -> None:
    def constant(t, g, q) -> tuple[float, dict]:  # noqa: ARG001 - the reward's signature
        return 0.5, {"kind": "valid"}

    def run(steps: int, resume: bool) -> tuple[GRPOTrainer, dict]:
        cfg = _cfg(tmp_path, max_steps=steps, num_iterations=2, lr_scheduler_type="linear")
        trainer = GRPOTrainer(cfg, reward_fn=constant, prompts=_prompts(), echo=_quiet)
        return trainer, trainer.train(resume=resume)

    trainer, result = run(1, False)
    assert result["groups_used"] == 0 and result["groups_skipped_no_variance"] == 2
    assert trainer.scheduler.last_epoch == 2 and result["lr"] == 0.0  # mu scheduler steps per RL step: the end
    trainer, result = run(3, True)  # continues from step 1 on a longer schedule
    assert trainer.scheduler.last_epoch == 6 and result["lr"] == 0.0
    assert result["groups_skipped_no_variance"] == 6  # 2 groups x 3 steps, the step before the resume included


def _start(tmp_path: Path) -> dict[str, torch.Tensor]:
    trainer = GRPOTrainer(_cfg(tmp_path / "fresh", max_steps=1), reward_fn=prefers_arithmetic, prompts=_prompts(),
                          echo=_quiet)
    trainer.prepare()
    return {n: p.detach().clone() for n, p in trainer.setup.pm.trained_parameters().items()}


@pytest.mark.parametrize("loss_type", ["dr_grpo", "dapo"])
def test_variants_with_kl_and_several_updates(tmp_path: Path, loss_type: str) -> None:
    cfg = _cfg(tmp_path, max_steps=1, loss_type=loss_type, beta=0.1, num_iterations=2)
    assert cfg.epsilon_high == (0.28 if loss_type == "dapo" else 0.2)
    result = GRPOTrainer(cfg, reward_fn=prefers_arithmetic, prompts=_prompts(), echo=_quiet).train(resume=False)
    assert result["kl"] >= 0 and 0 <= result["clip_fraction"] <= 1
    assert torch.isfinite(torch.tensor(result["loss"]))


def test_advantages() -> None:
    r = torch.tensor([1.0, 0.0, 0.0, 1.0])
    assert torch.allclose(advantages(r, "dr_grpo"), torch.tensor([0.5, -0.5, -0.5, 0.5]))
    a = advantages(r, "grpo")
    assert torch.allclose(a, (r - 0.5) / (r.std() + 1e-4))


def test_log_probabilities_are_on_policy(tmp_path: Path) -> None:
    trainer = GRPOTrainer(_cfg(tmp_path), reward_fn=prefers_arithmetic, prompts=_prompts(), echo=_quiet)
    trainer.prepare()
    pm, item = trainer.setup.pm, trainer.pools[0][0]
    for capture in (True, False):
        sampler = Sampler(pm, trainer.setup.loaded.tokenizer, trainer.setup.table, trainer.setup.subset_index,
                          capture_states=capture)
        rolls = sampler.sample(item.prompt_ids, item.question, 3, 0.7, 16, torch.Generator().manual_seed(5))
        states = [r.states for r in rolls] if capture else None
        with torch.no_grad():
            logp = pm(make_batch(rolls, 0, trainer.setup.table, states), "constrained", 0.7)
        sampled = torch.tensor([x for r in rolls for x in r.sample_logp])
        assert torch.allclose(logp, sampled, atol=1e-4)


def test_verifier_reward_grades() -> None:
    reward = verifier_reward(RewardSpec(correct=1.0, valid=0.3, parsed=0.1, invalid=0.0, warning=0.05))
    q = "Tom has 2 apples and buys 3 more. How many apples does he have?"
    good = "expert: arithmetic\ntrace:\n- {op: init, var: a, value: 2}\n- {op: init, var: b, value: 3}\n" \
           "- {op: compute, compute_op: add, args: [a, b], var: total}\n- {op: query, var: total}\n"
    assert reward(good, "5", q)[0] == 1.0
    assert reward(good, "6", q)[0] == pytest.approx(0.3)
    assert reward(good.replace("args: [a, b]", "args: [a, c]"), "5", q)[0] == pytest.approx(0.1)
    assert reward("expert: arithmetic\ntrace:\n- {op: ", "5", q)[0] == 0.0
    ungrounded = good.replace("value: 3", "value: 4")
    assert reward(ungrounded, "6", q)[0] == pytest.approx(1.0 - 0.05)  # W701: 4 is not in the question


def test_the_sampler_writes_what_generate_writes() -> None:
    """The RL sampler is the decoder's loop: greedy, with the policy's head still the model's own,
    it writes generate's tokens (without fast-forward, which it does not use), one mask and one
    log-probability per token, and the prefix states of every input position."""
    from tracelang.decoding.constraint import Constraint, make_config
    from tracelang.decoding.generate import generate
    from tracelang.training.emittable import emittable_ids
    from tracelang.training.masks import MaskTable
    from tracelang.training.partial import PartialModel

    loaded = load_model("tiny")
    tok, model = loaded.tokenizer, loaded.model
    pm = PartialModel(model, 1, "grammar", True, emittable_ids(tok))  # its trained rows start as the head's
    sampler = Sampler(pm, tok, MaskTable(len(pm.subset)), pm.subset_index.numpy(), capture_states=True)
    prompter = Prompter(tok)
    for q in QUESTIONS:
        ids = tokenize(tok, prompter, q, "")[0]
        [roll] = sampler.sample(ids, q, 1, 0.0, 40)
        [res] = generate(model, tok, [ids], lambda _i, q=q: Constraint(sampler.compiled, make_config(question=q)),
                         max_new_tokens=40, fast_forward=False, close_on_budget=False)
        assert roll.completion == res.token_ids and roll.text == res.text and roll.finished == res.finished
        assert len(roll.completion) > 10
        assert len(roll.masks) == len(roll.sample_logp) == len(roll.completion)
        assert roll.states is not None and roll.states.shape[0] == len(roll.input_ids)


def test_a_bfloat16_model_samples_with_a_float32_head() -> None:
    """LoRA runs keep the model in bfloat16 and may score with a float32 head (``head_dtype``):
    the sampler casts the hidden states to the head's dtype (it used to stop on the mismatch)."""
    from tracelang.training.emittable import emittable_ids
    from tracelang.training.masks import MaskTable
    from tracelang.training.partial import PartialModel

    loaded = load_model("tiny")
    tok = loaded.tokenizer
    pm = PartialModel(loaded.model.to(torch.bfloat16), 1, "grammar", True, emittable_ids(tok))
    pm.head_dtype = torch.float32
    sampler = Sampler(pm, tok, MaskTable(len(pm.subset)), pm.subset_index.numpy())
    ids = tokenize(tok, Prompter(tok), QUESTIONS[0], "")[0]
    rolls = sampler.sample(ids, QUESTIONS[0], 2, 1.0, 12, torch.Generator().manual_seed(0))
    assert all(len(r.completion) == len(r.masks) == len(r.sample_logp) > 0 for r in rolls)
