"""Issue 14: hostile input. No code from caches, no hangs, no tracebacks, no wrong answer graded correct."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tracelang.decoding import constraint
from tracelang.decoding.constraint import Constraint, compile_tokenizer, make_config, save
from tracelang.decoding.levels import Levels
from tracelang.decoding.vocab import fingerprint
from tracelang.grammar import grammar_hash
from tracelang.models.tokenizer_store import tiny_bpe

ROOT = Path(__file__).resolve().parent.parent


class _Boom:
    """Unpickling this writes a marker file: proof that pickle.load ran on the cache."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACELANG_CACHE", str(tmp_path / "cache"))
    constraint._COMPILED.clear()
    yield tmp_path
    constraint._COMPILED.clear()


def _cache_dir(tok):
    return constraint._dir(grammar_hash(), fingerprint(tok))


def _allowed(compiled):
    con = Constraint(compiled, make_config(Levels(grounding=False)))
    con.advance_text("expert: arithmetic\ntrace:\n- {op: init, var: a, value: 2}\n- {op: ")
    return con.allowed_ids()


@pytest.mark.parametrize("name", ["compiled.pkl", "vocab.npz"])
def test_a_planted_pickle_in_the_cache_is_never_executed(cache, name):
    tok = tiny_bpe()
    d = _cache_dir(tok)
    d.mkdir(parents=True)
    marker = cache / "pwned"
    payload = {"format": constraint._FORMAT, "x": _Boom(str(marker))}
    (d / name).write_bytes(pickle.dumps(payload))
    compiled = compile_tokenizer(tok, memory=False)
    assert not marker.exists()
    assert not compiled.info.from_disk  # type: ignore[attr-defined]
    assert _allowed(compiled) == _allowed(compile_tokenizer(tok, disk=False, memory=False))


def test_an_npz_with_an_object_array_is_a_miss_and_not_unpickled(cache):
    tok = tiny_bpe()
    d = _cache_dir(tok)
    d.mkdir(parents=True)
    marker = cache / "pwned"
    obj = np.empty(1, dtype=object)
    obj[0] = _Boom(str(marker))
    with open(d / "vocab.npz", "wb") as fh:
        np.savez(fh, meta=obj, lens=obj, blob=obj, eos=obj)
    compiled = compile_tokenizer(tok, memory=False)
    assert not marker.exists() and not compiled.info.from_disk  # type: ignore[attr-defined]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "lens", "eos", "fingerprint"])
def test_a_damaged_cache_is_a_miss(cache, damage):
    tok = tiny_bpe()
    good = compile_tokenizer(tok, memory=False)
    path = save(good)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(os.urandom(2000))
    else:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if damage == "lens":
            arrays["lens"] = arrays["lens"] + 1
        elif damage == "eos":
            arrays["eos"] = np.array([10**9], dtype=np.int64)
        else:
            arrays["meta"] = np.frombuffer(b'{"format": 4, "fingerprint": "x", "size": 1}', dtype=np.uint8)
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    again = compile_tokenizer(tok, memory=False)
    assert not again.info.from_disk  # type: ignore[attr-defined]
    assert _allowed(again) == _allowed(good)


def test_the_cache_round_trips_and_leaves_no_part_file(cache):
    tok = tiny_bpe()
    first = compile_tokenizer(tok, memory=False)
    assert not first.info.from_disk  # type: ignore[attr-defined]
    again = compile_tokenizer(tok, memory=False)
    assert again.info.from_disk  # type: ignore[attr-defined]
    assert again.vocab.bytes_of == first.vocab.bytes_of and again.vocab.eos == first.vocab.eos
    assert _allowed(again) == _allowed(first)
    assert [p.name for p in _cache_dir(tok).iterdir()] == ["vocab.npz"]


# ---------------------------------------------------------------- no hangs
# Each case runs in a child process under a wall-clock limit, so that a regression fails the test
# instead of hanging the suite (big-int arithmetic and regex matching cannot be interrupted).

LIMIT_S = 30  # generous for a loaded machine; each case takes about a second when fixed


def _run_within(code: str, limit: float = LIMIT_S) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=limit,
                              env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"did not finish within {limit}s: {code[:200]}")


