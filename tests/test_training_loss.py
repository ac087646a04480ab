"""The fast path computes what a plain HF loop computes (and what the decoder samples from)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tracelang.decoding.constraint import Constraint, compile_tokenizer, make_config
from tracelang.models import Prompter, load_model
from tracelang.training.batching import make_batch
from tracelang.training.data import Example, tokenize
from tracelang.training.emittable import emittable_ids
from tracelang.training.masks import MaskTable, Recorder, teacher_masks
from tracelang.training.partial import PartialModel

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup():
    loaded = load_model("tiny", seed=3)
    tok = loaded.tokenizer
    pm = PartialModel(loaded.model, 1, "grammar", True, emittable_ids(tok))
    with torch.no_grad():  # make the grammar rows differ from the frozen head, as after training
        pm.head_rows.add_(0.05 * torch.randn(pm.head_rows.shape, generator=torch.Generator().manual_seed(0)))
    records = [json.loads(x) for x in (ROOT / "corpora" / "shots.jsonl").read_text().splitlines()][:3]
    prompter = Prompter(tok)
    table = MaskTable(len(pm.subset))
    recorder = Recorder(pm.subset_index.numpy(), table, len(tok))
    compiled = compile_tokenizer(tok)
    examples = []
    for r in records:
        p, t = tokenize(tok, prompter, r["question"], r["trace"])
        ex = Example(r["id"], 0, r["question"], r["answer"], r["trace"], p, t)
        ex.masks = teacher_masks(Constraint(compiled, make_config(question=r["question"])), t, recorder)
        assert ex.masks is not None
        examples.append(ex)
    return loaded, pm, table, examples


def _naive_logits(pm: PartialModel, loaded, ex: Example) -> torch.Tensor:
    """Logits of the whole model on one unpadded example, with the trained rows in the head."""
    with pm.serving() as model:
        return model(input_ids=torch.tensor([ex.input_ids])).logits[0, ex.first_scored:]


def test_split_reproduces_the_model(setup) -> None:
    loaded, pm, _, examples = setup
    assert pm.verify_split(torch.tensor([examples[0].input_ids])) < 1e-5


def test_full_vocabulary_loss_is_the_models_own(setup) -> None:
    loaded, pm, _, examples = setup
    batch = make_batch(examples, loaded.tokenizer.pad_token_id)
    ours = pm(batch, "full")
    naive = torch.cat([torch.log_softmax(_naive_logits(pm, loaded, ex), -1)
                       .gather(1, torch.tensor(ex.target_ids)[:, None])[:, 0] for ex in examples])
    assert torch.allclose(ours, naive, atol=1e-5)
    # and HF's own loss (labels, prompt masked) is minus their mean, with the untouched head
    plain = PartialModel(load_model("tiny", seed=3).model, 1, "none", True)
    ex = examples[0]
    ids = torch.tensor([ex.prompt_ids + ex.target_ids])
    labels = ids.clone()
    labels[0, :len(ex.prompt_ids)] = -100
    hf = plain.model(input_ids=ids, labels=labels).loss
    assert torch.allclose(-plain(make_batch([ex], 0), "full").mean(), hf, atol=1e-5)


def test_grammar_loss_is_the_softmax_over_the_emittable_tokens(setup) -> None:
    loaded, pm, _, examples = setup
    ours = pm(make_batch(examples, loaded.tokenizer.pad_token_id), "grammar")
    naive = []
    for ex in examples:
        logits = _naive_logits(pm, loaded, ex)[:, pm.subset]
        s = pm.subset_index[torch.tensor(ex.target_ids)]
        naive.append(torch.log_softmax(logits, -1).gather(1, s[:, None])[:, 0])
    assert torch.allclose(ours, torch.cat(naive), atol=1e-5)


def test_constrained_loss_is_the_decoders_renormalised_likelihood(setup) -> None:
    loaded, pm, table, examples = setup
    ours = pm(make_batch(examples, loaded.tokenizer.pad_token_id, table), "constrained")
    compiled = compile_tokenizer(loaded.tokenizer)
    naive = []
    for ex in examples:
        logits = _naive_logits(pm, loaded, ex)
        con = Constraint(compiled, make_config(question=ex.question))
        buf = con.new_mask()
        for j, t in enumerate(ex.target_ids):
            con.fill_mask(buf)
            allowed = np.flatnonzero(np.unpackbits(buf.view(np.uint8), bitorder="little"))
            allowed = torch.from_numpy(allowed[allowed < logits.shape[1]])
            lp = torch.log_softmax(logits[j, allowed], -1)
            naive.append(lp[(allowed == t).nonzero()[0, 0]])
            con.advance(t)
    assert torch.allclose(ours, torch.stack(naive), atol=1e-5)
    assert bool((ours <= 0).all())


def test_cached_prefix_gives_the_same_loss(setup) -> None:
    loaded, pm, table, examples = setup
    states = [pm.prefix(torch.tensor([ex.input_ids]))[0] for ex in examples]
    a = pm(make_batch(examples, loaded.tokenizer.pad_token_id, table), "constrained")
    b = pm(make_batch(examples, loaded.tokenizer.pad_token_id, table, states), "constrained")
    assert torch.allclose(a, b, atol=1e-5)


def test_every_token_the_decoder_allows_is_in_the_grammar_subset(setup) -> None:
    loaded, pm, _, examples = setup
    # teacher_masks raised if any allowed token were outside; also: the targets are all inside
    for ex in examples:
        assert all(int(pm.subset_index[t]) >= 0 for t in ex.target_ids)
    tok = loaded.tokenizer
    outside = [i for i in range(len(tok)) if int(pm.subset_index[i]) < 0]
    assert outside  # the subset is a real restriction on this vocabulary
    text = "".join(tok.convert_ids_to_tokens(outside[:50]))
    assert text  # tokens the grammar can never emit exist (pad, and pieces such as non-canonical spacing)


def test_parameters_that_train(setup) -> None:
    loaded, pm, _, _ = setup
    names = set(pm.trained_parameters())
    assert "head_rows" in names and "model.model.norm.weight" in names
    assert all(n.startswith("model.model.layers.1.") or n in ("head_rows", "model.model.norm.weight") for n in names)
    assert not pm.model.get_input_embeddings().weight.requires_grad
    full = PartialModel(load_model("tiny").model, 1, "full", True)
    assert full.tied and not full.prefix_frozen  # tied head: the embeddings train too
    assert any("embedding matrix" in line for line in full.describe())


def test_float32_head_under_bf16_autocast(setup) -> None:
    """head_dtype float32: the body may run in bf16, the logits and the loss do not (bf16 logits of a
    confident model round off as much as the loss itself; every bf16-head run of the embedded model
    diverged)."""
    from tracelang.training.logprobs import target_logprobs

    loaded, pm, _, examples = setup
    batch = make_batch(examples, loaded.tokenizer.pad_token_id)
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            coarse = pm(batch, "grammar")
            h = pm.hidden(batch)
            pm.head_dtype = torch.float32
            fine = pm(batch, "grammar")
        h_sel = h.float().reshape(-1, h.shape[-1]).index_select(0, batch.pred_pos)
        with torch.no_grad():
            reference = target_logprobs(pm, h_sel, batch.targets, "grammar", None)
    finally:
        pm.head_dtype = None
    assert coarse.dtype == torch.bfloat16 and fine.dtype == torch.float32
    assert torch.equal(fine, reference)  # the same hidden states, the head in float32
    assert not torch.equal(coarse.float(), reference)
