"""A level is a registered rule set the guide consults: a test-only level, registered here with no
tracelang module edited, refuses a second block (its ``allows`` hook) and the `pow` compute op (its
``narrow`` hook). Names parse to it, the guide honours it token by token, and fuzzing with it on
writes traces that check clean, none with either, where the same fuzz without it writes both."""

from __future__ import annotations

import pytest

from tracelang import analyze
from tracelang.decoding import levels as registry
from tracelang.decoding.constraint import Constraint, compile_tokenizer, make_config
from tracelang.decoding.fuzz import fuzz
from tracelang.decoding.levels import Level, Levels
from tracelang.models.tokenizer_store import tiny_bpe

POW = ("expert: arithmetic\ntrace:\n- {op: init, var: a, value: 2}\n"
       "- {op: compute, compute_op: pow, args: [a, 3], var: b}\n")
FIRST = ("- expert: arithmetic\n  trace:\n  - {op: init, var: a, value: 2}\n"
         "  - {op: compute, compute_op: add, args: [a, 3], var: b}\n  - {op: query, var: b}\n")


class Plain(Level):
    """One block, and no `pow`."""

    def allows(self, guide, decision: tuple) -> bool:
        return not (decision[0] == "block" and guide.block is not None)

    def narrow(self, guide, slot, answer):
        if slot.key == "compute_op" and answer[0] == "allow":
            return "allow", tuple(op for op in answer[1] if op != "pow")
        return answer


@pytest.fixture(autouse=True)
def plain(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACELANG_CACHE", str(tmp_path / "cache"))
    registry.register(Plain("plain", "one block, no pow"))
    yield
    registry.unregister("plain")


@pytest.fixture(scope="module")
def compiled():
    return compile_tokenizer(tiny_bpe())


def test_the_level_is_registered_and_parsed_by_name() -> None:
    assert list(registry.LEVELS)[-1] == "plain"
    on = Levels.parse("scope,plain")
    assert on.names == ("scope", "plain") and [r.name for r in on.rules] == ["plain"]
    assert Levels() == Levels.parse("all") and "plain" in Levels().names  # on by default, as the others
    assert Levels(plain=False) == Levels.parse("scope,ops,grounding,values") and not Levels(plain=False).rules
    assert Levels.none().without() == Levels.parse("none")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Level("plain", "twice"))
    with pytest.raises(ValueError, match="built in"):
        registry.unregister("scope")


def test_the_guide_honours_its_refusals(compiled) -> None:
    for base in ("none", "scope,ops,grounding,values"):
        off = Levels.parse(base)
        on = Levels.of((*off.names, "plain"))
        assert Constraint(compiled, make_config(off)).advance_text(POW), base
        assert not Constraint(compiled, make_config(on)).advance_text(POW), base  # narrow: no `pow`
        con = Constraint(compiled, make_config(on))
        assert con.advance_text(POW.replace("pow", "mul"))  # the other compute ops stay
        assert Constraint(compiled, make_config(off)).advance_text(FIRST + FIRST), base
        con = Constraint(compiled, make_config(on))
        assert con.advance_text(FIRST) and con.can_end(), base  # one block, and it may end there
        assert not con.advance_text(FIRST), base  # allows: no second block


def test_fuzzing_with_it_is_clean_and_shows_it(compiled) -> None:
    def run(levels: Levels) -> tuple[int, int, int]:
        n = pows = multi = 0
        for _, _, sample in fuzz(compiled, 30, seed=3, levels=levels):
            assert sample.text is not None  # no dead end
            n += 1
            pows += "compute_op: pow" in sample.text
            multi += sample.text.count("expert:") > 1
            report = analyze(sample.text, grounder=set(sample.allowed_values).__contains__)
            bad = [d for d in report.diagnostics if d.severity == "error" or d.code == "W701"]
            assert not bad and report.answer is not None, (sample.text, bad)
        return n, pows, multi

    n, pows, multi = run(Levels(plain=False))
    assert n == 30 and pows > 0 and multi > 0
    assert run(Levels()) == (30, 0, 0)
