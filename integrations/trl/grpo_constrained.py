"""GRPO with TRL on CPU (or one GPU), no vLLM: TRL's own generation (``model.generate``) decodes under
tracelang's constraint, each rollout grounded in its question (``constrain_generation``), and
tracelang's reward functions grade each completion (checker + exact runtime).

    python integrations/trl/grpo_constrained.py shipped ../shared/data/gsm8k/train.jsonl runs/trl \\
        --n 3 --steps 1 --generations 4

MODEL is what `tracelang eval --model` takes (``shipped``, ``embedded``, a checkpoint, a model
directory); a fresh LoRA adapter trains on top of it. The prompt is the model's own (the trained one
for ``shipped``). Prints each group's rewards: under the constraint every rollout parses, so rewards
differ within a group and GRPO has an advantage to follow. Needs ``pip install trl`` (in the dev
extras); tests/test_integrations_trl.py runs two steps of this on the tiny model.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

from tracelang.data.gsm8k import load
from tracelang.data.splits import dev_ids
from tracelang.evaluation.commands import load_any
from tracelang.integrations.trl import constrain_generation, correctness_reward, tracelang_reward, trl_prompt
from tracelang.models import Prompter


def rows(path: str | Path, n: int, seed: int, prompter: Prompter) -> list[dict[str, Any]]:
    """``n`` GSM-8K train problems (seeded; the dev split left out), as TRL standard-format rows."""
    dev = dev_ids()
    pool = [p for p in load(str(path), "train") if p.id not in dev]
    chosen = random.Random(seed).sample(pool, n)
    return [{"prompt": trl_prompt(prompter, p.question), "question": p.question, "answer": p.solution}
            for p in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--n", type=int, default=3, help="problems (one group each per step)")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--max-completion-length", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    loaded = load_any(args.model, seed=args.seed)
    prompter = Prompter.for_version(loaded.tokenizer, loaded.prompt_version)
    data = Dataset.from_list(rows(args.data, args.n, args.seed, prompter))
    groups: list[dict[str, Any]] = []

    def graded(prompts, completions, question, answer, **kwargs) -> list[float]:
        """tracelang's reward, with each completion kept for the report below."""
        rewards = tracelang_reward(prompts, completions, answer=answer, question=question)
        correct = correctness_reward(prompts, completions, answer=answer, question=question)
        groups.append({"questions": question, "completions": completions, "rewards": rewards, "correct": correct})
        for g in range(0, len(rewards), args.generations):  # as soon as graded: a CPU step is long
            print(json.dumps({"question": question[g][:60], "rewards": rewards[g:g + args.generations]}), flush=True)
        return rewards

    batch = args.n * args.generations  # one group per problem, all in one step
    config = GRPOConfig(output_dir=args.out, max_steps=args.steps, per_device_train_batch_size=batch,
                        num_generations=args.generations, max_completion_length=args.max_completion_length,
                        temperature=args.temperature, learning_rate=1e-5, logging_steps=1, report_to="none",
                        save_strategy="no", seed=args.seed, use_cpu=not torch.cuda.is_available())
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = GRPOTrainer(model=loaded.model, reward_funcs=[graded], args=config, train_dataset=data,
                          processing_class=loaded.tokenizer, peft_config=lora)
    constrain_generation(trainer.model, loaded.tokenizer, data["question"])
    trainer.train()

    from tracelang.pipeline import parse

    for step in groups:  # the same groups again, with how many of each group's completions parse
        for g in range(0, len(step["rewards"]), args.generations):
            texts = step["completions"][g:g + args.generations]
            print(json.dumps({"question": step["questions"][g][:60], "rewards": step["rewards"][g:g + args.generations],
                              "correct": step["correct"][g:g + args.generations],
                              "parsed": sum(parse(t).program is not None for t in texts)}))
    print(json.dumps({"log": [r for r in trainer.state.log_history if "loss" in r]}))


if __name__ == "__main__":
    main()
