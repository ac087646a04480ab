"""Core bugs found while building the data layer, each with its regression test."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tracelang.cli import app
from tracelang.fileio import iter_items
from tracelang.record import make_record, write_records

TRACE = """\
expert: arithmetic
trace:
- {op: init, var: a, value: 2}
- {op: init, var: b, value: 3}
- {op: compute, compute_op: add, args: [a, b], var: result}
- {op: query, var: result}
"""


def test_jsonl_lines_break_at_newline_only(tmp_path: Path) -> None:
    # A question with U+2028 (LINE SEPARATOR) written raw, as json.dumps(ensure_ascii=False) does:
    # str.splitlines() used to cut the record in two and report E002 on both halves.
    path = tmp_path / "c.jsonl"
    record = make_record("r", "Ann has 2 pens.\u2028Bo has 3 pens. How many pens?", TRACE, "5", "arithmetic", "x")
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n" + json.dumps(record) + "\r\n", encoding="utf-8")
    items = list(iter_items(str(path)))
    assert [(i.index, i.file_line, i.error) for i in items] == [(0, 1, None), (1, 2, None)]
    assert items[0].question == record["question"]
    result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 0 and "2 checked: 2 ok" in result.output


def test_records_writer_escapes_line_separators(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    write_records(path, [make_record("r", "a\u2028b\u2029c", TRACE, "5", "arithmetic", "x")])
    text = path.read_text(encoding="utf-8")
    assert "\u2028" not in text and "\\u2028" in text and len(text.splitlines()) == 1
    assert json.loads(text)["question"] == "a\u2028b\u2029c"
