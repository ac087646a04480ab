"""GRPO on the tiny model with a fixed toy reward whose groups differ (a random model's traces rarely
finish, so the verifier reward would be flat): run by tests/test_training_multiprocess.py in-process
and under ``accelerate launch --num_processes 2 --cpu``. Not a test itself.

    accelerate launch --num_processes 2 --cpu tests/launch_rl_toy.py OUT_DIR STEPS
"""

from __future__ import annotations

import sys
from pathlib import Path

from tracelang.models import Prompter, load_model
from tracelang.training.config import RLConfig
from tracelang.training.data import tokenize
from tracelang.training.rl import GRPOTrainer, PromptItem

QUESTIONS = ["Ann has 3 boxes with 4 pens in each box. How many pens does she have?",
             "A shop sells 5 cakes at 2 dollars each. How much money does it take in?"]


def prefers_arithmetic(text: str, gold, question) -> tuple[float, dict]:  # noqa: ARG001 - the reward's signature
    """The toy task: the trace should declare the arithmetic expert."""
    good = text.startswith("expert: arithmetic")
    return float(good), {"kind": "correct" if good else "invalid"}


def train(out: Path, steps: int) -> dict:
    """Two steps of 2 questions x 8 samples. AdamW's epsilon is 1e-4, not 1e-8: the toy reward leaves
    most head rows a gradient near zero, which m / sqrt(v) would scale up to a whole step, so the
    order in which two processes add it (rounding) would move those weights by up to the learning
    rate; at 1e-4 such a gradient moves them by next to nothing, and the comparison is of the
    gradients that matter."""
    tok = load_model("tiny").tokenizer
    prompter = Prompter(tok)
    items = [PromptItem(f"toy-{i}", q, None, tokenize(tok, prompter, q, "")[0]) for i, q in enumerate(QUESTIONS)]
    cfg = RLConfig(model="tiny", output_dir=str(out), gsm8k_train="unused", init=None, unfreeze_layers=1,
                   max_steps=steps, prompts_per_step=2, num_generations=8, max_new_tokens=8, learning_rate=0.05,
                   progress=False, lr_scheduler_type="constant", tensorboard=False, save_steps=1,
                   save_total_limit=0, adam_epsilon=1e-4)
    cfg.validate()
    return GRPOTrainer(cfg, reward_fn=prefers_arithmetic, prompts=([items], [1.0]), echo=lambda _: None).train()


if __name__ == "__main__":
    train(Path(sys.argv[1]), int(sys.argv[2]))
