"""Generation with the constraint: our loop (KV cache, fast-forward, batches) and the
``transformers`` LogitsProcessor, on a tiny random model."""

from __future__ import annotations

import pytest
import torch
from transformers import LogitsProcessorList

from tracelang.decoding.constraint import Constraint, compile_tokenizer, make_config
from tracelang.decoding.generate import PrefixCache, generate
from tracelang.decoding.hf import TraceLogitsProcessor
from tracelang.decoding.levels import Levels
from tracelang.models.tiny_model import tiny_model
from tracelang.models.tokenizer_store import tiny_bpe, tiny_spm
from tracelang.pipeline import analyze

LEVELS = Levels(grounding=False)


@pytest.fixture(scope="module")
def spm():
    tok = tiny_spm()
    return tok, tiny_model(tok, seed=0), compile_tokenizer(tok, disk=False)


@pytest.fixture(scope="module")
def bpe():
    tok = tiny_bpe()
    return tok, tiny_model(tok, seed=1), compile_tokenizer(tok, disk=False)


def test_sampled_traces_are_valid(bpe):
    tok, model, compiled = bpe
    results = generate(model, tok, ["Q: one\n", "Q: two\n"], lambda i: Constraint(compiled, make_config(LEVELS)),
                       max_new_tokens=300, temperature=1.0, seed=4)
    finished = [r for r in results if r.finished]
    assert finished
    for r in finished:
        report = analyze(r.text)
        assert report.ok and report.answer is not None, r.text
        assert r.forced > 0  # fast-forward took the forced text
        assert len(r.logprobs) == len(r.token_ids)


def test_fast_forward_writes_the_same_tokens_in_fewer_passes(spm):
    tok, model, compiled = spm
    text = ("expert: arithmetic\ntrace:\n- {op: init, var: price, value: 12}\n- {op: init, var: hours, value: 3}\n"
            "- {op: compute, compute_op: mul, args: [price, hours], var: total}\n- {op: query, var: total}\n")
    ref = tok.encode(text, add_special_tokens=False) + [tok.eos_token_id]
    runs = {}
    for ff in (False, True):
        [r] = generate(model, tok, ["Q: x\n"], lambda i: Constraint(compiled, make_config(LEVELS)), reference=[ref],
                       max_new_tokens=len(ref) + 1, fast_forward=ff)
        runs[ff] = r
    assert runs[False].token_ids == runs[True].token_ids == ref
    assert runs[True].forward_passes < runs[False].forward_passes


