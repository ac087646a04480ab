"""The constrained decoder on the compact surface: the same slots and levels as the YAML's, read from
the grammar; masks exact, fuzzed traces sound, canonical traces never blocked, and the guide takes
exactly what the checker takes."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
from test_decoding_semantics import _random_entity_trace
from typer.testing import CliRunner

from tracelang.cli import app
from tracelang.decoding.automaton import automaton
from tracelang.decoding.constraint import Constraint, compile_tokenizer, make_config
from tracelang.decoding.engine import Compiled
from tracelang.decoding.fuzz import fuzz, pick
from tracelang.decoding.guide import Levels
from tracelang.decoding.vocab import Vocab
from tracelang.formatter import format_program
from tracelang.grounding import grounder_for
from tracelang.ir import STEP_TYPES, step_fields
from tracelang.models.tokenizer_store import tiny_bpe, tiny_spm
from tracelang.numbers import Exact
from tracelang.pipeline import analyze, parse

TOKENIZERS = {"tiny-bpe": tiny_bpe, "tiny-spm": tiny_spm}
HEAD = "expert arithmetic\n"


@pytest.fixture(scope="module", params=sorted(TOKENIZERS))
def setup(request, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRACELANG_CACHE", str(tmp_path_factory.mktemp("cache")))
        tok = TOKENIZERS[request.param]()
        yield request.param, tok, compile_tokenizer(tok, surface="compact")


@pytest.fixture(scope="module")
def chars() -> Compiled:
    return Compiled(Vocab.build([bytes([b]) for b in range(128)] + [None], (128,), "bytes"), automaton("compact"))


def state(compiled: Compiled, levels: Levels = Levels(grounding=False), values=None) -> Constraint:
    return Constraint(compiled, make_config(levels, allowed_values=values))


def _clone(con: Constraint) -> Constraint:
    return con.copy()


def test_slots_carry_ir_fields_read_from_the_grammar():
    """Each slot's field comes from the IR (kind and order), not from key text; on the YAML, where the
    key text is there, the two agree."""
    for surface in ("yaml", "compact"):
        auto = automaton(surface)
        for occ in auto.nfa.occurrences:
            slot = occ.slot or next((d[1] for d in occ.decisions if d[0] == "choice"), None)
            if slot is None or slot.role == "expert" or slot.key == "op":
                continue
            cls = next(c for c in STEP_TYPES.values() if c.__name__ == slot.step)
            assert slot.key in step_fields(cls), (surface, slot)
        roles = {o.slot.role for o in auto.nfa.occurrences if o.slot}
        assert roles >= {"def", "use", "target", "num", "expert", "ref"}, (surface, roles)
    yaml = automaton("yaml")
    from tracelang.grammar import canonical_parser

    literal_keys = {m.group(1) for t in canonical_parser().terminals if t.pattern.type == "str"
                    for m in [re.search(r"(\w+): \[?$", t.pattern.value)] if m}
    slot_keys = {o.slot.key for o in yaml.nfa.occurrences if o.slot and o.slot.role != "expert"}
    assert slot_keys - {"op"} <= literal_keys and "compute_op" in slot_keys
    assert automaton("compact").rule_info["k_transfer"] == ("transfer", "TransferStep")


def test_examples_are_accepted_character_by_character_and_end(chars, root):
    for path in sorted((root / "corpora" / "examples").glob("*.yaml")):
        text = format_program(parse(path.read_text()).program, surface="compact")
        con = state(chars)
        assert con.advance_text(text), (path.name, text)
        assert con.can_end(), path.name
        assert not state(chars).advance_text(text + " ")


@pytest.mark.parametrize(("text", "where"), [
    (HEAD + "2 -> a\nadd(a, b", "scope: b is not defined"),
    (HEAD + "2 -> a\n3 -> a\n", "scope: a is defined"),
    (HEAD + "2 -> a\nadd(a, 0)", "values: adding 0 is a no-op"),
    (HEAD + "2 -> a\nadd(a, 3) -> b\nreturn a", "values: the query returns an input"),
    (HEAD + "2 -> a\nadd(a, 3) -> b\nreturn b\n2", "ops: nothing after the query"),
    (HEAD + "2 -> a\npercent_of(", "ops: arithmetic has no percent ops"),
    (HEAD + "2 -> a\ncompare.", "ops: arithmetic has no compare"),
    (HEAD + "2 -> a\ntransfer(", "ops: arithmetic has no transfer"),
    (HEAD + "2 -> a\nadd(a, 3)\n", "grammar: compute needs -> name"),
    (HEAD + "2 -> a\nadd( a", "grammar: canonical spacing"),
    (HEAD + "2 -> a\nsub(a, 3) -> b\nsub(a, 3)", "values: the same computation twice"),
    (HEAD + "2 -> a\ndiv(a, 0)", "values: division by zero"),
    (HEAD + "02", "grammar: a leading zero"),
])
def test_refusals(chars, text, where):
    assert not state(chars).advance_text(text), where
    prefix = text[:-1]
    if where.startswith(("scope", "values")):  # the level's own refusal: off, it passes
        level = where.split(":")[0]
        off = Levels(**{n: n != level and n != "grounding" for n in ("scope", "ops", "grounding", "values")})
        assert state(chars).advance_text(prefix) and state(chars, off).advance_text(text), where


def test_lines_starting_alike_are_told_apart(chars):
    """`add(` / `add_entity(`, `percent_of(` / `percent_off(`: an op is known only at the `(` after it."""
    entity = "expert entity_track\n5 -> a\n"
    assert state(chars).advance_text(entity + "add_entity(a, 2)\nadd(a, 1) -> b\nreturn b\n")
    percent = "expert percentage\n80 -> p\n25 -> r\n"
    assert state(chars).advance_text(percent + "percent_off(p, r) -> s\npercent_of(s, r) -> t\nreturn t\n")
    con = state(chars)
    assert con.advance_text(percent + "percent_of")
    assert set(bytes(chars.next_bytes(con.kid, con.guide, con.buf))) == set(b"(f")


def test_mask_equals_byte_by_byte(setup):
    _, tok, compiled = setup
    rng = np.random.default_rng(0)
    for trace in range(2):
        con = state(compiled, Levels(), values=[Exact(3), Exact(40), Exact(1, 4)])
        buf = con.new_mask()
        for _ in range(300):
            con.fill_mask(buf)
            allowed = set(con.allowed_ids())
            brute = {t for t in range(len(tok)) if _clone(con).try_advance(t)}
            assert allowed == brute, f"trace {trace}: mask differs at {con.tokens[-5:]}"
            t = pick(buf, rng, compiled.vocab.eos, 6.0)
            con.advance(t)
            if con.done:
                break


@pytest.mark.parametrize("prefix", ["", "expert entity_track\n", "block percentage\n"])
def test_fuzz_is_sound(setup, prefix):
    """Random traces under every level, on the compact surface: each checks with no error."""
    name, _, compiled = setup
    count = 0
    for _, _, sample in fuzz(compiled, 16, seed=3, prefix=prefix):
        if sample.text is None:
            continue
        count += 1
        report = analyze(sample.text, grounder=set(sample.allowed_values).__contains__)
        bad = [d for d in report.diagnostics if d.severity == "error" or d.code == "W701"]
        assert not bad and report.answer is not None, (name, sample.text, bad)
        assert format_program(report.program, surface="compact") == sample.text
    assert count >= 8


def test_importer_and_corpus_traces_pass_token_by_token(setup, root, tmp_path):
    """Completeness: canonical compact traces are never blocked, their own question grounding them."""
    _, tok, compiled = setup
    out = tmp_path / "corpus.jsonl"
    result = CliRunner().invoke(app, ["corpus", "generate", "--n", "30", "--seed", "5", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    cases = [(json.loads(line)["trace"], json.loads(line)["question"]) for line in out.read_text().splitlines()]
    cases += [(p.read_text(), None) for p in sorted((root / "corpora" / "examples").glob("*.yaml"))]
    for yaml_text, question in cases:
        text = format_program(parse(yaml_text).program, surface="compact")
        con = Constraint(compiled, make_config(Levels(grounding=question is not None), question=question))
        buf = con.new_mask()
        for t in tok.encode(text, add_special_tokens=False) + [tok.eos_token_id]:
            con.fill_mask(buf)
            assert (int(buf[t >> 5]) >> (t & 31)) & 1, (text, con.tokens)
            con.advance(t)
        if question is not None:
            assert analyze(text, grounder=grounder_for(question)).ok


def test_guide_accepts_exactly_what_the_checker_accepts(chars):
    """Random compact entity traces over a few names: the decoder takes a whole trace (and may end it)
    exactly when `check` finds no error in it, runtime errors included."""
    r = random.Random(7)
    verdicts, codes = [], set()
    for _ in range(1500):  # the YAML test's traces, written in the compact surface
        text = format_program(parse(_random_entity_trace(r)).program, surface="compact")
        report = analyze(text)
        con = state(chars)
        assert (con.advance_text(text) and con.can_end()) == report.ok, (text, report.diagnostics)
        verdicts.append(report.ok)
        codes |= {d.code for d in report.diagnostics}
    assert sum(verdicts) >= 15  # both verdicts occur (19 of 1500 valid since add_entity onto a 0 is E401 too)
    assert {"E201", "E202", "E303", "E401", "E502", "E503"} <= codes, codes


def test_closing_text_ends_a_compact_trace(chars):
    for prefix in (HEAD + "2 -> a\n3 -> b\nmul(a, ", HEAD + "2 -> a\n3 -> b\n", "block entity_track\n5 -> a\ntra"):
        con = state(chars)
        assert con.advance_text(prefix)
        closing = con.closing_text()
        assert closing is not None, prefix
        assert analyze(prefix + closing).ok, prefix + closing


# Values 1/(10**150 + k): any three of them sum past the 400-digit limit, so `add(a, b, c` can only
# close with an argument that cancels one of them (`nc`); the closing byte order alone keeps taking
# the `r...` names first, each still allowed (two more arguments would cancel it), never closing.
_HUGE = HEAD + """10 -> ten
150 -> k
1 -> one
0 -> zero
pow(ten, k) -> big
""" + "".join(f"add(big, {k}) -> d{i}\n" for i, k in enumerate((1, 3, 7, 9, 13))) + """div(one, d0) -> a
div(one, d1) -> b
div(one, d2) -> c
div(one, d3) -> rxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx0
div(one, d4) -> rxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx1
sub(zero, c) -> nc
"""


@pytest.mark.parametrize("surface", ["compact", "yaml"])
def test_closing_text_follows_the_guides_completion_where_the_byte_order_never_closes(surface):
    compiled = Compiled(Vocab.build([bytes([b]) for b in range(128)] + [None], (128,), "bytes"), automaton(surface))
    body = format_program(parse(_HUGE + "add(a, b) -> s\nreturn s\n").program, surface=surface)
    step = "add(a, b" if surface == "compact" else "{op: compute, compute_op: add, args: [a, b"
    prefix = body[:body.index(step)] + step + ", c, "
    con = state(compiled)
    assert con.advance_text(prefix)
    assert con.guide.closing_args() == (("var", "nc"),)  # the shortest completion the guide's search knows
    closing = con.closing_text()
    assert closing is not None and closing.startswith("nc"), closing
    assert analyze(prefix + closing).ok, prefix + closing


def test_cli_fuzz_writes_compact_records(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACELANG_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "fuzz.jsonl"
    result = CliRunner().invoke(app, ["decode", "fuzz", "--tokenizer", "tiny-bpe", "--n", "6", "--out", str(out),
                                      "--surface", "compact"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records and all(r["meta"]["surface"] == "compact" and parse(r["trace"]).program for r in records)
    assert all(not r["trace"].startswith("expert:") for r in records)
    assert CliRunner().invoke(app, ["check", str(out)]).exit_code == 0
    bad = CliRunner().invoke(app, ["decode", "fuzz", "--tokenizer", "tiny-bpe", "--n", "1", "--out", str(out),
                                   "--surface", "json"])
    assert bad.exit_code == 2 and "--surface takes yaml or compact" in bad.output


def test_bench_decode_times_both_surfaces_in_one_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACELANG_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "decode", "--tokenizer", "tiny-bpe", "--engines", "tracelang",
                                      "--surfaces", "yaml,compact", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    yaml_row, compact_row = data["engines"]
    assert (yaml_row["surface"], compact_row["surface"]) == ("yaml", "compact")
    assert yaml_row["rejected"] == compact_row["rejected"] == 0
    # (the tiny BPE was trained on YAML traces, so here the compact text is not the shorter one)
    assert data["tokens"] == {"yaml": yaml_row["tokens"], "compact": compact_row["tokens"]}
