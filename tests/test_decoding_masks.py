"""Token masks: exact (equal to feeding every token byte by byte), sound (fuzzed traces check with no
error), complete (corpus traces pass token by token), with token bytes read from the vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from tracelang.decoding.constraint import Constraint, compile_tokenizer, make_config, save
from tracelang.decoding.fuzz import fuzz, pick
from tracelang.decoding.guide import NAME_CAP, Levels
from tracelang.decoding.tokenizer_store import tiny_bpe, tiny_spm
from tracelang.decoding.vocab import token_bytes, tokenizer_style
from tracelang.formatter import format_program
from tracelang.numbers import Exact
from tracelang.pipeline import analyze, parse

TOKENIZERS = {"tiny-bpe": tiny_bpe, "tiny-spm": tiny_spm}


@pytest.fixture(scope="module", params=sorted(TOKENIZERS))
def setup(request, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRACELANG_CACHE", str(tmp_path_factory.mktemp("cache")))
        tok = TOKENIZERS[request.param]()
        yield request.param, tok, compile_tokenizer(tok)


def _clone(con: Constraint) -> Constraint:
    other = Constraint(con.compiled, con.config)
    other.kid, other.guide, other.buf, other.done = con.kid, con.guide, con.buf, con.done
    return other


def test_token_bytes_come_from_the_vocabulary():
    bpe, spm = tiny_bpe(), tiny_spm()
    assert tokenizer_style(bpe) == "bytelevel" and tokenizer_style(spm) == "sentencepiece"
    b = token_bytes(bpe)
    for i, piece in enumerate(bpe.convert_ids_to_tokens(list(range(len(bpe))))):
        if "Ġ" in piece and b[i] is not None:
            assert b" " in b[i] and "Ġ".encode() not in b[i]
    s = token_bytes(spm)
    pieces = spm.convert_ids_to_tokens(list(range(len(spm))))
    assert s[pieces.index("<0x0A>")] == b"\n"
    assert all(b is None for b, p in zip(s, pieces, strict=True) if p in (spm.eos_token, spm.unk_token))
    assert any(p.startswith("▁") and s[i].startswith(b" ") for i, p in enumerate(pieces))


def test_mask_equals_byte_by_byte(setup):
    """Along sampled traces, the mask is exactly the set of tokens the constraint takes."""
    _, tok, compiled = setup
    rng = np.random.default_rng(0)
    specials = set(tok.all_special_ids)
    for trace in range(2):
        con = Constraint(compiled, make_config(Levels(), allowed_values=[Exact(3), Exact(40), Exact(1, 4)]))
        buf = con.new_mask()
        for _ in range(400):
            con.fill_mask(buf)
            allowed = set(con.allowed_ids())
            brute = {t for t in range(len(tok)) if _clone(con).try_advance(t)}
            assert allowed == brute, f"trace {trace}: mask differs at {con.tokens[-5:]}"
            assert not (allowed & specials - set(compiled.vocab.eos))
            t = pick(buf, rng, compiled.vocab.eos, 6.0)
            con.advance(t)
            if con.done:
                break


def test_eos_only_at_the_end(setup):
    _, tok, compiled = setup
    con = Constraint(compiled, make_config(Levels(grounding=False)))
    text = "expert: arithmetic\ntrace:\n- {op: init, var: a, value: 2}\n"
    assert con.advance_text(text)
    assert tok.eos_token_id not in con.allowed_ids()
    assert con.advance_text("- {op: compute, compute_op: mul, args: [a, 3], var: b}\n- {op: query, var: b}\n")
    assert tok.eos_token_id in con.allowed_ids()


def test_fuzz_is_sound(setup):
    """Random traces under scope, ops, grounding and values: every one checks with no error."""
    name, _, compiled = setup
    count = 0
    for _, _, sample in fuzz(compiled, 25, seed=1):
        if sample.text is None:
            continue
        count += 1
        allowed = set(sample.allowed_values)
        report = analyze(sample.text, grounder=allowed.__contains__)
        bad = [d for d in report.diagnostics if d.severity == "error" or d.code == "W701"]
        assert not bad, (name, sample.text, bad)
        assert report.answer is not None
    assert count >= 15


def test_corpus_traces_pass_token_by_token(setup, root, tmp_path):
    """Completeness: canonical traces are never blocked, their own question's values grounding them."""
    _, tok, compiled = setup
    cases = [(format_program(parse(p.read_text()).program), None)
             for p in sorted((root / "corpora" / "examples").glob("*.yaml"))]
    from typer.testing import CliRunner

    from tracelang.cli import _load_commands, app

    _load_commands()
    out = tmp_path / "corpus.jsonl"
    try:
        result = CliRunner().invoke(app, ["corpus", "generate", "--n", "40", "--seed", "3", "--out", str(out), "-q"])
        assert result.exit_code == 0, result.output
        import json

        for line in out.read_text().splitlines():
            record = json.loads(line)
            cases.append((record["trace"], record["question"]))
    finally:
        out.unlink(missing_ok=True)
    for text, question in cases:
        con = Constraint(compiled, make_config(Levels(grounding=question is not None), question=question))
        buf = con.new_mask()
        for t in tok.encode(text, add_special_tokens=False) + [tok.eos_token_id]:
            con.fill_mask(buf)
            assert (int(buf[t >> 5]) >> (t & 31)) & 1, (text, con.tokens)
            con.advance(t)


def test_disk_cache_round_trip(setup):
    _, tok, compiled = setup
    con = Constraint(compiled, make_config(Levels(grounding=False)))
    con.advance_text("expert: arithmetic\ntrace:\n- {op: init, var: a, value: 2}\n- {op: ")
    before = con.allowed_ids()
    save(compiled)
    again = compile_tokenizer(tok, memory=False)
    assert again.info.from_disk  # type: ignore[attr-defined]
    con2 = Constraint(again, make_config(Levels(grounding=False)))
    con2.advance_text("expert: arithmetic\ntrace:\n- {op: init, var: a, value: 2}\n- {op: ")
    assert con2.allowed_ids() == before


def test_a_name_at_the_cap_is_never_a_taken_one(setup):
    """A fresh name that reaches the length cap must end there, so it may not be an existing name:
    writing ``a`` forever (what a degenerate model does) always has a way out."""
    _, tok, compiled = setup
    taken = "a" * NAME_CAP
    con = Constraint(compiled, make_config(Levels(grounding=False)))
    assert con.advance_text(f"expert: arithmetic\ntrace:\n- {{op: init, var: {taken}, value: 2}}\n")
    assert con.advance_text("- {op: init, var: " + "a" * (NAME_CAP - 1))
    assert not _clone(con).advance_text("a")  # would be the taken name, with no room to extend it
    allowed = con.allowed_ids()
    assert allowed and all(_clone(con).try_advance(t) for t in allowed)
    for t in allowed:  # whatever is taken, the name can still be finished
        other = _clone(con)
        other.advance(t)
        assert other.allowed_ids(), f"stuck after {tok.decode([t])!r}"