def test_logits_processor_in_model_generate(bpe):
    tok, model, compiled = bpe
    enc = tok(["Q: a\n", "Q: bb bb\n"], return_tensors="pt", padding=True, padding_side="left")
    proc = TraceLogitsProcessor(lambda i: Constraint(compiled, make_config(LEVELS)), enc.input_ids.shape[1])
    torch.manual_seed(0)
    out = model.generate(**enc, logits_processor=LogitsProcessorList([proc]), do_sample=True, max_new_tokens=200,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    ended = 0
    for row in out[:, enc.input_ids.shape[1]:].tolist():
        if tok.eos_token_id in row:
            ended += 1
            report = analyze(tok.decode(row, skip_special_tokens=True))
            assert report.ok, report.diagnostics
    assert ended


PREFIX = "Worked examples come first, shared by every row of the batch. " * 3


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_batched_rows_equal_rows_alone(arch):
    """The shared prefix computed once (and reused from the cache), suffixes of different lengths,
    finished rows leaving the batch: every row is what it would be generated alone. The Gemma-3
    model's window (16) is shorter than the prompts, so a pad between real tokens would show."""
    tok = tiny_spm()
    model = tiny_model(tok, seed=3, layers=3, arch=arch)
    compiled = compile_tokenizer(tok, disk=False)
    prompts = [PREFIX + q for q in ("Q: a\n", "Q: bb bb bb bb\n", "Q: c c\n")]

    def run(batch: list[str], cache: PrefixCache | None) -> list[str]:
        out = generate(model, tok, batch, lambda i: Constraint(compiled, make_config(LEVELS)), max_new_tokens=70,
                       prefix_cache=cache)
        return [r.text for r in out]

    alone = [run([p], None)[0] for p in prompts]
    cache = PrefixCache()
    assert run(prompts, cache) == alone
    assert run(prompts, cache) == alone and cache.hits == 1


def test_pads_between_real_tokens_leave_a_sliding_window_as_it_is():
    """Row 0 feeds one token a step, row 1 four (a fast-forward run), so row 0 gathers pads
    between its real tokens. Its logits must be those of feeding it alone, though its real tokens
    soon span more cache columns than the model's window (8)."""
    from tracelang.decoding.generate import _Rows

    tok = tiny_spm()
    model = tiny_model(tok, seed=4, layers=2, arch="gemma3", sliding_window=8)
    gen = torch.Generator().manual_seed(0)
    steps = [(torch.randint(5, 200, (1,), generator=gen).tolist(), torch.randint(5, 200, (4,), generator=gen).tolist())
             for _ in range(8)]
    prompt = [torch.randint(5, 200, (6,), generator=gen).tolist()] * 2
    with torch.no_grad():
        both, alone = _Rows(model, tok.pad_token_id), _Rows(model, tok.pad_token_id)
        for rows, n in ((both, 2), (alone, 1)):
            rows.attn, rows.next_pos = torch.zeros((n, 0), dtype=torch.long), torch.zeros(n, dtype=torch.long)
        both.feed(prompt, left=True)
        alone.feed(prompt[:1], left=True)
        for a, b in steps:
            together = both.feed([a, b])[0]
            torch.testing.assert_close(together, alone.feed([a])[0], rtol=1e-4, atol=1e-4)
    assert both.attn.shape[1] > alone.attn.shape[1] + 8  # row 0 did sit among pads wider than its window


def test_a_running_out_budget_still_ends_in_a_valid_trace(bpe):
    """A random model wanders; when its budget is about to run out the trace is closed for it."""
    tok, model, compiled = bpe
    results = generate(model, tok, ["Q: one\n", "Q: two\n", "Q: three\n"],
                       lambda i: Constraint(compiled, make_config(LEVELS)), max_new_tokens=60, temperature=1.0,
                       seed=5)
    assert any(r.stats.get("closed") for r in results)
    for r in results:
        assert r.finished and len(r.token_ids) <= 60
        report = analyze(r.text)
        assert report.ok and report.answer is not None, (r.text, report.diagnostics)


def test_unconstrained_rows_stop_at_stop_strings(bpe):
    tok, model, _ = bpe
    out = generate(model, tok, ["Q: one\n", "Q: two two\n"], None, max_new_tokens=40, temperature=1.0, seed=2,
                   stop_strings=["e", "\n"])
    for r in out:
        assert "e" not in r.text and "\n" not in r.text
        assert len(r.token_ids) < 40


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_logits_over_a_vocabulary_subset_equal_the_full_head(arch):
    from tracelang.decoding.generate import _Rows

    tok = tiny_spm()
    model = tiny_model(tok, seed=4, arch=arch)
    rows = [[5, 9, 13, 40], [7, 8]]
    vocab = torch.tensor([3, 17, 64, 200, len(tok) - 1])
    outs = []
    for v in (None, vocab):
        state = _Rows(model, tok.pad_token_id)
        state.attn, state.next_pos = torch.zeros((2, 0), dtype=torch.long), torch.zeros(2, dtype=torch.long)
        outs.append(state.feed(rows, left=True, vocab=v))
        outs.append(state.feed([[11], [12, 14]], vocab=v))  # the cache each left behind is the same
    assert state.head is not None
    for full, sub in ((outs[0], outs[2]), (outs[1], outs[3])):
        assert torch.allclose(full[:, vocab], sub[:, vocab], atol=1e-5)
        rest = torch.ones(full.shape[1], dtype=torch.bool)
        rest[vocab] = False
        assert torch.isinf(sub[:, rest]).all()
