"""SFT step speed with partial unfreezing: our trainer's step against a straightforward HF loop, in
one run, on the same batch, the same trained parameters (the last third of the decoder layers and
the final norm; the head frozen) and the same optimiser.

- ``baseline_hf``: ``model(input_ids, attention_mask, labels)`` with ``requires_grad=False`` on the
  frozen parameters — a full forward over every layer, logits over the whole 262k vocabulary at
  every position, the full-vocabulary loss, backward, AdamW.
- ``ours_*``: ``PartialModel`` — frozen prefix under ``no_grad`` (``cold``: recomputed, as in the
  first epoch; ``cached``: reused, as in every later epoch), head only at target positions;
  ``full`` = the very same loss as the baseline (checked here), ``constrained`` = the loss over
  the decoder's allowed tokens (what the embedded-quick recipe trains with).

The model is Gemma 3 270M's shape — its config, its real 262,144-token vocabulary and tokenizer —
with 9 of its 18 layers (3 trained) by default, random weights, so it runs without the converted
checkpoint and in reasonable time on 2 cores; ``TRACELANG_BENCH_SFT_MODEL=embedded`` benchmarks
the real embedded model (18 layers, the last 6 trained) instead. Tokens/s counts prompt + target
tokens; the ratio table is printed at the end (run with ``-s``):

    pytest benchmarks/bench_sft.py --benchmark-enable -s -p no:cacheprovider
"""

from __future__ import annotations

import json
import os
from functools import cache

import pytest
import torch

from tracelang.decoding.constraint import Constraint, compile_tokenizer, make_config
from tracelang.models import Prompter
from tracelang.training.batching import make_batch
from tracelang.training.data import Example, tokenize
from tracelang.training.emittable import emittable_ids
from tracelang.training.masks import MaskTable, Recorder, teacher_masks
from tracelang.training.partial import PartialModel

from .conftest import ROOT

MODEL = os.environ.get("TRACELANG_BENCH_SFT_MODEL", "shaped")  # shaped | embedded
LAYERS = int(os.environ.get("TRACELANG_BENCH_SFT_LAYERS", "9"))  # for `shaped`
BATCH = int(os.environ.get("TRACELANG_BENCH_SFT_BATCH", "4"))
ROUNDS = int(os.environ.get("TRACELANG_BENCH_SFT_ROUNDS", "3"))
RESULTS: dict[str, dict] = {}