def _run_cli(*args: str, limit: float = LIMIT_S) -> subprocess.CompletedProcess:
    return _run_within(f"import sys; from tracelang.cli import main; sys.argv = ['tracelang', *{list(args)!r}]; main()",
                       limit)


def _huge_compute(op: str, n: int) -> str:
    lines = ["expert: arithmetic", "trace:", "- {op: init, var: a, value: 1" + "0" * 39 + "}",
             "- {op: init, var: e, value: 9}", "- {op: compute, compute_op: pow, args: [a, e], var: x}",
             "- {op: compute, compute_op: " + op + ", args: [" + ", ".join(["x"] * n) + "], var: result}",
             "- {op: query, var: result}"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("n", [5_000, 10_000])
def test_a_huge_n_ary_product_fails_fast_with_e603(tmp_path, n):
    path = tmp_path / "big.yaml"
    path.write_text(_huge_compute("mul", n))
    r = _run_cli("check", str(path))
    assert r.returncode == 1, r.stderr
    assert "E603" in r.stdout and "Traceback" not in r.stderr


def test_a_running_value_is_bounded_but_a_large_final_value_is_not_refused_early():
    from tracelang.pipeline import analyze

    ok = analyze("expert: arithmetic\ntrace:\n- {op: init, var: a, value: 1" + "0" * 39 + "}\n"
                 "- {op: init, var: e, value: 9}\n- {op: compute, compute_op: pow, args: [a, e], var: x}\n"
                 "- {op: init, var: z, value: 0}\n"
                 "- {op: compute, compute_op: mul, args: [x, x, x, z], var: result}\n- {op: query, var: result}\n")
    assert ok.answer == 0, ok.diagnostics


def test_quantities_of_a_five_million_digit_question_are_linear():
    # 7.4 million characters in all: about 35 s of linear work on a 2-core AVX2 machine, where a quadratic
    # pass would take hours, so the guard keeps its meaning at four times the usual limit
    r = _run_within("from tracelang.grounding import allowed_values, extract, stated_values\n"
                    "for s in ['Tom has ' + '7' * 5_000_000 + ' apples.', '7' * 1_000_000 + '\u00bd',\n"
                    "          '1\u00bd' * 200_000, '1 ' * 500_000]:\n"
                    "    extract(s); allowed_values(s); stated_values(s)\n", limit=4 * LIMIT_S)
    assert r.returncode == 0, r.stderr


def test_quantities_cli_on_a_long_digit_run(tmp_path):
    r = _run_within("import sys; from tracelang.cli import main; "
                    "sys.argv = ['tracelang', 'gsm8k', 'quantities', 'Tom has ' + '7' * 100_000 + ' apples.']; main()")
    assert r.returncode == 0, r.stderr


def test_a_template_expression_with_a_tower_of_powers_is_rejected_fast():
    r = _run_within("from tracelang.corpus.expr import Undefined, compile_expr\n"
                    "for text in ['pow(pow(pow(9,64),64),64) > 0', '*'.join(['pow(9,64)'] * 7) + ' > 0',\n"
                    "             'pow(pow(2,64),64) > 1']:\n"
                    "    try:\n"
                    "        compile_expr(text, 'bool')({})\n"
                    "    except Undefined as err:\n"
                    "        assert 'digits' in str(err), err\n"
                    "    else:\n"
                    "        raise SystemExit('not rejected: ' + text)\n")
    assert r.returncode == 0, r.stderr + r.stdout


# ---------------------------------------------------------------- JSON Lines readers

GOOD = ('{"id": "gsm8k-train-00012", "question": "Tom has 2 apples and buys 3. How many?", '
        '"trace": "expert: arithmetic\\n'
        'trace:\\n- {op: init, var: a, value: 2}\\n- {op: init, var: b, value: 3}\\n'
        '- {op: compute, compute_op: add, args: [a, b], var: result}\\n- {op: query, var: result}\\n", '
        '"answer": "5", "expert": "arithmetic", "source": "test", "meta": {}}')
HOSTILE = {
    "deep": "[" * 200_000 + "]" * 200_000,
    "deep_object": '{"a": ' * 50_000 + "1" + "}" * 50_000,
    "long_int": '{"id": "x", "answer": ' + "9" * 5_000 + "}",
    "nan": '{"id": "x", "answer": NaN}',
    "infinity": '{"id": "x", "answer": -Infinity}',
}


def _cli(*args: str):
    from typer.testing import CliRunner

    from tracelang.cli import app

    return CliRunner().invoke(app, list(args))


def _hostile_file(tmp_path, kind: str) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text(GOOD + "\n" + HOSTILE[kind] + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_loads_line_turns_every_hostile_line_into_a_line_error(kind):
    from tracelang.fileio import LineError, loads_line

    with pytest.raises(LineError) as err:
        loads_line(HOSTILE[kind])
    assert "Traceback" not in err.value.message and err.value.column >= 1


def test_loads_line_keeps_brackets_inside_strings_and_escapes():
    from tracelang.fileio import loads_line

    text = '{"q": "' + "[{" * 100 + '\\" ]", "n": [1, 2]}'
    assert loads_line(text) == {"q": "[{" * 100 + '" ]', "n": [1, 2]}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_check_and_fmt_make_a_hostile_line_a_record_error(tmp_path, kind):
    path = _hostile_file(tmp_path, kind)
    r = _cli("check", "--format", "json", str(path))
    assert r.exit_code == 1, r.output
    import json

    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["ok"] for row in rows] == [True, False]
    assert [d["code"] for d in rows[1]["diagnostics"]] == ["E002"] and rows[1]["diagnostics"][0]["line"] == 2
    r = _cli("check", str(path))
    assert r.exit_code == 1 and f"{path}:2:" in r.output and "E002" in r.output, r.output
    r = _cli("fmt", "--check", str(path))
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit) and f"{path}:2:" in r.output, r.output


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("command", ["gsm8k import", "gsm8k split", "corpus stats", "corpus contamination",
                                     "decode fuzz"])
