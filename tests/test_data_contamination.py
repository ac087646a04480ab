"""The contamination guard: detectors, the writer that refuses, the CLI command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracelang.cli import app
from tracelang.data.contamination import Guard, load_guard, tokens, write_guarded
from tracelang.record import make_record

REFERENCE = [
    ("ref-0", "A farmer plants 120 rows of corn with 45 stalks in each row and sells the corn at the market on "
              "Saturday morning. How many stalks does he plant?"),
    ("ref-1", "Mia reads 12 pages on Monday and 30 pages on Tuesday."),
    ("ref-2", "The aquarium keeps 14 sharks, 36 rays and 250 small fish in one big tank near the entrance."),
]


@pytest.fixture()
def guard() -> Guard:
    return Guard.from_questions(REFERENCE)


def test_tokens_normalise_numbers() -> None:
    assert tokens("It cost $1,200.50 or 3.0 Dollars!") == ["it", "cost", "1200.5", "or", "3", "dollars"]


def test_long_ngram_even_with_new_numbers(guard: Guard) -> None:
    copy = ("Last year a farmer plants 90 rows of corn with 30 stalks in each row and sells the corn at the "
            "market on Sunday.")
    match = guard.check(copy)
    assert match is not None and match.kind == "ngram" and match.reference_id == "ref-0"
    assert guard.refuses(copy)


def test_short_question_with_new_numbers(guard: Guard) -> None:
    match = guard.check("Mia reads 7 pages on Monday and 9 pages on Tuesday.")
    assert match is not None and match.kind == "ngram" and match.reference_id == "ref-1"
    assert match.detail == "mia reads # pages on monday and # pages on tuesday"


def test_skeleton_same_numbers_reworded(guard: Guard) -> None:
    match = guard.check("Near the entrance, one big tank holds 250 small fish, 36 rays and also 14 sharks.")
    assert match is not None and match.kind == "skeleton" and match.detail == "14 250 36"


@pytest.mark.parametrize("question", [
    "A gardener sets out 120 pots and waters 45 of them before lunch.",  # same numbers, other story
    "Mia reads 12 pages.",  # a short text matches only the whole of another
    "The aquarium opened a new wing for turtles and frogs last spring.",
])
def test_clean_questions_pass(guard: Guard, question: str) -> None:
    assert guard.check(question) is None


def test_write_guarded_refuses_unless_allowed(tmp_path: Path, guard: Guard) -> None:
    records = [make_record("a", "Mia reads 2 pages on Monday and 3 pages on Tuesday.", "t", "5", "arithmetic", "x"),
               make_record("b", "Theo owns 4 bikes and 2 scooters.", "t", "6", "arithmetic", "x"),
               make_record("c", None, "t", "1", "arithmetic", "x")]
    out = tmp_path / "out.jsonl"
    summary = write_guarded(out, records, guard)
    assert summary.written == 2 and [rid for rid, _ in summary.refused] == ["a"]
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["b", "c"]
    summary = write_guarded(out, records, guard, allow_contaminated=True)
    assert summary.written == 3 and [rid for rid, _ in summary.allowed] == ["a"]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_cli_contamination(tmp_path: Path) -> None:
    reference = _write(tmp_path / "test.jsonl", [{"question": q, "answer": "#### 1"} for _, q in REFERENCE])
    corpus = _write(tmp_path / "corpus.jsonl", [
        make_record("r1", "Mia reads 5 pages on Monday and 6 pages on Tuesday.", "t", "11", "arithmetic", "x"),
        make_record("r2", "Theo owns 4 bikes and 2 scooters.", "t", "6", "arithmetic", "x"),
    ])
    result = CliRunner().invoke(app, ["corpus", "contamination", str(corpus), "--against", str(reference)])
    assert result.exit_code == 1, result.output
    assert "r1 ngram gsm8k-test-00001" in result.output
    assert "2 questions checked against 3" in result.output and "1 contaminated" in result.output
    result = CliRunner().invoke(app, ["corpus", "contamination", str(corpus), "--against", str(reference),
                                      "--format", "json"])
    assert [json.loads(line)["id"] for line in result.output.splitlines()] == ["r1"]
    clean = _write(tmp_path / "clean.jsonl", [make_record("r2", "Theo owns 4 bikes.", "t", "4", "arithmetic", "x")])
    result = CliRunner().invoke(app, ["corpus", "contamination", str(clean), "--against", str(reference)])
    assert result.exit_code == 0 and "0 contaminated" in result.output


def test_cli_contamination_bad_input(tmp_path: Path) -> None:
    reference = _write(tmp_path / "test.jsonl", [{"question": "x"}])
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "question": "q"}\n{not json\n')
    result = CliRunner().invoke(app, ["corpus", "contamination", str(broken), "--against", str(reference)])
    assert result.exit_code == 2 and "broken.jsonl:2:2: not JSON" in result.output
    result = CliRunner().invoke(app, ["corpus", "contamination", str(tmp_path / "none.jsonl"), "--against",
                                      str(reference)])
    assert result.exit_code == 2 and "none.jsonl" in result.output


def test_load_guard_reads_gsm8k_rows(tmp_path: Path) -> None:
    path = _write(tmp_path / "test.jsonl", [{"question": q, "answer": "#### 1"} for _, q in REFERENCE])
    guard = load_guard(path)
    assert len(guard) == 3 and guard.ids[2] == "gsm8k-test-00002"