@cache
def world():
    torch.manual_seed(0)
    if MODEL == "embedded":
        from tracelang.models import load_model

        loaded = load_model("embedded")
        model, tok = loaded.model, loaded.tokenizer
    else:
        from transformers import Gemma3ForCausalLM, Gemma3TextConfig

        from tracelang.decoding.tokenizer_store import embedded_tokenizer

        tok = embedded_tokenizer()
        config = Gemma3TextConfig(
            vocab_size=262144, hidden_size=640, intermediate_size=2048, num_hidden_layers=LAYERS,
            num_attention_heads=4, num_key_value_heads=1, head_dim=256, query_pre_attn_scalar=256,
            sliding_window=512, rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
            layer_types=((["sliding_attention"] * 5 + ["full_attention"]) * (LAYERS // 6 + 1))[:LAYERS],
            rope_parameters={"full_attention": {"rope_theta": 1e6, "rope_type": "default"},
                             "sliding_attention": {"rope_theta": 1e4, "rope_type": "default"}},
            tie_word_embeddings=True, pad_token_id=0, eos_token_id=1, bos_token_id=2)
        model = Gemma3ForCausalLM(config).eval()
    unfreeze = len(model.model.layers) // 3
    prompter = Prompter(tok)
    records = [json.loads(x) for x in (ROOT / "corpora" / "shots.jsonl").read_text().splitlines()][:BATCH]
    subset = emittable_ids(tok)
    pm = PartialModel(model, unfreeze, "none", True, subset)
    table = MaskTable(len(pm.subset))
    recorder = Recorder(pm.subset_index.numpy(), table, len(tok))
    compiled = compile_tokenizer(tok)
    examples = []
    for r in records:
        p, t = tokenize(tok, prompter, r["question"], r["trace"])
        ex = Example(r["id"], 0, r["question"], r["answer"], r["trace"], p, t)
        ex.masks = teacher_masks(Constraint(compiled, make_config(question=r["question"])), t, recorder)
        examples.append(ex)
    states = [pm.prefix(torch.tensor([ex.input_ids]))[0] for ex in examples]
    params = list(pm.trained_parameters().values())
    return tok, model, pm, table, examples, states, params, unfreeze


def _hf_batch(examples: list[Example], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(e.prompt_ids) + len(e.target_ids) for e in examples)
    ids = torch.full((len(examples), width), pad, dtype=torch.long)
    attn = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, e in enumerate(examples):
        seq = e.prompt_ids + e.target_ids
        ids[i, :len(seq)] = torch.tensor(seq)
        attn[i, :len(seq)] = 1
        labels[i, len(e.prompt_ids):len(seq)] = torch.tensor(e.target_ids)
    return ids, attn, labels


def baseline_step():
    """The straightforward loop: HF forward with labels, backward, AdamW."""
    tok, model, _, _, examples, _, params, _ = world()
    opt = torch.optim.AdamW(params, lr=1e-6)
    ids, attn, labels = _hf_batch(examples, tok.pad_token_id)

    def step() -> float:
        loss = model(input_ids=ids, attention_mask=attn, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


def ours_step(vocab: str, cached: bool):
    tok, _, pm, table, examples, states, params, _ = world()
    opt = torch.optim.AdamW(params, lr=1e-6)
    n = sum(len(e.target_ids) for e in examples)

    def step() -> float:
        batch = make_batch(examples, tok.pad_token_id, table if vocab == "constrained" else None,
                           states if cached else None)
        logp = pm(batch, vocab)
        loss = -logp.sum() / n
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


def test_same_loss_as_the_baseline() -> None:
    """``ours_full`` optimises exactly the baseline's objective (HF's loss is the token mean)."""
    tok, model, pm, _, examples, states, _, _ = world()
    ids, attn, labels = _hf_batch(examples, tok.pad_token_id)
    with torch.no_grad():
        hf = model(input_ids=ids, attention_mask=attn, labels=labels).loss
        ours = -pm(make_batch(examples, tok.pad_token_id, None, states), "full").mean()
    assert torch.allclose(hf, ours, rtol=1e-4), (float(hf), float(ours))


VARIANTS = [
    ("baseline_hf", None, False),
    ("ours_full_cold", "full", False),
    ("ours_full_cached", "full", True),
    ("ours_constrained_cold", "constrained", False),
    ("ours_constrained_cached", "constrained", True),
]


@pytest.mark.parametrize(("name", "vocab", "cached"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_sft_step(benchmark, name: str, vocab: str | None, cached: bool) -> None:
    _, _, _, _, examples, _, _, unfreeze = world()
    step = baseline_step() if vocab is None else ours_step(vocab, cached)
    benchmark.group = f"sft step: {MODEL}, {BATCH} examples, last {unfreeze} layers trained"
    loss = benchmark.pedantic(step, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert loss == loss and loss > 0  # a finite, positive loss: the step really trained something
    tokens = sum(len(e.input_ids) + 1 for e in examples)
    targets = sum(len(e.target_ids) for e in examples)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # with --benchmark-enable
        mean = stats.stats.mean
        RESULTS[name] = {"seconds": mean, "tokens_per_s": tokens / mean, "target_tokens_per_s": targets / mean}
        benchmark.extra_info.update(RESULTS[name])


def test_report() -> None:
    """The ratio table (our tokens/s over the baseline's), from the timings of this run."""
    if "baseline_hf" not in RESULTS:
        pytest.skip("timings need --benchmark-enable")
    base = RESULTS["baseline_hf"]["tokens_per_s"]
    lines = [f"\nSFT step, {MODEL} model, batch {BATCH}: tokens/s (prompt + target) and speed-up over baseline_hf"]
    for name, row in RESULTS.items():
        lines.append(f"  {name:<26} {row['tokens_per_s']:9.1f} tok/s   {row['seconds']:8.2f} s/step   "
                     f"x{row['tokens_per_s'] / base:5.2f}")
    print("\n".join(lines))
    assert set(RESULTS) == {v[0] for v in VARIANTS}