def test_readers_name_file_and_line_of_a_hostile_line(tmp_path, kind, command):
    path = _hostile_file(tmp_path, kind)
    ref = tmp_path / "ref.jsonl"
    ref.write_text('{"question": "Ann has 4 pens.", "answer": "4"}\n', encoding="utf-8")
    args = {
        "gsm8k import": ["gsm8k", "import", "--input", str(path), "--out", str(tmp_path / "o.jsonl"),
                         "--against", str(ref)],
        "gsm8k split": ["gsm8k", "split", "--input", str(path), "--dev", str(tmp_path / "d.jsonl"),
                        "--train", str(tmp_path / "t.jsonl")],
        "corpus stats": ["corpus", "stats", str(path), "--against", str(ref)],
        "corpus contamination": ["corpus", "contamination", str(path), "--against", str(ref)],
        "decode fuzz": ["decode", "fuzz", "--tokenizer", "tiny-bpe", "--n", "1", "--out", str(tmp_path / "f.jsonl"),
                        "--question-file", str(path)],
    }[command]
    r = _cli(*args)
    assert r.exit_code == 2, (r.output, r.exception)
    assert isinstance(r.exception, SystemExit), repr(r.exception)
    assert f"{path}:2" in r.output, r.output


# ---------------------------------------------------------------- answers

TRACE_5 = ("expert: arithmetic\ntrace:\n- {op: init, var: a, value: 2}\n- {op: init, var: b, value: 3}\n"
           "- {op: compute, compute_op: add, args: [a, b], var: result}\n- {op: query, var: result}\n")


def _check_answers(tmp_path, answers: list[str]):
    import json

    path = tmp_path / "answers.jsonl"
    path.write_text("".join('{"trace": ' + json.dumps(TRACE_5) + ', "answer": ' + a + '}\n' for a in answers),
                    encoding="utf-8")
    r = _cli("check", "--format", "json", str(path))
    return r, [json.loads(line) for line in r.stdout.splitlines()]


