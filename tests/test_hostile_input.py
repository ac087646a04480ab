"""Issue 14: hostile input. No code from caches, no hangs, no tracebacks, no wrong answer graded correct."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from tracelang.decoding import constraint
from tracelang.decoding.constraint import Constraint, compile_tokenizer, make_config, save
from tracelang.decoding.guide import Levels
from tracelang.decoding.tokenizer_store import tiny_bpe
from tracelang.decoding.vocab import fingerprint
from tracelang.grammar import grammar_hash


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
