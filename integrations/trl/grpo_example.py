"""GRPO with TRL on GSM-8K: tracelang's reward functions grade each completion (checker + exact
runtime), and vLLM generates under the exported canonical grammar as a regex (TRL passes
``vllm_structured_outputs_regex`` to vLLM's structured outputs).

    tracelang train export runs/x/sft/final --out runs/x/model   # chat template = the trained prompt
    accelerate launch integrations/trl/grpo_example.py runs/x/model ../shared/data/gsm8k/train.jsonl runs/x/grpo

Needs a GPU, ``pip install trl vllm``. The pieces that run offline (the dataset rows, the config, the
rewards) are checked by tests/test_integrations.py; the run itself is not run in CI.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tracelang.decoding.export import to_regex
from tracelang.integrations.trl import correctness_reward, validity_reward

REWARDS = [correctness_reward, validity_reward]


def rows(path: str | Path) -> list[dict[str, Any]]:
    """GSM-8K JSONL -> TRL's conversational prompts. The question alone is the user message: an
    exported model's chat template wraps it in the prompt it was trained with. ``answer`` and
    ``question`` reach the reward functions as keyword columns."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            doc = json.loads(line)
            out.append({"prompt": [{"role": "user", "content": doc["question"]}], "answer": doc["answer"],
                        "question": doc["question"]})
    return out


def config_kwargs(output_dir: str) -> dict[str, Any]:
    """GRPOConfig arguments (TRL >= 0.24 names the regex field ``vllm_structured_outputs_regex``;
    older TRL: ``vllm_guided_decoding_regex``)."""
    return {"output_dir": output_dir, "use_vllm": True, "vllm_mode": "colocate",
            "vllm_structured_outputs_regex": to_regex(), "num_generations": 8, "max_completion_length": 320,
            "temperature": 0.7, "learning_rate": 1e-6, "per_device_train_batch_size": 8, "logging_steps": 1,
            "report_to": "none"}


def main(model: str, data: str, output_dir: str) -> None:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    trainer = GRPOTrainer(model=model, reward_funcs=REWARDS, args=GRPOConfig(**config_kwargs(output_dir)),
                          train_dataset=Dataset.from_list(rows(data)))
    trainer.train()


if __name__ == "__main__":
    main(*sys.argv[1:4])
