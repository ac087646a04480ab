"""TRL end to end: GRPOTrainer's own generation (no vLLM) decodes under tracelang's constraint
(``constrain_generation``), each row grounded in its question, and two GRPO steps train the tiny
model. trl is in the dev extras, so this runs in CI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tracelang.decoding.constraint import Constraint, compile_tokenizer, make_config
from tracelang.integrations.trl import constrain_generation, tracelang_reward
from tracelang.models import Prompter, load_model
from tracelang.pipeline import parse

trl = pytest.importorskip("trl")  # in the dev extras; absent only in a bare install

PROBLEMS = [  # made up here (GSM-8K's text is never committed)
    ("Sara buys 4 notebooks that cost $3 each. How much does she spend?", "#### 12"),
    ("Tom has 7 apples and gets 5 more. How many apples does he have?", "#### 12"),
]


def _allowed_throughout(compiled, question: str, ids: list[int], eos: int) -> bool:
    """Every token of a completion was one the constraint (grounded in ``question``) allowed."""
    row = Constraint(compiled, make_config(question=question))
    buf = row.new_mask()
    for tok in ids:
        if row.done:
            return tok == eos
        row.fill_mask(buf)
        if not np.unpackbits(buf.view(np.uint8), bitorder="little")[tok]:
            return False
        row.advance(tok)
    return True


def test_two_grpo_steps_with_trl_generation_under_the_constraint(tmp_path: Path) -> None:
    from datasets import Dataset

    loaded = load_model("tiny", seed=0)
    tokenizer, model = loaded.tokenizer, loaded.model
    prompter = Prompter.for_version(tokenizer, loaded.prompt_version)
    data = Dataset.from_list([{"prompt": prompter.prompt(q), "question": q, "answer": a} for q, a in PROBLEMS])
    seen: list[tuple[list[str], list[list[int]], list[str]]] = []

    def expert_reward(prompts, completions, completion_ids, question, **kwargs) -> list[float]:
        """A fixed toy reward that varies within a group (a random model's traces rarely finish, so
        tracelang_reward is 0 for all): 1 for a trace that opens with the arithmetic expert."""
        seen.append((completions, completion_ids, question))
        return [float(c.startswith("expert: arithmetic")) for c in completions]

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = trl.GRPOConfig(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=8,
                          num_generations=4, max_completion_length=24, learning_rate=1e-2, logging_steps=1,
                          report_to="none", use_cpu=True, save_strategy="no", seed=0, temperature=1.0)
    trainer = trl.GRPOTrainer(model=model, reward_funcs=[tracelang_reward, expert_reward], args=args,
                              train_dataset=data, processing_class=tokenizer)
    assert constrain_generation(trainer.model, tokenizer, data["question"]) is trainer.model
    trainer.train()

    compiled = compile_tokenizer(tokenizer)
    completions = [(c, ids, q) for texts, id_lists, qs in seen for c, ids, q in zip(texts, id_lists, qs, strict=True)]
    assert len(completions) == 2 * 8
    for text, ids, question in completions:
        assert _allowed_throughout(compiled, question, ids, tokenizer.eos_token_id), text
        assert text.startswith(("expert: ", "- expert: ")) and "trace:" in text
        if ids and ids[-1] == tokenizer.eos_token_id:  # finished: a whole trace of the grammar
            assert parse(text).program is not None
    logs = [row for row in trainer.state.log_history if "loss" in row]
    assert len(logs) == 2 and any(row["rewards/expert_reward/std"] > 0 for row in logs)
    assert any(row["grad_norm"] > 0 for row in logs)
    changed = [n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())]
    assert changed  # the steps trained


def test_constrain_generation_refuses_a_prompt_without_a_known_question() -> None:
    loaded = load_model("tiny", seed=0)
    tokenizer, model = loaded.tokenizer, loaded.model
    constrain_generation(model, tokenizer, ["A question nobody asked?"])
    ids = tokenizer(["Question: Sara buys 4 notebooks.\nTrace:\n"], return_tensors="pt")
    with pytest.raises(ValueError, match="none of the questions"):
        model.generate(**ids, max_new_tokens=2)
