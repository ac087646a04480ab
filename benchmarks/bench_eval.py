"""Evaluation throughput on the embedded model (Gemma 3 270M, 2 CPU cores), in problems per
minute, in one run on the same GSM-8K dev problems (from train; never test) and the same 3-shot
prompt:

- ``hf_generate``: the straightforward road — transformers' ``generate`` over the left-padded
  batch, greedy, unconstrained, stopping at the prompt format's stop strings;
- ``ours_free``: our generation loop, unconstrained (shared prompt prefix computed once per
  evaluation, logits only where a token is chosen, finished rows leave the batch);
- ``ours_constrained``: the same loop under the constraint (scope, ops, grounding, values) with
  fast-forward and the head restricted to allowed tokens — what ``tracelang eval`` runs;
- ``ours_constrained_float32``: the same with float32 weights, where ``--dtype auto`` (the default of
  the three rows above) chose bfloat16 — what the dtype alone is worth.

Target: the 1,319-problem test set in under 60 minutes = 22 problems per minute. Skipped when the
embedded model is not installed. The table is printed at the end (run with ``-s``):

    pytest benchmarks/bench_eval.py --benchmark-enable -s -p no:cacheprovider
"""

from __future__ import annotations

import os
import time
from functools import cache

import pytest

from .conftest import GSM8K

N = int(os.environ.get("TRACELANG_BENCH_EVAL_N", "32"))
BATCH = int(os.environ.get("TRACELANG_BENCH_EVAL_BATCH", "32"))  # `tracelang eval`'s default
MAX_NEW = 320
RATES: dict[str, float] = {}
DTYPES: dict[str, str] = {}


@cache
def _setup(dtype: str = "auto"):
    from tracelang.data.gsm8k import load
    from tracelang.data.splits import dev_ids
    from tracelang.models import ModelError, Prompter, load_model
    from tracelang.models.prompt import load_shots

    if not (GSM8K / "train.jsonl").is_file():
        pytest.skip("GSM-8K train not found")
    try:
        loaded = load_model("embedded", dtype=dtype)
    except ModelError as err:
        pytest.skip(str(err))
    ids = dev_ids()
    questions = [p.question for p in load(str(GSM8K / "train.jsonl"), "train") if p.id in ids][:N]
    from .conftest import ROOT

    prompter = Prompter(loaded.tokenizer, load_shots(ROOT / "corpora" / "shots.jsonl", 3))
    return loaded, prompter, questions


def _hf_generate(loaded, prompter, prompts: list[str]) -> None:
    import torch

    tok = loaded.tokenizer
    tok.padding_side = "left"
    batch = tok(prompts, return_tensors="pt", padding=True)
    with torch.inference_mode():
        loaded.model.generate(**batch, max_new_tokens=MAX_NEW, do_sample=False, stop_strings=prompter.stop_strings(),
                              tokenizer=tok, pad_token_id=tok.pad_token_id)


def _dtype(kind: str) -> str:
    return "float32" if kind.endswith("_float32") else "auto"


def _backend(kind: str):
    loaded, prompter, questions = _setup(_dtype(kind))
    if kind == "ours_free":
        from tracelang.evaluation.backends import FreeBackend

        return FreeBackend(loaded, prompter, MAX_NEW)
    if kind.startswith("ours_constrained"):
        from tracelang.evaluation.constrained import ConstrainedBackend

        return ConstrainedBackend(loaded, prompter, MAX_NEW)
    return None


@pytest.mark.parametrize("kind", ["hf_generate", "ours_free", "ours_constrained", "ours_constrained_float32"])
def test_eval_throughput(benchmark, kind: str) -> None:
    from tracelang.models.loading import resolve_dtype

    if _dtype(kind) == "float32" and resolve_dtype("auto") == "float32":
        pytest.skip("auto is float32 on this machine: the row would repeat ours_constrained")
    loaded, prompter, questions = _setup(_dtype(kind))
    backend = _backend(kind)
    prompts = [prompter.prompt(q) for q in questions]

    def run() -> float:
        start = time.perf_counter()
        for i in range(0, len(prompts), BATCH):
            if backend is None:
                _hf_generate(loaded, prompter, prompts[i:i + BATCH])
            else:
                backend.generate(prompts[i:i + BATCH], questions[i:i + BATCH])
        return time.perf_counter() - start

    benchmark.group = f"eval throughput, embedded model, {len(prompts)} dev problems, batch {BATCH}"
    seconds = benchmark.pedantic(run, rounds=1, iterations=1)
    RATES[kind] = len(prompts) / seconds * 60
    benchmark.extra_info["problems_per_minute"] = RATES[kind]
    DTYPES[kind] = benchmark.extra_info["dtype"] = str(loaded.model.dtype).removeprefix("torch.")


def teardown_module() -> None:
    if not RATES:
        return
    base = RATES.get("hf_generate")
    print("\nproblems per minute (target: 1,319 in 60 min = 22/min)")
    for kind, rate in RATES.items():
        ratio = f"  {rate / base:.2f}x hf_generate" if base else ""
        print(f"  {kind:24s} {DTYPES[kind]:8s} {rate:6.2f}/min  full test set ~{1319 / rate:.0f} min{ratio}")
