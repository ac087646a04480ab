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

import os
from functools import cache

import pytest
import torch

from tracelang.decoding.constraint import Constraint, compile_tokenizer, make_config
from tracelang.fileio import read_jsonl
from tracelang.models import Prompter
from tracelang.paths import SHOTS
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

        from tracelang.models.tokenizer_store import embedded_tokenizer

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
    records = [r for _, r in read_jsonl(SHOTS)][:BATCH]
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


# ---------------------------------------------------------------- LoRA on the embedded model
#
# What `training/recipes/embedded.yaml` runs, against a plain transformers + peft loop with the
# same trainable set (LoRA r=32 on every linear of the last 9 of 18 layers), on the same examples:
#
# - ``peft_plain_fp32``: what a user writes first: float32 weights, ``model(..., labels=...)`` —
#   every layer forward, the full 262k-vocabulary head at every position, backward, AdamW;
# - ``peft_plain_bf16``: the same loop on bfloat16 weights (float32 adapters, peft's default);
# - ``ours_lora_cold``: bfloat16 weights under bf16 autocast, the frozen prefix (layers 0-8) under
#   ``no_grad``, the head only at target positions over the decoder's allowed tokens (first epoch);
# - ``ours_lora_cached``: the same with the prefix's output cached (every later epoch).
#
# Each row's examples use the prompt that mode trains with: the instruction preamble for the plain
# loops (the default prompt), the bare prompt for ours (the recipe's). The projected epoch time is
# the recipe's SFT data (GSM-8K train from the importer, dev excluded: runs/data/gsm8k-train.jsonl,
# made by `tracelang train masks`/`sft` with the recipe) at each row's tokens/s on that prompt.
#
#   pytest benchmarks/bench_sft.py -k lora --benchmark-enable -s -p no:cacheprovider

LORA_BATCH = int(os.environ.get("TRACELANG_BENCH_SFT_LORA_BATCH", "8"))
LORA_RESULTS: dict[str, dict] = {}
TRAIN_DATA = ROOT / "runs" / "data" / "gsm8k-train.jsonl"


@cache
def lora_world(dtype: str, instructions: bool):
    from tracelang.models import adapters, load_model
    from tracelang.training.data import DataTally, canonical_trace

    loaded = load_model("embedded", dtype=dtype)
    model, tok = loaded.model, loaded.tokenizer
    for p in model.parameters():
        p.requires_grad_(False)
    n = len(model.model.layers)
    peft_model = adapters.attach(model, 32, 64.0, 0.0, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                         "up_proj", "down_proj"], list(range(n - 9, n)))
    prompter = Prompter(tok, instructions=instructions)
    source = TRAIN_DATA if TRAIN_DATA.is_file() else SHOTS
    records = [r for _, r in read_jsonl(source)]
    tally = DataTally()
    examples = []
    for r in records:
        trace = canonical_trace(r, tally)
        if trace is None:
            continue
        p, t = tokenize(tok, prompter, r["question"], trace)
        examples.append(Example(r["id"], 0, r["question"], r["answer"], trace, p, t))
    return tok, model, peft_model, examples


def _epoch_tokens(examples: list[Example]) -> int | None:
    """Prompt + target tokens of one epoch of the recipe's data (None without the imported data)."""
    if not TRAIN_DATA.is_file():
        return None
    from tracelang.data.splits import dev_ids

    dev = dev_ids()
    return sum(len(e.input_ids) + 1 for e in examples if e.id not in dev)


