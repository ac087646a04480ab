"""A slice of real GSM-8K train through the importer (skipped where ../shared/data/gsm8k is absent).
Reads the data at run time; nothing of it is stored in the repository."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest

from tracelang.data.gsm8k import load
from tracelang.data.importer import import_problems
from tracelang.grounding import grounder_for
from tracelang.pipeline import analyze

TRAIN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gsm8k" / "train.jsonl"
SLICE = 300

pytestmark = pytest.mark.skipif(not TRAIN.is_file(), reason="GSM-8K not present at ../shared/data/gsm8k")


def test_imported_traces_check_clean_and_match_gold() -> None:
    problems = list(islice(load(str(TRAIN)), SLICE))
    records, report = import_problems(problems)
    assert report.total == SLICE and report.coverage >= 0.9
    gold = {p.id: p.gold for p in problems}
    for record in records:
        result = analyze(record["trace"], expected=gold[record["id"]], grounder=grounder_for(record["question"]))
        assert result.ok and result.correct, record["id"]
        codes = [d.code for d in result.diagnostics]
        assert set(codes) <= {"W701"}, (record["id"], codes)  # no W201, no errors
        assert codes.count("W701") == record["meta"].get("warnings", {}).get("W701", 0)
        assert record["source"] == "gsm8k-train" and record["meta"]["split"] in ("train", "dev")
    assert sum(report.failures.values()) == report.total - report.converted