def test_a_record_whose_trace_contradicts_its_answer_fails_check(tmp_path):
    r, rows = _check_answers(tmp_path, ['"5"', "6"])
    assert r.exit_code == 1
    assert rows[0]["ok"] and rows[0]["correct"] is True
    assert not rows[1]["ok"] and rows[1]["correct"] is False and rows[1]["answer"] == "5"
    assert [(d["code"], d["line"]) for d in rows[1]["diagnostics"]] == [("E004", 2)]
    path = tmp_path / "answers.jsonl"
    text = _cli("check", str(path))
    assert text.exit_code == 1 and f"{path}:2:1: E004 the trace runs to 5, the record's answer is 6" in text.output
    assert "2 checked: 1 ok, 1 with errors (1 errors, 0 warnings); 1/2 answers correct" in text.output


@pytest.mark.parametrize("answer", ['"NaN"', '"Infinity"', '"-inf"', "true", "false", "[5]", '{"v": 5}', '"five"',
                                    '"1/0"', '"0/0"', '""', '"+-5"', '"--5"', "1e400", '"5 apples"'])
def test_an_answer_that_is_not_a_finite_exact_number_is_an_error_never_graded(tmp_path, answer):
    r, rows = _check_answers(tmp_path, [answer])
    assert r.exit_code == 1, r.output
    (row,) = rows
    assert row["ok"] is False and row["correct"] is None and row["expected"] is None
    assert [d["code"] for d in row["diagnostics"]] == ["E003"]


@pytest.mark.parametrize("answer", ['"5"', "5", "5.0", '"5.00"', '"$5"', '"#### 5"', '"+5"', '"10/2"', "null"])
def test_answers_in_accepted_shapes_grade(tmp_path, answer):
    r, rows = _check_answers(tmp_path, [answer])
    assert r.exit_code == 0, r.output
    assert rows[0]["correct"] is (None if answer == "null" else True)


def test_answer_value_refuses_what_is_not_a_finite_exact_number():
    from fractions import Fraction

    from tracelang.numbers import answer_value, parse_answer

    for bad in (float("nan"), float("inf"), True, None, [1], {"a": 1}, "1/0", "--1", "+-3", "9" * 1_001, "1e5"):
        assert answer_value(bad) is None, bad
    assert parse_answer("--1") is None and parse_answer("+-3") is None
    assert answer_value(2.5) == Fraction(5, 2) and answer_value("#### 1,000") == 1000 and answer_value(-3) == -3


# ---------------------------------------------------------------- usage errors

def _one_line_usage_error(r) -> None:
    assert r.exit_code == 2, r.output
    assert isinstance(r.exception, SystemExit)
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output


def test_decode_fuzz_refuses_a_negative_seed_before_loading_anything(tmp_path, monkeypatch):
    from tracelang.decoding import commands

    def no_tokenizer(name):
        raise AssertionError("a tokenizer was loaded")

    monkeypatch.setattr(commands, "_tokenizer", no_tokenizer)
    r = _cli("decode", "fuzz", "--seed", "-1", "--n", "1", "--out", str(tmp_path / "f.jsonl"))
    _one_line_usage_error(r)
    assert "--seed" in r.output and not (tmp_path / "f.jsonl").exists()


def test_gsm8k_import_refuses_to_overwrite_its_input(tmp_path):
    src = tmp_path / "train.jsonl"
    text = '{"question": "Ray has 6 cats.", "answer": "He has 6 cats.\\n#### 6"}\n'
    src.write_text(text, encoding="utf-8")
    link = tmp_path / "link.jsonl"
    link.symlink_to(src)
    for out in (src, link, tmp_path / "." / "train.jsonl"):
        _one_line_usage_error(_cli("gsm8k", "import", "--input", str(src), "--out", str(out)))
        assert src.read_text(encoding="utf-8") == text
    _one_line_usage_error(_cli("gsm8k", "import", "--input", str(src), "--out", str(tmp_path / "o.jsonl"),
                               "--report", str(tmp_path / "o.jsonl")))


def test_gsm8k_split_refuses_coinciding_outputs(tmp_path):
    src = tmp_path / "records.jsonl"
    src.write_text(GOOD + "\n", encoding="utf-8")
    same = tmp_path / "x.jsonl"
    _one_line_usage_error(_cli("gsm8k", "split", "--input", str(src), "--dev", str(same), "--train", str(same)))
    assert not same.exists()
    _one_line_usage_error(_cli("gsm8k", "split", "--input", str(src), "--dev", str(src)))
    assert src.read_text(encoding="utf-8") == GOOD + "\n"


