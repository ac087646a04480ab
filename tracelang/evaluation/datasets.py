"""Question/answer sets for `tracelang eval --data`: GSM-8K's folder, or any JSONL file (or
``hf:REPO[@CONFIG]:SPLIT``) whose rows carry a question and an answer under configurable field
names. The answer is GSM-8K's ``#### n`` line, a plain number (``72``, ``1,000``, ``-3.5``,
``2/3``), or a JSON number; a row whose answer is not a finite exact number is an error naming
its file and line, never a problem graded against a made-up value."""

from __future__ import annotations

from pathlib import Path

from ..data.gsm8k import HF_PREFIX, Problem, rows_from_hub
from ..fileio import InputError, read_jsonl
from ..numbers import answer_value


def is_file_source(data: str | None) -> bool:
    """A dataset file or hub split, rather than a GSM-8K folder."""
    return bool(data) and (str(data).startswith(HF_PREFIX) or Path(str(data)).is_file())


def load_file(source: str, question_field: str = "question", answer_field: str = "answer") -> list[Problem]:
    """Every row of a JSONL file or hub split, as problems with ids ``{name}-{index:05d}`` (or the
    row's own string ``id``). Two rows with one id are an error naming both lines."""
    name = Path(source.rsplit(":", 1)[-1] if source.startswith(HF_PREFIX) else source).stem or "data"
    rows = enumerate(rows_from_hub(source), start=1) if source.startswith(HF_PREFIX) else read_jsonl(source)
    out: list[Problem] = []
    lines: dict[str, int] = {}  # id -> the line that has it: results are keyed by id, so ids are unique
    for index, (line, row) in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"{source}:{line}: a row must be a JSON object")
        question, answer = row.get(question_field), row.get(answer_field)
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"{source}:{line}: no question string in field `{question_field}`")
        gold = answer_value(answer)
        if gold is None:
            raise InputError(f"{source}:{line}: the answer in field `{answer_field}` ({str(answer)[:40]!r}) is not a "
                             "finite exact number")
        rid = row.get("id") if isinstance(row.get("id"), str) else f"{name}-{index:05d}"
        if rid in lines:
            raise InputError(f"{source}:{line}: id {rid[:60]!r} is also the id of line {lines[rid]}; ids must be "
                             "unique (results are stored by id)")
        lines[rid] = line
        out.append(Problem(rid, index, name, question, getattr(answer, "text", str(answer)), gold))
    return out
