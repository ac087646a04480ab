"""Token masks: exact (equal to feeding every token byte by byte), sound (fuzzed traces check with no
error), complete (corpus traces pass token by token), with token bytes read from the vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from tracelang.decoding.constraint import Constraint, compile_tokenizer, make_config, save
from tracelang.decoding.fuzz import fuzz, pick
from tracelang.decoding.guide import NAME_CAP
from tracelang.decoding.levels import Levels
from tracelang.decoding.vocab import token_bytes, tokenizer_style
from tracelang.formatter import format_program
from tracelang.grounding import grounder_for
from tracelang.models.tokenizer_store import tiny_bpe, tiny_spm
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


def test_masks_near_the_name_cap_equal_byte_by_byte(setup):
    """Close to the cap only the tokens that still fit stay in a name; those masks are built in one
    vectorised pass (and cached by length), so check each length against the byte-by-byte answer."""
    _, tok, compiled = setup
    for n in range(NAME_CAP - 12, NAME_CAP):
        con = Constraint(compiled, make_config(Levels(grounding=False)))
        assert con.advance_text("expert: arithmetic\ntrace:\n- {op: init, var: " + "b" * n)
        for _ in range(2):  # the second time from the cache
            brute = {t for t in range(len(tok)) if _clone(con).try_advance(t)}
            assert set(con.allowed_ids()) == brute, f"name of {n} characters"


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


def _idiom(text: str) -> set[str]:
    """What a single-block trace does with entities, in the study's idiom's terms."""
    found, defined, inputs = set(), set(), set()
    for step in parse(text).program.blocks[0].trace:
        source = getattr(step, "from_entity", None) or (step.entity if step.op == "consume" else None)
        if source is not None and source.name in inputs:
            found.add("changes an init")
        if step.op == "transfer" and step.to_entity.name not in defined:
            found.add("transfer to a new receiver")
        if step.op == "add_entity":
            found.add("add_entity onto a held amount" if step.entity.name in defined else "add_entity creates")
        if step.op == "init":
            inputs.add(step.var.name)
        defined.update(v.name for k in ("var", "entity", "to_entity") if (v := getattr(step, k, None)) is not None)
    return found


def test_fuzz_is_sound_on_entity_traces(setup):
    """Entity traces under every level take the study's idiom (inits changed in place, transfers to
    receivers that do not exist yet), and all check clean. (add_entity onto a held amount is rare
    under uniform sampling, where fresh names abound; IDIOM below passes it token by token.)"""
    name, _, compiled = setup
    seen: set[str] = set()
    for _, _, sample in fuzz(compiled, 12, seed=2, prefix="expert: entity_track\ntrace:\n"):
        if sample.text is None:
            continue
        report = analyze(sample.text, grounder=set(sample.allowed_values).__contains__)
        bad = [d for d in report.diagnostics if d.severity == "error" or d.code == "W701"]
        assert not bad and report.answer is not None, (name, sample.text, bad)
        seen |= _idiom(sample.text)
    assert {"changes an init", "transfer to a new receiver", "add_entity creates"} <= seen, seen


# The study's entity idiom with questions whose quantities ground the inits (and state the 1 of E401's
# exemption), beside the corpus: completeness must hold for them token by token.
IDIOM = [
    ("Ada has 16 eggs. She eats 3 and bakes with 4. She sells the rest for $2 each. How much does she make?",
     "expert: entity_track\ntrace:\n- {op: init, var: eggs, value: 16}\n- {op: consume, entity: eggs, amount: 3}\n"
     "- {op: consume, entity: eggs, amount: 4}\n- {op: init, var: price, value: 2}\n"
     "- {op: compute, compute_op: mul, args: [eggs, price], var: result}\n- {op: query, var: result}\n"),
    ("A shop has 13 items, gets 7 more and sells 8. How many are left?",
     "expert: entity_track\ntrace:\n- {op: init, var: items, value: 13}\n"
     "- {op: add_entity, entity: items, amount: 7}\n- {op: consume, entity: items, amount: 8}\n"
     "- {op: query, var: items}\n"),
    ("Bo has 35 cards and gives 13 to Cy, who had none. How many does Cy have?",
     "expert: entity_track\ntrace:\n- {op: init, var: bo, value: 35}\n"
     "- {op: transfer, from_entity: bo, to_entity: cy, amount: 13}\n- {op: query, var: cy}\n"),
    ("A car goes 40 miles per hour. How far does it go in 1 hour?",
     "expert: rate_equation\ntrace:\n- {op: init, var: speed, value: 40}\n- {op: init, var: hours, value: 1}\n"
     "- {op: compute, compute_op: mul, args: [speed, hours], var: result}\n- {op: query, var: result}\n"),
    ("3 boxes hold 4 cookies each. Dan gives 5 of the cookies away and bakes 2. How many does he have?",
     "- expert: arithmetic\n  trace:\n  - {op: init, var: boxes, value: 3}\n  - {op: init, var: per_box, value: 4}\n"
     "  - {op: compute, compute_op: mul, args: [boxes, per_box], var: result}\n  - {op: query, var: result}\n"
     "- expert: entity_track\n  trace:\n  - {op: init, var: cookies, source: prev.result}\n"
     "  - {op: transfer, from_entity: cookies, to_entity: friend, amount: 5}\n"
     "  - {op: add_entity, entity: cookies, amount: 2}\n  - {op: query, var: cookies}\n"),
]


def test_corpus_traces_pass_token_by_token(setup, root, tmp_path):
    """Completeness: canonical traces are never blocked, their own question's values grounding them."""
    _, tok, compiled = setup
    cases = [(format_program(parse(p.read_text()).program), None)
             for p in sorted((root / "corpora" / "examples").glob("*.yaml"))]
    cases += [(text, question) for question, text in IDIOM]
    for question, text in IDIOM:
        assert analyze(text, grounder=grounder_for(question)).ok, text  # the checker accepts them too
    from typer.testing import CliRunner

    from tracelang.cli import app

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
