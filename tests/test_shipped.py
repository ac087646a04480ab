"""The shipped adapter: weights/shipped is what its training.json says (sha256, base, prompt), loads
onto the embedded base, and solves problems end to end through `tracelang solve` (the default
model): loading, merging, the bare prompt, constrained decoding, the runtime.

The two problems are our own, written for this project (not from GSM-8K): one of the one- and
two-step problems we wrote, and one of the generalisation set (`corpora/templates/heldout/`, never
trained on), where "lost 14 of them" must be a sub. They run in float32 (`--dtype float32`), the
dtype whose answers are asserted; bfloat16 and other thread counts are not tested here.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from tracelang.cli import app
from tracelang.models.adapters import CONFIG, WEIGHTS
from tracelang.models.loading import shipped_dir
from tracelang.models.prompt import BARE_PROMPT_VERSION

SHIPPED = shipped_dir()
PROBLEMS = [
    ("Margaux had 78 yo-yos. On the way to school she lost 14 of them. How many yo-yos remain?", "64"),
    ("Lucy picks 14 apples and her brother picks 19 apples. How many apples do they pick together?", "33"),
]


def test_the_shipped_files_are_what_training_json_says() -> None:
    meta = json.loads((SHIPPED / "training.json").read_text())
    digest = hashlib.sha256((SHIPPED / WEIGHTS).read_bytes()).hexdigest()
    assert digest == meta["adapter_sha256"]
    assert meta["base_model"] == "embedded" and meta["prompt_version"] == BARE_PROMPT_VERSION
    assert (SHIPPED / WEIGHTS).stat().st_size <= 25 * 2**20  # small enough to live in the repository
    config = json.loads((SHIPPED / CONFIG).read_text())
    assert config["peft_type"] == "LORA" and config["r"] == meta["config"]["peft"]["r"]
    assert all(d["sha256"] for d in meta["data"])  # every training file is named by its hash


@pytest.mark.parametrize(("question", "answer"), PROBLEMS)
def test_the_shipped_model_solves_a_problem(runner, question: str, answer: str) -> None:
    """No --model: the shipped adapter is the default."""
    result = runner.invoke(app, ["solve", question, "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "expert: arithmetic" and "op: compute" in result.stdout
    assert lines[-1] == f"answer: {answer}", result.output
