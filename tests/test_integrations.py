"""TRL reward functions and lm-eval scoring grade with the checker and the exact runtime."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from tracelang.integrations.lm_eval import process_results
from tracelang.integrations.trl import correctness_reward, tracelang_reward, validity_reward

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "Sara buys 4 notebooks that cost $3 each. How much does she spend?"
RIGHT = ("expert: arithmetic\ntrace:\n- {op: init, var: notebooks, value: 4}\n- {op: init, var: price, value: 3}\n"
         "- {op: compute, compute_op: mul, args: [notebooks, price], var: result}\n- {op: query, var: result}\n")
WRONG = RIGHT.replace("compute_op: mul", "compute_op: add")
BROKEN = "expert: arithmetic\ntrace:\n- {op: query, var: nothing}\n"


def test_trl_rewards_have_trls_signature_and_grade_exactly() -> None:
    completions = [RIGHT, WRONG, BROKEN, "no trace at all"]
    prompts = ["p"] * 4
    assert correctness_reward(prompts, completions, answer=["12"] * 4, question=[QUESTION] * 4) == [1, 0, 0, 0]
    assert validity_reward(prompts, completions, question=[QUESTION] * 4) == [0.2, 0.2, 0.05, 0.0]
    assert tracelang_reward(prompts, completions, answer=["#### 12"] * 4) == [1.0, 0.2, 0.05, 0.0]
    # conversational completions, and extra dataset columns TRL passes along
    chat = [[{"role": "assistant", "content": RIGHT}]]
    assert correctness_reward(["p"], chat, answer=[12], question=[QUESTION], trainer_state=None) == [1.0]


def test_lm_eval_task_scores_with_tracelang() -> None:
    task = yaml.load((ROOT / "integrations" / "lm_eval" / "tracelang_gsm8k.yaml").read_text(),
                     Loader=yaml.BaseLoader)  # lm-eval's `!function` tag is read as text here
    assert task["task"] == "tracelang_gsm8k" and task["output_type"] == "generate_until"
    doc = {"question": QUESTION, "answer": "4 * 3 = 12\n#### 12"}
    assert process_results(doc, [RIGHT]) == {"exact_match": 1.0}
    assert process_results(doc, [WRONG]) == {"exact_match": 0.0}
    assert process_results({"question": QUESTION, "answer": "#### 1/0"}, [RIGHT]) == {"exact_match": 0.0}


def _grpo_example():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "integrations" / "trl" / "grpo_example.py"
    spec = importlib.util.spec_from_file_location("grpo_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports neither trl nor vllm at module level
    return module


def test_grpo_example_pieces_run_offline(tmp_path: Path) -> None:
    import re

    from tracelang.decoding.export import to_regex

    example = _grpo_example()
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"question": "Ann buys 3 boxes of 12 eggs. How many eggs?",
                                "answer": "3 * 12 = 36\n#### 36"}) + "\n")
    (row,) = example.rows(data)
    assert row["prompt"] == [{"role": "user", "content": row["question"]}]
    trace = ("expert: arithmetic\ntrace:\n- {op: init, var: boxes, value: 3}\n- {op: init, var: per_box, value: 12}\n"
             "- {op: compute, compute_op: mul, args: [boxes, per_box], var: eggs}\n- {op: query, var: eggs}\n")
    completions = [[{"role": "assistant", "content": trace}], [{"role": "assistant", "content": "36"}]]
    columns = {"answer": [row["answer"]] * 2, "question": [row["question"]] * 2}
    scores = [f(prompts=[row["prompt"]] * 2, completions=completions, **columns) for f in example.REWARDS]
    assert scores == [[1.0, 0.0], [0.2, 0.0]]
    kwargs = example.config_kwargs(str(tmp_path / "out"))
    assert kwargs["vllm_structured_outputs_regex"] == to_regex() and re.fullmatch(to_regex(), trace)
    trl = pytest.importorskip("trl")
    assert "vllm_structured_outputs_regex" in {f.name for f in dataclasses.fields(trl.GRPOConfig)}
