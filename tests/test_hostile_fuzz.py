"""Issue 14: the hostile-input suite. Every file-reading command gets generated files (hostile JSON
Lines, hostile YAML, random text and bytes) and must, within a time limit: print no traceback,
exit with a documented status, replace no file and leave none behind (the directory's listing and
contents are compared before and after), and grade no answer that is not an exact number.

Seeded and small (derandomized, few examples per command) so that CI stays fast. Hypothesis drives
it; atheris, where installed, is not needed for these properties."""

from __future__ import annotations

import json
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracelang.cli import app
from tracelang.models.tokenizer_store import tiny_bpe
from tracelang.numbers import answer_value

SECONDS = 20  # per example; every hostile case seen so far ends in about a second
FAST = settings(max_examples=12, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

TRACE = ("expert: arithmetic\ntrace:\n- {op: init, var: a, value: 3}\n- {op: init, var: b, value: 2}\n"
         "- {op: compute, compute_op: add, args: [a, b], var: result}\n- {op: query, var: result}\n")

# Pieces a hostile user reaches for (issue 14): sizes, nesting, non-numbers, odd characters.
HOSTILE_VALUES = [
    "9" * 5000, "[" * 3000, "NaN", "Infinity", "-Infinity", "1e999", "true", "null", "[]", "{}",
    '"1/0"', '"--1"', '"\\ud800"', '"\\udfff x"', '"\u00b2"', '"3\u00b2"', '"\u0663"', '"#### 18"', '"72"', "5",
    '"' + "1" * 1200 + '"', '"\\u0000"', '"12\\n13"',
    "35.99999999999999999", "1E2", '"3,6"', '"3$6"', '"36%"', '"#### 5 #### 36"', "1e999999999",
]
HOSTILE_TRACES = [
    TRACE,
    TRACE.replace("value: 2", "value: \u00b2"),
    TRACE.replace("value: 2", "value: " + "9" * 4400),
    TRACE.replace("[a, b]", "[a, a]").replace("add", "max"),
    "- expert: arithmetic\n  trace:\n  - {op: init, var: s, source: sub" + "7" * 4400 + ".result}\n",
    "a: &a [x, x]\nb: &b [*a, *a, *a, *a]\nc: [*b, *b, *b, *b]\n",
    "!!python/object/apply:os.system ['true']\n",
    "expert: arithmetic\ntrace:\n" + "- {op: init, var: a, value: 1}\n" * 3000,
    "[" * 5000,
    "expert: arithmetic\ntrace:\n- {op: compute, compute_op: mul, args: [" + ", ".join(["9" * 300] * 2000)
    + "], var: r}\n",
]


@st.composite
def jsonl_line(draw) -> str:
    """A record line: real keys with hostile values, or a line that is not a record at all."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.text(max_size=80)).replace("\n", " ")
    if kind == 1:
        return draw(st.sampled_from(HOSTILE_VALUES))
    trace = json.dumps(draw(st.sampled_from(HOSTILE_TRACES)))
    fields = {"trace": trace, "question": json.dumps(draw(st.sampled_from(
        ["Ann has 3 apples and 2 pears. How many?", "x\u00b2 \u00b3 " + "7" * 300, ""]))),
        "answer": draw(st.sampled_from(HOSTILE_VALUES)), "id": draw(st.sampled_from(
            ['"gsm8k-train-00012"', '"gsm8k-test-00001"', "7", '"\\ud800"']))}
    keys = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, min_size=1 if kind == 2 else 0))
    return "{" + ", ".join(f'"{k}": {fields[k]}' for k in keys) + "}"


jsonl_files = st.one_of(
    st.lists(jsonl_line(), min_size=1, max_size=4).map(lambda lines: "\n".join(lines).encode("utf-8", "replace")),
    st.binary(max_size=200),
)
yaml_files = st.one_of(st.sampled_from(HOSTILE_TRACES).map(str.encode), st.binary(max_size=200),
                       st.text(max_size=200).map(lambda t: t.encode("utf-8", "replace")))


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def expired(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# What a run of this suite saw, printed at its end (`pytest tests/test_hostile_fuzz.py -s`): the counts
# issue 25 asks for. A traceback, hang, wrong grade or replaced input also fails its test.
COUNTS = dict.fromkeys(["invocations", "tracebacks", "hangs", "wrong answers graded correct", "inputs replaced"], 0)


@pytest.fixture(scope="module", autouse=True)
def _report_counts() -> Iterator[None]:
    yield
    print("\nhostile suite: " + ", ".join(f"{k} {v}" for k, v in COUNTS.items()))


def invoke(runner, args: list[str], allowed: set[int]):
    COUNTS["invocations"] += 1
    try:
        with time_limit(SECONDS):
            result = runner.invoke(app, args)
    except TimeoutError:
        COUNTS["hangs"] += 1
        raise
    if isinstance(result.exception, TimeoutError):
        COUNTS["hangs"] += 1
    if (result.exception is not None and not isinstance(result.exception, SystemExit)) or "Traceback" in result.output:
        COUNTS["tracebacks"] += 1
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args[:3]}: traceback {type(result.exception).__name__}: {result.exception}")
    assert "Traceback" not in result.output, result.output[-2000:]
    assert result.exit_code in allowed, (result.exit_code, result.output[-2000:])
    return result


def unchanged(before: dict[str, bytes], after: dict[str, bytes], outputs: set[str] = frozenset()) -> bool:
    """Whether every file of ``before`` except the named outputs is still there, byte for byte."""
    same = all(after.get(k) == v for k, v in before.items() if k not in outputs)
    COUNTS["inputs replaced"] += not same
    return same


@pytest.fixture
def box(tmp_path_factory) -> Iterator[Path]:
    """A fresh directory for each example (hypothesis calls the test body many times per fixture)."""
    yield tmp_path_factory.mktemp("hostile")


def _fresh(box: Path, name: str, data: bytes) -> Path:
    for p in box.iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    path = box / name
    path.write_bytes(data)
    return path


@FAST
@given(data=jsonl_files)
def test_check_jsonl(runner, box, data):
    path = _fresh(box, "c.jsonl", data)
    before = snapshot(box)
    result = invoke(runner, ["check", "--format", "json", str(path)], {0, 1, 2})
    assert snapshot(box) == before
    for line in result.stdout.splitlines():
        report = json.loads(line)
        if report.get("correct") is None:
            continue
        record = _record(data, report["index"])
        # a record is graded only when its answer is an exact number
        assert record is not None and answer_value(record.get("answer")) is not None, (report, record)


def _record(data: bytes, index: int) -> dict | None:
    from tracelang.fileio import LineError, loads_line

    lines = [x for x in data.decode("utf-8", "replace").split("\n") if x.strip()]
    try:
        obj = loads_line(lines[index])
    except (LineError, IndexError):
        return None
    return obj if isinstance(obj, dict) else None


@FAST
@given(data=yaml_files)
def test_check_run_and_fmt_check_of_a_trace_file(runner, box, data):
    path = _fresh(box, "t.yaml", data)
    before = snapshot(box)
    invoke(runner, ["check", str(path)], {0, 1, 2})
    invoke(runner, ["run", str(path)], {0, 1, 2})
    invoke(runner, ["fmt", "--check", str(path)], {0, 1, 2})
    assert snapshot(box) == before


@FAST
@given(data=st.one_of(jsonl_files, yaml_files), suffix=st.sampled_from([".jsonl", ".yaml"]))
def test_fmt_rewrites_only_what_it_formats(runner, box, data, suffix):
    path = _fresh(box, "f" + suffix, data)
    before = snapshot(box)
    result = invoke(runner, ["fmt", str(path)], {0, 1, 2})
    after = snapshot(box)
    assert after.keys() == before.keys()  # nothing left behind, nothing removed
    if result.exit_code != 0 or "reformatted" not in result.output:
        assert after == before


@FAST
@given(data=jsonl_files)
def test_gsm8k_import_and_split(runner, box, data):
    path = _fresh(box, "in.jsonl", data)
    before = snapshot(box)
    result = invoke(runner, ["gsm8k", "import", "--input", str(path), "--out", str(box / "out.jsonl")], {0, 2})
    after = snapshot(box)
    assert after.pop("out.jsonl", None) is not None or result.exit_code == 2
    assert after == before
    result = invoke(runner, ["gsm8k", "split", "--input", str(path), "--dev", str(box / "d.jsonl"),
                             "--train", str(box / "t.jsonl")], {0, 2})
    if result.exit_code == 2:
        assert not {"d.jsonl", "t.jsonl"} & set(snapshot(box))
    assert not [p for p in box.iterdir() if p.name.endswith(".part")]


@FAST
@given(data=jsonl_files)
def test_corpus_stats_and_contamination(runner, box, data):
    path = _fresh(box, "corpus.jsonl", data)
    reference = box / "ref.jsonl"
    reference.write_text(json.dumps({"question": "Ann has 3 apples and 2 pears. How many fruits does she have?"})
                         + "\n")
    before = snapshot(box)
    invoke(runner, ["corpus", "stats", str(path)], {0, 2})
    invoke(runner, ["corpus", "contamination", str(path), "--against", str(reference)], {0, 1, 2})
    invoke(runner, ["corpus", "contamination", str(reference), "--against", str(path)], {0, 1, 2})
    assert snapshot(box) == before


class _Replay:
    """Stands in for the model: `eval`'s reading of a hostile --data file is what is tested."""

    def generate(self, prompts: list[str], questions: list[str]):
        from tracelang.evaluation.backends import Generated

        return [Generated(TRACE, 10, 0.01) for _ in questions]


@settings(FAST, max_examples=8)
@given(data=jsonl_files)
def test_eval_reads_a_hostile_dataset_file(runner, box, data, monkeypatch):
    from tracelang.evaluation import commands
    from tracelang.models import Prompter

    monkeypatch.setattr(commands, "make_backend", lambda *a, **k: (_Replay(), Prompter(_NoTokenizer(), [])))
    path = _fresh(box, "qa.jsonl", data)
    before = snapshot(box)
    result = invoke(runner, ["eval", "--data", str(path), "--out", str(box / "run"), "--shots", "0"], {0, 2})
    after = snapshot(box)
    written = {k for k in after if k.startswith("run")}
    assert not [k for k in after if k.endswith(".part")]
    assert {k: v for k, v in after.items() if k not in written} == before
    if result.exit_code == 0:
        for line in (box / "run" / "predictions.jsonl").read_text().splitlines():
            row = json.loads(line)
            assert not row["correct"] or answer_value(row["gold"]) is not None, row


class _NoTokenizer:
    """Enough of a tokenizer for a zero-shot Prompter."""

    chat_template = None
    eos_token = "</s>"

    def apply_chat_template(self, *a, **k):  # pragma: no cover - no chat template
        raise AssertionError


# ---------------------------------------------------------------- issue 25, class 1: one answer syntax
TRACE_36 = TRACE.replace("value: 3}", "value: 34}")  # runs to 36
WRONG_FOR_36 = ["35.99999999999999999", "36.000000000000001", "3.6000000000000001e1", '"3,6"', '"3,,,6"', '"3$6"',
                '"36%"', '"#### 5 #### 36"', '"36$"', '"$$36"', '"36,"', '",36"', '"3,6.0"', '"036,000"', '"$-36"',
                '"36 36"', '"3 6"', '"36/1/1"', '"#### 36 ####"', '"36e0"', '"0x24"', '"\uff13\uff16"']
RIGHT_FOR_36 = ["36", "36.0", "3.6e1", "3600e-2", '"36"', '"$36"', '"#### 36"', '"Some reasoning.\\n#### 36"',
                '" 36 "', '"36.00"', '"+36"', '"72/2"']


@pytest.mark.parametrize("answer", WRONG_FOR_36 + RIGHT_FOR_36)
def test_check_grades_only_answers_written_the_one_way(runner, tmp_path, answer):
    """A trace that runs to 36 is graded correct only against 36 written the one way (issue 25): JSON
    numbers read from their text, separators in threes, `$` in front, one `####` marker."""
    path = tmp_path / "a.jsonl"
    path.write_text(f'{{"trace": {json.dumps(TRACE_36)}, "answer": {answer}}}\n')
    result = invoke(runner, ["check", "--format", "json", str(path)], {0, 1})
    report = json.loads(result.stdout)
    graded_correct = report["correct"] is True
    COUNTS["wrong answers graded correct"] += graded_correct and answer in WRONG_FOR_36
    assert graded_correct == (answer in RIGHT_FOR_36), (answer, report)
    codes = {d["code"] for d in report["diagnostics"]}
    assert graded_correct or codes & {"E003", "E004"}, report


TRACE_170_3 = TRACE.replace("value: 3}", "value: 170}").replace("value: 2}", "value: 3}").replace("add", "div")


@pytest.mark.parametrize(("answer", "correct"), [
    ("56.666666666666664", True), ('"56.666666666666664"', True), ("5.6666666666666664e1", True),
    ("56.67", False), ('"56.67"', False), ("56.666666666666666", False), ("56.6666666666666643", False),
    ('"170/3"', True),
    # a double one ulp up, as a float chain writes it (the study's 265/6 is 44.16666666666667)
    ("56.66666666666667", True), ("56.66666666666664", True),
    # fifteen digits or fewer: a person's rounding, compared exactly; sixteen but far off: wrong
    ("56.6666666666667", False), ("56.666666666667", False), ("56.66666566666667", False)])
def test_a_double_of_the_exact_result_grades_and_no_other_decimal(runner, tmp_path, answer, correct):
    """Issue 24 item 6, the seed-compatibility rule: the study's records hold what a double evaluation
    of the trace wrote; such a double is correct, a decimal a person could write is compared exactly."""
    path = tmp_path / "f.jsonl"
    path.write_text(f'{{"trace": {json.dumps(TRACE_170_3)}, "answer": {answer}}}\n')
    report = json.loads(invoke(runner, ["check", "--format", "json", str(path)], {0, 1}).stdout)
    assert report["correct"] is correct, report


def _chain(expert: str, steps: list[str]) -> str:
    return f"expert: {expert}\ntrace:\n" + "".join(f"- {{{s}}}\n" for s in steps) + "- {op: query, var: result}\n"


# Study-shaped traces with the answer its float evaluation writes, computed here the study's way.
_FLOAT_CHAINS = [
    (_chain("percentage", ["op: init, var: base, value: 123", "op: init, var: rate, value: 20",
                           "op: percent_increase, base: base, rate: rate, var: raised",
                           "op: compute, compute_op: sub, args: [raised, base], var: result"]),
     123 * (1 + 20 / 100) - 123, "24.6"),
    (_chain("arithmetic", ["op: init, var: total, value: 53", "op: init, var: ratio, value: 5",
                           "op: init, var: one, value: 1",
                           "op: compute, compute_op: add, args: [ratio, one], var: parts",
                           "op: compute, compute_op: div, args: [total, parts], var: share",
                           "op: compute, compute_op: mul, args: [share, ratio], var: result"]),
     53 / (5 + 1) * 5, "265/6"),
    (_chain("arithmetic", ["op: init, var: base, value: 19", "op: init, var: tax, value: 8.63",
                           "op: init, var: fee, value: 2",
                           "op: compute, compute_op: add, args: [base, tax], var: step1",
                           "op: compute, compute_op: add, args: [step1, fee], var: result"]),
     19 + 8.63 + 2, "29.63"),
    # cancellation: off by 2**-33 of the result, a rounding of the 10**6 the trace held
    (_chain("arithmetic", ["op: init, var: big, value: 1000000", "op: init, var: small, value: 0.1",
                           "op: compute, compute_op: add, args: [big, small], var: step1",
                           "op: compute, compute_op: sub, args: [step1, big], var: result"]),
     1000000 + 0.1 - 1000000, "0.1"),
]


@pytest.mark.parametrize(("trace", "written", "exact"), _FLOAT_CHAINS)
def test_what_a_double_evaluation_of_the_trace_writes_grades_correct(runner, tmp_path, trace, written, exact):
    """Issue 24 item 6: 0.7% of the study generator's records (159 of 18,000 sampled) hold a float
    chain's answer that is not the double nearest the exact result (``24.599999999999994`` for 24.6);
    they grade correct, and the same double plus 0.1 does not."""
    assert repr(written) != repr(float(Fraction(exact)))  # not the nearest double: the older rule's miss
    rows = [{"trace": trace, "answer": written}, {"trace": trace, "answer": written + 0.1}]
    path = tmp_path / "chains.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = invoke(runner, ["check", "--format", "json", str(path)], {1}).stdout
    reports = [json.loads(line) for line in out.splitlines()]
    assert [r["expected"] for r in reports][0] != exact
    assert [r["answer"] for r in reports] == [exact, exact]
    assert [r["correct"] for r in reports] == [True, False], reports
    assert [d["code"] for d in reports[1]["diagnostics"]] == ["E004"]


def test_float_written_is_only_a_doubles_long_shortest_form():
    """The decimals ``same_answer`` may take as a double's: 16 or 17 digits, the shortest form of
    their own double, never an integer; and the margin scales with the largest value held."""
    from tracelang.numbers import float_written, number_text_value, same_answer

    def q(text: str):
        return number_text_value(text)

    assert float_written(q("12.800000000000011")) and float_written(q("44.16666666666667"))
    assert not float_written(q("56.67")) and not float_written(q("56.6666666666667"))  # 15 digits
    assert not float_written(q("36.000000000000001"))  # its double's shortest form is 36.0
    assert not float_written(q("1234567890123456"))  # an integer is compared exactly
    assert float_written(q("0.30000000000000004")) and float_written(q("0.30000000000000004000"))  # a value
    result, answer = q("0.1"), q(repr(1000000 + 0.1 - 1000000))
    assert not same_answer(result, answer)  # against the result alone it is too far off
    assert same_answer(result, answer, q("1000000.1"))  # a rounding of the million the trace held
    assert same_answer(result, q("0.1000000100000001"), q("1000000.1"))  # 1e-8 off: inside 2**-40 of 10**6
    assert not same_answer(result, q("0.1000010000000001"), q("1000000.1"))  # 1e-6 off: outside it
# ---------------------------------------------------------------- issue 25, class 2: unique ids
@FAST
@given(ids=st.lists(st.sampled_from(["a", "b", "qa-00001", None]), min_size=2, max_size=5))
def test_eval_data_with_a_shared_id_is_an_error_naming_both_lines(runner, box, ids, monkeypatch):
    """Results are stored by id, so two rows with one id would share one prediction on resume: an
    error naming both lines, before anything is decoded."""
    from tracelang.evaluation import commands
    from tracelang.models import Prompter

    monkeypatch.setattr(commands, "make_backend", lambda *a, **k: (_Replay(), Prompter(_NoTokenizer(), [])))
    rows = [{"question": f"Ann has {i} apples.", "answer": i, **({"id": x} if x else {})} for i, x in enumerate(ids)]
    path = _fresh(box, "qa.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    effective = [x if x else f"qa-{i:05d}" for i, x in enumerate(ids)]
    first: dict[str, int] = {}
    clash = next(((first[x], n) for n, x in enumerate(effective, 1) if first.setdefault(x, n) != n), None)
    result = invoke(runner, ["eval", "--data", str(path), "--out", str(box / "run"), "--shots", "0"], {0, 2})
    if clash is None:
        assert result.exit_code == 0, result.output
        assert len((box / "run" / "predictions.jsonl").read_text().splitlines()) == len(rows)
    else:
        assert result.exit_code == 2 and f"qa.jsonl:{clash[1]}:" in result.output, result.output
        assert f"line {clash[0]}" in result.output and not (box / "run" / "predictions.jsonl").exists()


# ---------------------------------------------------------------- issue 25, class 3: one value limit
_PRIMES = [10**38 + k for k in (9, 31, 91, 121, 131, 139, 157, 207, 219, 261, 271, 289, 291, 333, 409)]


def _entity_chain(op: str, count: int) -> str:
    """``count`` entity steps, each taking 1/q for another q: the holder's denominator multiplies."""
    lines = ["expert: entity_track", "trace:", "- {op: init, var: x, value: 1}"]
    for i in range(count):
        q = _PRIMES[i % len(_PRIMES)] + 2 * len(_PRIMES) * (i // len(_PRIMES)) * 3
        lines.append(f"- {{op: init, var: d{i}, value: 1/{q}}}")
        lines.append(f"- {{op: consume, entity: x, amount: d{i}}}" if op == "consume"
                     else f"- {{op: transfer, from_entity: x, to_entity: y{i}, amount: d{i}}}")
    lines.append("- {op: query, var: x}" if op == "consume" else f"- {{op: query, var: y{count - 1}}}")
    return "\n".join(lines) + "\n"


@FAST
@given(op=st.sampled_from(["consume", "transfer"]), count=st.sampled_from([15, 40, 130]),
       command=st.sampled_from(["check", "run"]))
def test_every_value_an_op_writes_is_held_to_the_value_limit(runner, box, op, count, command):
    """`consume` and a transfer's giving side keep a remainder whose denominator grows with each step:
    past 400 digits it is E603 (exit 1), never a 585-digit value with exit 0, never the 4,300-digit
    ValueError."""
    path = _fresh(box, "t.yaml", _entity_chain(op, count).encode())
    result = invoke(runner, [command, str(path)], {1})
    assert "E603" in result.output and "400 digits" in result.output, result.output[-500:]


@pytest.mark.parametrize("literal", ["0." + "0" * 3990 + "1", "0." + "0" * 45 + "1", "00000." + "0" * 40 + "5",
                                     "1/0." + "0" * 50 + "1"])
def test_a_literals_leading_zeros_count_against_the_literal_limit(runner, tmp_path, literal):
    path = tmp_path / "t.yaml"
    path.write_text(TRACE.replace("value: 2}", f"value: {literal}}}"))
    result = invoke(runner, ["check", str(path)], {1})
    assert "E603" in result.output and "the limit is 40" in result.output, result.output[-500:]


# ---------------------------------------------------------------- issue 25, class 4: no input replaced
GSM8K_ROW = json.dumps({"question": "Ann has 3 apples and 2 pears. How many fruits does she have?",
                        "answer": "3+2=<<3+2=5>>5\n#### 5"}) + "\n"


def _spell(box: Path, target: Path, how: str) -> Path:
    """Another name for ``target``: itself, a `./` spelling, a symlink, a hard link."""
    if how == "same":
        return target
    if how == "dotted":
        return box / "." / "sub" / ".." / target.name
    other = box / f"other-{target.name}"
    (other.symlink_to if how == "symlink" else other.hardlink_to)(target)
    return other


def _overwrite_cases(box: Path) -> list[tuple[list[str], Path]]:
    """(args, the input that an output names) for each command that reads and writes files."""
    data = box / "train.jsonl"
    data.write_text(GSM8K_ROW)
    test = box / "test.jsonl"
    test.write_text(GSM8K_ROW.replace("Ann", "Bob"))
    records = box / "records.jsonl"
    records.write_text(json.dumps({"id": "gsm8k-train-00001", "question": "q", "trace": TRACE, "answer": "5"}) + "\n")
    (box / "run").mkdir()
    preds = box / "run" / "predictions.jsonl"
    preds.write_text(json.dumps({"question": "Ann has 3 apples.", "answer": 3}) + "\n")
    return [
        (["corpus", "generate", "--n", "1", "--gsm8k-train", str(data), "--out", "{}"], data),
        (["corpus", "generate", "--n", "1", "--gsm8k-test", str(test), "--out", "{}"], test),
        (["gsm8k", "import", "--input", str(data), "--out", "{}"], data),
        (["gsm8k", "import", "--input", str(data), "--out", "{}", "--against", str(test)], test),
        (["gsm8k", "import", "--input", str(data), "--out", "{}"], test),  # the default reference, beside the input
        (["gsm8k", "import", "--input", str(data), "--out", str(box / "o.jsonl"), "--report", "{}"], data),
        (["gsm8k", "split", "--input", str(records), "--dev", "{}", "--train", str(box / "t.jsonl")], records),
        (["decode", "fuzz", "--tokenizer", "tiny-bpe", "--question-file", str(records), "--out", "{}"], records),
        (["eval", "--data", "{}", "--out", str(box / "run"), "--shots", "0"], preds),
    ]


@FAST
@given(case=st.integers(0, 8), how=st.sampled_from(["same", "dotted", "symlink", "hardlink"]))
def test_no_command_writes_over_one_of_its_inputs(runner, box, case, how, monkeypatch):
    """Every command checks every output path against every input path, links of both kinds
    included (issue 25): one line, exit 2, the input as it was."""
    from tracelang.evaluation import commands
    from tracelang.models import Prompter

    monkeypatch.setattr(commands, "make_backend", lambda *a, **k: (_Replay(), Prompter(_NoTokenizer(), [])))
    _fresh(box, "x", b"")
    (box / "sub").mkdir()
    args, target = _overwrite_cases(box)[case]
    spelled = _spell(box, target, how)
    before = snapshot(box)
    result = invoke(runner, [a.replace("{}", str(spelled)) for a in args], {2})
    assert unchanged(before, snapshot(box)), result.output
    assert "would be overwritten" in result.output, result.output


# ---------------------------------------------------------------- issue 25, class 5: unwritable outputs
def test_a_cache_that_is_a_file_is_one_line_exit_2(tmp_path):
    """In a fresh process: in this one the compiled tokenizer may be memoised already."""
    import os
    import subprocess
    import sys

    blocker = tmp_path / "file"
    blocker.write_text("x")
    env = {**os.environ, "TRACELANG_CACHE": str(blocker), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-m", "tracelang", "decode", "fuzz", "--tokenizer", "tiny-bpe", "--n",
                             "1", "--out", str(tmp_path / "o.jsonl")], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"error: {blocker}: the cache ($TRACELANG_CACHE) is not a directory", result.stderr[-500:]
    assert blocker.read_text() == "x" and not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("case", ["generate-dir", "fuzz-dir", "under-a-file", "proc", "import-report-dir"])
def test_an_output_that_cannot_be_written_is_one_line_exit_2(runner, tmp_path, monkeypatch, case):
    data = tmp_path / "train.jsonl"
    data.write_text(GSM8K_ROW)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    args = {
        "generate-dir": ["corpus", "generate", "--n", "1", "--out", str(tmp_path)],
        "fuzz-dir": ["decode", "fuzz", "--tokenizer", "tiny-bpe", "--n", "1", "--out", str(tmp_path)],
        "under-a-file": ["corpus", "generate", "--n", "1", "--out", str(blocker / "out.jsonl")],
        "proc": ["gsm8k", "import", "--input", str(data), "--out", "/proc/tracelang-out.jsonl"],
        "import-report-dir": ["gsm8k", "import", "--input", str(data), "--out", str(tmp_path / "o.jsonl"),
                              "--report", str(tmp_path)],
    }[case]
    before = snapshot(tmp_path)
    result = invoke(runner, args, {2})
    errors = [line for line in result.output.replace("\r", "\n").splitlines() if "error:" in line]
    assert len(errors) == 1 and (str(tmp_path) in errors[0] or "/proc" in errors[0]), result.output
    assert snapshot(tmp_path) == before  # nothing written, nothing left (gsm8k import --report DIR: no --out)


# ---------------------------------------------------------------- issue 25, class 7: bounded reads
@pytest.mark.parametrize("command", [["check"], ["check", "--format", "json"], ["run"], ["fmt", "--check"],
                                     ["gsm8k", "import", "--out", "{out}", "--input"], ["corpus", "stats"],
                                     ["eval", "--out", "{out}", "--data"]])
@pytest.mark.parametrize("suffix", [".jsonl", ".yaml"])
def test_dev_zero_fails_fast_with_a_clear_error(runner, tmp_path, command, suffix, monkeypatch):
    """Every reader bounds a line and a file before it parses: /dev/zero (behind any name) is an error
    within the time limit, naming the file, with no memory blow-up."""
    from tracelang.evaluation import commands
    from tracelang.models import Prompter

    monkeypatch.setattr(commands, "make_backend", lambda *a, **k: (_Replay(), Prompter(_NoTokenizer(), [])))
    zero = tmp_path / f"zero{suffix}"
    zero.symlink_to("/dev/zero")
    args = [a.replace("{out}", str(tmp_path / "out")) for a in command] + [str(zero)]
    result = invoke(runner, args, {1, 2})
    assert str(zero) in result.output, result.output[-500:]
    if command[0] != "eval":  # eval refuses a device as --data at once: not a file
        assert "longer than" in result.output, result.output[-500:]


# ---------------------------------------------------------------- issue 25, class 8: no writing through links
@FAST
@given(planted=st.lists(st.sampled_from(["report.md", "metrics.json", "results.json", "config.json",
                                         "predictions.jsonl"]), min_size=1, max_size=3, unique=True))
def test_eval_replaces_links_planted_in_its_out_directory(runner, box, planted, monkeypatch):
    from tracelang.evaluation import commands
    from tracelang.models import Prompter

    monkeypatch.setattr(commands, "make_backend", lambda *a, **k: (_Replay(), Prompter(_NoTokenizer(), [])))
    _fresh(box, "qa.jsonl", (json.dumps({"question": "Ann has 3 apples and 2 pears.", "answer": 5}) + "\n").encode())
    args = ["eval", "--data", str(box / "qa.jsonl"), "--out", str(box / "run"), "--shots", "0"]
    invoke(runner, args, {0})
    victim = box / "victim.txt"
    victim.write_text("keep me\n")
    for name in planted:
        (box / "run" / name).unlink()
        (box / "run" / name).symlink_to(victim)
    before = snapshot(box)
    invoke(runner, args, {0, 2})  # a resume: planted links are replaced (or a link is refused), never written through
    assert unchanged(before, snapshot(box), {k for k in before if k.startswith("run")})
    assert victim.read_text() == "keep me\n"


# ---------------------------------------------------------------- issue 25, class 9: fmt changes the trace only
UNCANONICAL = TRACE.replace("value: 3}", "value: 3.0}").replace("- {op: query", "-   {op: query")
OTHER_FIELDS = [
    '"answer": 35.99999999999999999', '"answer": 1E2', '"id": "a", "id": "b"', '"note": "\\u2028 and \\u00e9"',
    '"meta": {"trace": "not me", "x": [1.50, -0.0]}', '"question": "Ann\\/Bob"', '"n": 1e-7', '"s"  :  "spaced"',
]


@FAST
@given(fields=st.lists(st.sampled_from(OTHER_FIELDS), max_size=4), before=st.booleans(), crlf=st.booleans(),
       canonical=st.booleans())
def test_fmt_of_a_corpus_changes_the_trace_field_and_nothing_else(runner, box, fields, before, crlf, canonical):
    """Every byte outside the `trace` string stays as written: number spellings, duplicated keys,
    escapes, spacing, line ends (issue 25)."""
    trace = json.dumps(TRACE if canonical else UNCANONICAL)
    parts = [*fields, f'"trace": {trace}'] if before else [f'"trace": {trace}', *fields]
    end = "\r\n" if crlf else "\n"
    line = "{" + ", ".join(parts) + "}"
    data = (line + end + end + line + end).encode()
    path = _fresh(box, "c.jsonl", data)
    invoke(runner, ["fmt", str(path)], {0})
    after = path.read_bytes()
    want = data.replace(trace.encode(), json.dumps(TRACE).encode())
    assert after == want, (data, after)
    COUNTS["inputs replaced"] += after != want


# ---------------------------------------------------------------- issue 25, class 6: recipes and --set
def _alias_bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


HOSTILE_RECIPES = {
    "huge epochs": "name: x\nnum_train_epochs: 1" + "0" * 400 + "\n",
    "huge steps": "name: x\nsft: {max_steps: 1" + "0" * 400 + "}\n",
    "past 4300 digits": "name: x\nlearning_rate: 1" + "0" * 5000 + "\n",
    "alias bomb in name": _alias_bomb() + "name: *a8\n",
    "alias bomb in a section": _alias_bomb() + "sft: {lora_targets: *a8}\n",
    "huge list": "name: [" + ", ".join(["x"] * 5000) + "]\n",
    "deep": "name: " + "[" * 2000 + "]" * 2000 + "\n",
    "self-recursive prepare": "name: loop\nprepare:\n- {run: [train, sft, --config, {self}], "
                              "creates: {box}/none.jsonl}\nsft: {data: [{box}/none.jsonl]}\n",
}
HOSTILE_SETS = ["learning_rate=1" + "0" * 5000, "num_train_epochs=1" + "0" * 400, "seed=1" + "0" * 30,
                "name=*a", "learning_rate=&a [*a]", "max_steps=1e999", "data.0.weight=" + "9" * 400]


@FAST
@given(recipe=st.sampled_from(sorted(HOSTILE_RECIPES)), command=st.sampled_from(["sft", "rl", "run"]))
def test_a_hostile_recipe_is_one_line_exit_2(runner, box, recipe, command):
    """Numbers past a float or past Python's 4,300 digits, alias bombs (refused: recipes take no
    aliases), a prepare step that runs its own recipe: one line naming the recipe, exit 2, at once."""
    path = _fresh(box, "r.yaml", b"")
    path.write_text(HOSTILE_RECIPES[recipe].replace("{self}", str(path)).replace("{box}", str(box)))
    result = invoke(runner, ["train", command, "--config", str(path)], {2})
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(path) in errors[0] and len(errors[0]) < 400, result.output[-1000:]


@FAST
@given(item=st.sampled_from(HOSTILE_SETS))
def test_a_hostile_set_is_one_line_exit_2(runner, box, item):
    path = _fresh(box, "r.yaml", b"name: x\nsft: {data: [nowhere.jsonl]}\n")
    result = invoke(runner, ["train", "sft", "--config", str(path), "--set", item], {2})
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and len(errors[0]) < 400, result.output[-1000:]


# ---------------------------------------------------------------- issue 25, class 11: the smaller ones
def test_train_summary_skips_values_that_are_not_numbers(runner, tmp_path):
    stage = tmp_path / "sft"
    stage.mkdir()
    (stage / "metrics.jsonl").write_text(
        '{"kind": "train", "step": 1, "loss": [1, 2], "grad_norm": {"a": 1}, "seconds": "x"}\n'
        '{"kind": "train", "step": 2.5, "loss": 0.5}\n{"kind": "train", "step": 3, "loss": 0.25, "grad_norm": 1}\n'
        '{"kind": "eval", "step": 3, "constrained_accuracy": [1], "constrained_n": "x"}\n')
    result = invoke(runner, ["train", "summary", str(stage)], {0})
    assert (stage / "summary.md").is_file(), result.output


@pytest.mark.parametrize(("template", "says"), [
    ("{{ ''.__class__.__mro__ }}", "chat template fails"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "did not finish"),
    ("{% if %}", "chat template fails"),
])
def test_a_chat_template_that_fails_or_loops_is_one_prompt_error(monkeypatch, template, says):
    from tracelang.models import prompt
    from tracelang.models.prompt import Prompter, PromptError

    monkeypatch.setattr(prompt, "TEMPLATE_SECONDS", 1)
    tok = tiny_bpe()  # shared by every test: the template is set back afterwards
    monkeypatch.setattr(tok, "chat_template", template, raising=False)
    with time_limit(SECONDS), pytest.raises(PromptError, match=says):
        Prompter(tok).prompt("Ann has 3 apples.")


@pytest.mark.parametrize("digits", ["\u0663", "\uff15", "\u0663\u0664", "\u09e8", "\U0001d7d8"])
def test_other_scripts_digits_are_no_question_quantities(runner, digits):
    from tracelang.grounding import extract

    assert [q.text for q in extract(f"Ann has {digits} apples and 7 pears.")] == ["7"]
    result = invoke(runner, ["gsm8k", "quantities", f"Ann has {digits} apples and 7 pears."], {0})
    assert digits not in result.output


@pytest.mark.parametrize("question", ["7", "[1, 2]", "{}", "true"])
def test_contamination_names_a_question_that_is_not_a_string(runner, tmp_path, question):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"question": "Ann has 3 apples."}\n{"question": null}\n' + f'{{"question": {question}}}\n')
    reference = tmp_path / "ref.jsonl"
    reference.write_text('{"question": "Bob has 4 pears and 2 plums."}\n')
    result = invoke(runner, ["corpus", "contamination", str(corpus), "--against", str(reference)], {2})
    assert f"{corpus}:3:" in result.output, result.output
    result = invoke(runner, ["corpus", "contamination", str(reference), "--against", str(corpus)], {2})
    assert f"{corpus}:3:" in result.output, result.output


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_eval_of_an_empty_dataset_is_an_error(runner, tmp_path, content, monkeypatch):
    from tracelang.evaluation import commands
    from tracelang.models import Prompter

    monkeypatch.setattr(commands, "make_backend", lambda *a, **k: (_Replay(), Prompter(_NoTokenizer(), [])))
    data = tmp_path / "empty.jsonl"
    data.write_text(content)
    result = invoke(runner, ["eval", "--data", str(data), "--out", str(tmp_path / "run"), "--shots", "0"], {2})
    assert "no problems" in result.output and not (tmp_path / "run").exists()


@pytest.mark.parametrize("args", [["solve", "--max-new-tokens", "-5", "x"], ["solve", "--max-new-tokens", "0", "x"],
                                  ["eval", "--max-new-tokens", "-5", "--out", "o"],
                                  ["eval", "--seed", "-1", "--out", "o"],
                                  ["corpus", "generate", "--n", "1", "--seed", "-1", "--out", "o.jsonl"]])
def test_negative_counts_and_seeds_are_usage_errors(runner, args):
    result = invoke(runner, args, {2})
    option = next(a for a in args if a in ("--max-new-tokens", "--seed"))
    flat = "".join(result.output.replace("│", " ").split())  # click's error box wraps its lines
    assert option in flat and ("range" in flat or "greaterthan" in flat), result.output