def _lora_batch(examples: list[Example]) -> list[Example]:
    # a spread of lengths, as a shuffled epoch has: every k-th example
    step = max(1, len(examples) // LORA_BATCH)
    return examples[::step][:LORA_BATCH]


def peft_plain_step(dtype: str):
    tok, model, peft_model, examples = lora_world(dtype, True)
    batch = _lora_batch(examples)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-6)
    ids, attn, labels = _hf_batch(batch, tok.pad_token_id)

    def step() -> float:
        loss = peft_model(input_ids=ids, attention_mask=attn, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step, batch


def ours_lora_step(cached: bool):
    tok, model, peft_model, examples = lora_world("bfloat16", False)
    batch = _lora_batch(examples)
    pm = PartialModel(model, 0, "none", True, emittable_ids(tok), adapters=True)
    table = MaskTable(len(pm.subset))
    recorder = Recorder(pm.subset_index.numpy(), table, len(tok))
    compiled = compile_tokenizer(tok)
    for ex in batch:
        ex.masks = teacher_masks(Constraint(compiled, make_config(question=ex.question)), ex.target_ids, recorder) \
            or teacher_masks(Constraint(compiled, make_config()), ex.target_ids, recorder)
    states = [pm.prefix(torch.tensor([ex.input_ids]))[0] for ex in batch] if cached else None
    params = list(pm.trained_parameters().values())
    opt = torch.optim.AdamW(params, lr=1e-6)
    n = sum(len(e.target_ids) for e in batch)

    def step() -> float:
        micro = sorted(range(len(batch)), key=lambda i: len(batch[i].input_ids))
        total = 0.0
        for k in range(0, len(micro), 4):  # the recipe's micro-batches of 4, sorted by length
            idx = micro[k:k + 4]
            b = make_batch([batch[i] for i in idx], tok.pad_token_id, table,
                           [states[i] for i in idx] if states is not None else None)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logp = pm(b, "constrained")
                loss = -logp.sum() / n
            loss.backward()
            total += float(loss.detach())
        opt.step()
        opt.zero_grad(set_to_none=True)
        return total

    return step, batch


LORA_VARIANTS = ["peft_plain_fp32", "peft_plain_bf16", "ours_lora_cold", "ours_lora_cached"]


@pytest.mark.parametrize("name", LORA_VARIANTS)
def test_lora_step(benchmark, name: str) -> None:
    if name.startswith("peft_plain"):
        step, batch = peft_plain_step("float32" if name.endswith("fp32") else "bfloat16")
        _, _, _, examples = lora_world("float32" if name.endswith("fp32") else "bfloat16", True)
    else:
        step, batch = ours_lora_step(name.endswith("cached"))
        _, _, _, examples = lora_world("bfloat16", False)
    benchmark.group = f"sft step, LoRA r=32 on the last 9 of 18 layers, embedded, {len(batch)} examples"
    loss = benchmark.pedantic(step, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert loss == loss and loss > 0
    tokens = sum(len(e.input_ids) + 1 for e in batch)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        mean = stats.stats.mean
        row = {"seconds": mean, "tokens_per_s": tokens / mean, "batch_tokens": tokens}
        epoch = _epoch_tokens(examples)
        if epoch is not None:
            row["epoch_tokens"] = epoch
            row["epoch_minutes"] = epoch / row["tokens_per_s"] / 60
        LORA_RESULTS[name] = row
        benchmark.extra_info.update(row)


def test_lora_report() -> None:
    """Tokens/s, projected epoch time and the ratio over the plain peft loop, from this run."""
    if "peft_plain_fp32" not in LORA_RESULTS:
        pytest.skip("timings need --benchmark-enable")
    base = LORA_RESULTS["peft_plain_fp32"]
    lines = ["\nLoRA SFT step on the embedded model: tokens/s (prompt + target), projected epoch of the recipe's data "
             "(minutes), and the epoch-time ratio against peft_plain_fp32"]
    for name, row in LORA_RESULTS.items():
        minutes = row.get("epoch_minutes")
        ratio = base["epoch_minutes"] / minutes if minutes and "epoch_minutes" in base else float("nan")
        lines.append(f"  {name:<18} {row['tokens_per_s']:8.1f} tok/s  {row['seconds']:7.2f} s/step  "
                     f"epoch {minutes if minutes else float('nan'):7.1f} min   x{ratio:5.2f}")
    print("\n".join(lines))
    assert set(LORA_RESULTS) == set(LORA_VARIANTS)