# ---------------------------------------------------------------- atomic writes

def test_atomic_write_goes_through_a_symlink_and_keeps_the_mode(tmp_path):
    """Only when asked (fmt of a file the user named): by default a link is replaced, see below."""
    from tracelang.fileio import atomic_write

    target = tmp_path / "real.txt"
    target.write_text("old\n")
    target.chmod(0o644)
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    with atomic_write(link, through_links=True) as fh:
        fh.write("new\n")
    assert link.is_symlink() and target.read_text() == "new\n"
    assert (target.stat().st_mode & 0o777) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.txt", "real.txt"]


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "dangling", "device"])
def test_atomic_write_replaces_a_link_and_never_writes_through_it(tmp_path, kind):
    """Issue 25 class 8: a link planted where an output goes is replaced; what it points at is untouched."""
    from tracelang.fileio import atomic_write

    target = tmp_path / "precious.txt"
    target.write_text("keep\n")
    out = tmp_path / "out.txt"
    if kind == "symlink":
        out.symlink_to(target)
    elif kind == "hardlink":
        os.link(target, out)
    elif kind == "device":  # a link to a device is replaced too: only a device named itself is written
        out.symlink_to("/dev/null")
    else:
        out.symlink_to(tmp_path / "nowhere" / "x.txt")
    with atomic_write(out) as fh:
        fh.write("new\n")
    assert not out.is_symlink() and out.read_text() == "new\n"
    assert target.read_text() == "keep\n" and not (tmp_path / "nowhere").exists()


def test_atomic_write_to_a_directory_is_an_oserror_naming_it(tmp_path):
    from tracelang.fileio import atomic_write

    with pytest.raises(IsADirectoryError, match=str(tmp_path)), atomic_write(tmp_path) as fh:
        fh.write("x")


def test_fmt_of_a_symlink_formats_the_target(tmp_path):
    target = tmp_path / "t.yaml"
    target.write_text("expert: arithmetic\ntrace:\n- {op: init, var: a, value: 2.50}\n- {op: query, var: a}\n")
    target.chmod(0o640)
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    r = _cli("fmt", str(link))
    assert r.exit_code in (0, 1), r.output
    assert link.is_symlink() and "value: 2.5}" in target.read_text()
    assert (target.stat().st_mode & 0o777) == 0o640


def test_odd_characters_and_huge_block_numbers_are_record_errors(tmp_path):
    from tracelang.fileio import LineError, loads_line
    from tracelang.numbers import answer_value, parse_literal
    from tracelang.pipeline import analyze

    for line in ('{"trace": "a\\ud800"}', '{"answer": "\\udfff"}', '{"\\ud800": 1}'):
        with pytest.raises(LineError, match="lone surrogate"):
            loads_line(line)
    assert loads_line('{"a": "\\ud83d\\ude00"}') == {"a": "\U0001F600"}  # a pair is text
    for text in ("\u00b2", "3\u00b2", "\u0663", "\uff11\uff12", "1/\u00b2"):
        assert parse_literal(text) is None and answer_value(text) is None, text
    far = ("- expert: arithmetic\n  trace:\n  - {op: init, var: a, value: 1}\n  - {op: init, var: b, value: 2}\n"
           "  - {op: compute, compute_op: add, args: [a, b], var: result}\n  - {op: query, var: result}\n"
           "- expert: arithmetic\n  trace:\n  - {op: init, var: s, source: sub" + "9" * 4400 + ".result}\n"
           "  - {op: init, var: c, value: 2}\n  - {op: compute, compute_op: add, args: [s, c], var: result}\n"
           "  - {op: query, var: result}\n")
    assert [d.code for d in analyze(far).diagnostics] == ["E203"]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"trace": "expert: arithmetic\\ntrace:\\n- {op: init, var: a\\ud800, value: 1}\\n"}\n')
    for args in (["check", str(corpus)], ["fmt", str(corpus)]):
        result = subprocess.run([sys.executable, "-m", "tracelang", *args], capture_output=True, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
        assert "Traceback" not in result.stderr and result.returncode in (1, 2), result.stderr
        assert "lone surrogate" in result.stdout + result.stderr
