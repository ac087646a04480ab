"""The shared record schema and the fixed dev split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracelang.data.gsm8k import gold_answer, problem_id, split_of_path
from tracelang.data.splits import DEV_SIZE, dev_ids, is_evaluation_only, split_of
from tracelang.fileio import InputError
from tracelang.numbers import Exact
from tracelang.record import FIELDS, RecordError, make_record, read_records, validate, write_records


def test_make_record_orders_fields_and_renders_answers() -> None:
    record = make_record("x-1", "q?", "trace", Exact(7, 2), "arithmetic", "synthetic:test", {"k": 1})
    assert tuple(record) == FIELDS and record["answer"] == "3.5"
    assert make_record("x-2", None, "t", 12, "arithmetic", "s")["answer"] == "12"


@pytest.mark.parametrize(("record", "message"), [
    ([], "not a JSON object"),
    ({"id": "a"}, "missing field `question`"),
    ({**make_record("a", "q", "t", "1", "e", "s"), "meta": []}, "field `meta` must be dict"),
    ({**make_record("a", "q", "t", "1", "e", "s"), "answer": 3}, "field `answer` must be str or null"),
    ({**make_record("a", "q", "t", "1", "e", "s"), "extra": 1}, "unknown field `extra`"),
])
def test_validate_names_the_problem(record: object, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        validate(record, "here")


def test_round_trip_and_errors_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    records = [make_record(f"id-{i}", "q", "t", str(i), "arithmetic", "s") for i in range(3)]
    assert write_records(path, records) == 3
    assert list(read_records(path)) == records
    path.write_text(path.read_text() + json.dumps({"id": "bad"}) + "\n")
    with pytest.raises(InputError, match=r"r.jsonl:4: missing field `question`"):
        list(read_records(path))


def test_write_is_all_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("old\n")
    good = make_record("a", "q", "t", "1", "arithmetic", "s")
    with pytest.raises(RecordError):
        write_records(path, [good, {"id": "broken"}])
    assert path.read_text() == "old\n" and list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(("solution", "gold"), [
    ("... so 72.\n#### 72", Exact(72)),
    ("#### 1,200", Exact(1200)),
    ("#### -5", Exact(-5)),
    ("#### $3.50", Exact(7, 2)),
    ("no answer line", None),
    ("#### many", None),
])
def test_gold_answer(solution: str, gold: Exact | None) -> None:
    assert gold_answer(solution) == gold


def test_ids_and_split_names() -> None:
    assert problem_id("train", 12) == "gsm8k-train-00012"
    assert split_of_path("/data/gsm8k/test.jsonl") == "test" and split_of_path("hf:openai/gsm8k:train") == "train"


def test_dev_split_is_fixed_and_seeded() -> None:
    ids = dev_ids()
    assert len(ids) == DEV_SIZE and all(i.startswith("gsm8k-train-") for i in ids)
    assert ids == dev_ids(DEV_SIZE)  # cached and deterministic
    assert dev_ids(DEV_SIZE, seed=1) != ids
    # the split is pinned: a change of seed or algorithm shows up here
    assert sorted(ids)[:3] == ["gsm8k-train-00019", "gsm8k-train-00032", "gsm8k-train-00035"]
    assert max(int(i[-5:]) for i in ids) < 7473
    inside, outside = sorted(ids)[0], next(problem_id("train", n) for n in range(7473)
                                             if problem_id("train", n) not in ids)
    assert split_of(inside) == "dev" and split_of(outside) == "train"
    assert split_of("gsm8k-test-00003") == "test" and is_evaluation_only("gsm8k-test-00003")
    assert split_of("synthetic-1") == "other" and not is_evaluation_only(inside)
    with pytest.raises(ValueError):
        dev_ids(8000)
