"""Importing all of GSM-8K train (7,473 problems) as checked traces, against two baselines in the
same run: reading the problems only (the I/O and JSON floor), and checking + executing the traces
the import produced (what `tracelang check` does with the output; the importer does that and the
conversion). Needs ../shared/data/gsm8k/train.jsonl, read at run time.

Run: ``pytest benchmarks/bench_importer.py --benchmark-enable`` (or ``make bench``).
"""

from __future__ import annotations

import pytest

from tracelang.data.gsm8k import load
from tracelang.data.importer import import_problems
from tracelang.grounding import grounder_for
from tracelang.pipeline import analyze

from .conftest import GSM8K

TRAIN = GSM8K / "train.jsonl"
pytestmark = pytest.mark.skipif(not TRAIN.is_file(), reason="GSM-8K train not present")
GROUP = "GSM-8K train: 7,473 problems"


def _read() -> list:
    return list(load(str(TRAIN)))


def _import() -> int:
    records, report = import_problems(load(str(TRAIN)))
    assert report.total == 7473
    return len(records)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return import_problems(load(str(TRAIN))).records


def _check(records: list[dict]) -> int:
    ok = 0
    for r in records:
        ok += analyze(r["trace"], expected=r["answer"], grounder=grounder_for(r["question"])).correct
    return ok


@pytest.mark.benchmark(group=GROUP)
def test_read_only_baseline(benchmark) -> None:
    problems = benchmark.pedantic(_read, rounds=3, iterations=1)
    assert len(problems) == 7473


@pytest.mark.benchmark(group=GROUP)
def test_check_output_baseline(benchmark, records: list[dict]) -> None:
    assert benchmark.pedantic(_check, args=(records,), rounds=3, iterations=1) == len(records)


@pytest.mark.benchmark(group=GROUP)
def test_import_all_of_train(benchmark) -> None:
    converted = benchmark.pedantic(_import, rounds=3, iterations=1)
    benchmark.extra_info["converted"] = converted
    assert converted >= 0.95 * 7473
