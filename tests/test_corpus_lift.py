"""Lifting GSM-8K train problems: new numbers in the question's own words, the trace re-executed.

The unit tests use problems written for these tests; the last test reads GSM-8K train at run time
(skipped when the data is absent) and stores none of it.
"""

from __future__ import annotations

import re
from itertools import islice
from pathlib import Path
from random import Random

import pytest

from tracelang.corpus.lift import LiftSource, TrainError, plan, train_records
from tracelang.grounding import grounder_for
from tracelang.pipeline import analyze

GSM8K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gsm8k"

STICKERS = {
    "id": "demo-1",
    "question": "Mira has 24 stickers. She buys 3 packs with 8 stickers in each pack and gives 10 to her "
                "brother. How many stickers does she have now?",
    "trace": """expert: arithmetic
trace:
- {op: init, var: stickers, value: 24}
- {op: init, var: packs, value: 3}
- {op: init, var: per_pack, value: 8}
- {op: init, var: given, value: 10}
- {op: compute, compute_op: mul, args: [packs, per_pack], var: bought}
- {op: compute, compute_op: add, args: [stickers, bought], var: total}
- {op: compute, compute_op: sub, args: [total, given], var: result}
- {op: query, var: result}
""",
}

COAT = {
    "id": "demo-2",
    "question": "A coat costs $80 and is 25% off. What does it cost now?",
    "trace": """expert: percentage
trace:
- {op: init, var: price, value: 80}
- {op: init, var: kept_percent, value: 75}
- {op: percent_of, base: price, rate: kept_percent, var: result}
- {op: query, var: result}
""",
}


def numbers(text: str) -> list[str]:
    return re.findall(r"\d+(?:\.\d+)?", text)


def test_lifted_problem_keeps_its_words_and_checks_clean() -> None:
    p = plan(STICKERS)
    assert p is not None and {c.value for c in p.classes} == {24, 3, 8, 10}
    source = LiftSource([p])
    rng = Random(2)
    seen = set()
    for _ in range(30):
        record = source.make(rng)
        assert record is not None
        question = record["question"]
        assert re.sub(r"\d+", "#", question) == re.sub(r"\d+", "#", STICKERS["question"])
        stickers, packs, per_pack, given = (int(n) for n in numbers(question))
        assert int(record["answer"]) == stickers + packs * per_pack - given > 0
        report = analyze(record["trace"], expected=record["answer"], grounder=grounder_for(question))
        assert report.correct and not report.diagnostics
        assert record["source"] == "synthetic:gsm8k-lift" and record["meta"]["origin"] == "demo-1"
        seen.add(question)
    assert len(seen) > 20


def test_a_quantity_used_through_a_derived_value_is_not_lifted() -> None:
    p = plan(COAT)
    assert p is not None and [c.value for c in p.classes] == [80]  # 25% stays: the trace uses 75
    record = LiftSource([p]).make(Random(0))
    assert record is not None and "25% off" in record["question"]
    price = int(numbers(record["question"])[0])
    assert analyze(record["trace"]).answer == price * 3 // 4


def test_problems_that_cannot_be_lifted_safely_are_left_out() -> None:
    unused = dict(STICKERS, question=STICKERS["question"].replace("Mira has", "Mira, who is 9, has"))
    assert plan(unused) is None  # 9 feeds no init: it might depend on the others
    assert plan(dict(STICKERS, meta={"warnings": {"W701": 1}})) is None
    assert plan(dict(STICKERS, trace="expert: arithmetic\ntrace:\n- {op: query, var: x}\n")) is None
    assert plan({"question": None, "trace": STICKERS["trace"]}) is None


def test_test_split_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "test.jsonl"
    path.write_text('{"question": "q", "answer": "#### 1"}\n', encoding="utf-8")
    with pytest.raises(TrainError, match="evaluation only"):
        train_records(str(path))


@pytest.mark.skipif(not (GSM8K / "train.jsonl").exists(), reason="GSM-8K is not present")
def test_lifting_gsm8k_train_problems() -> None:
    from tracelang.data.gsm8k import load
    from tracelang.data.importer import convert

    records = [c.record for c in (convert(p) for p in islice(load(str(GSM8K / "train.jsonl")), 150)) if c.record]
    source = LiftSource.from_records(records)
    assert len(source.plans) > 0.6 * len(records)
    rng = Random(0)
    made = [r for r in (source.make(rng) for _ in range(120)) if r is not None]
    assert len(made) > 100
    originals = {r["id"]: r["question"] for r in records}
    for record in made:
        report = analyze(record["trace"], expected=record["answer"], grounder=grounder_for(record["question"]))
        assert report.correct and not report.diagnostics, record
        original = originals[record["meta"]["origin"]]
        assert record["question"] != original
        assert len(record["question"].split()) == len(original.split())  # the same words, new numbers
