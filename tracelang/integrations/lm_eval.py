"""Scoring for the lm-evaluation-harness task in ``integrations/lm_eval/tracelang_gsm8k.yaml``:
the model's completion is a trace; tracelang checks and executes it, grounded in the document's
question, and the exact answer is compared with the gold one, as `tracelang eval` grades.

With lm-eval's ``hf`` model the completion is decoded without tracelang's grammar constraint, so a
model trained for constrained decoding (the shipped one) scores lower there than in `tracelang
eval`; the ``tracelang`` model (``lm_eval_model``) decodes under the constraint and scores the same."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..fileio import InputError, read_jsonl
from ..grounding import grounder_for
from ..numbers import answer_value
from ..pipeline import analyze

# Appended by the ``tracelang`` lm-eval model to a trace the decoder closed when the token budget ran
# out: whatever such a trace runs to is the decoder's answer, not the model's, so it scores 0.
BUDGET_CLOSED_NOTE = "# tracelang: closed by the decoder at the token budget; not an answer\n"


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """lm-eval's per-document hook: ``results[0]`` is the generated text."""
    gold = answer_value(doc.get("answer", ""))
    text = results[0] if results else ""
    if gold is None or text.endswith(BUDGET_CLOSED_NOTE):  # no exact gold, or not the model's answer
        return {"exact_match": 0.0}
    report = analyze(text, expected=gold, grounder=grounder_for(doc.get("question") or ""))
    return {"exact_match": float(bool(report.correct))}


def local_file(data_file: str | None = None) -> Path:
    """The local task's file: ``data_file`` (lm-eval ``--metadata``), else GSM-8K's test.jsonl in
    $TRACELANG_GSM8K or ../shared/data/gsm8k."""
    if data_file:
        return Path(data_file)
    for folder in (os.environ.get("TRACELANG_GSM8K"), "../shared/data/gsm8k"):
        if folder and (Path(folder) / "test.jsonl").is_file():
            return Path(folder) / "test.jsonl"
    raise InputError("tracelang_gsm8k_local: no data file; pass --metadata '{\"data_file\": \"PATH.jsonl\"}' or set "
                     "TRACELANG_GSM8K to the GSM-8K folder")


def local_gsm8k(data_file: str | None = None, **metadata: Any) -> Any:
    """lm-eval's ``custom_dataset`` hook: the rows of a local JSON Lines file (``question`` and
    ``answer`` each a string) as the task's ``test`` split, read by tracelang's JSON Lines reader
    (errors name file and line)."""
    import datasets

    path = local_file(data_file)
    rows = []
    for line, row in read_jsonl(path):
        if not (isinstance(row, dict) and isinstance(row.get("question"), str) and row.get("answer") is not None):
            raise InputError(f"{path}:{line}: a row needs a `question` string and an `answer`")
        rows.append({"question": row["question"], "answer": str(row["answer"])})
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})
