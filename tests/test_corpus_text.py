"""Question text: slots, number formats, people by name then pronoun, pools."""

from __future__ import annotations

from pathlib import Path
from random import Random

import pytest

from tracelang.corpus.numwords import has_number_word, to_words, wordable
from tracelang.corpus.pools import PoolError, identifier, load_pools, plural
from tracelang.corpus.text import Format, Renderer, TextError, compile_text, money_text
from tracelang.numbers import Exact

POOLS = """
[people]
kind = "people"
she = ["Amara", "Lena"]
he = ["Tomas"]

["items.fruit"]
kind = "items"
entries = ["apple", "peach", "cherry|cherries"]

[units]
entries = [{big = "hour", small = "minute", factor = 60}]
"""


@pytest.fixture()
def pools(tmp_path: Path):
    path = tmp_path / "pools.toml"
    path.write_text(POOLS, encoding="utf-8")
    return load_pools([path])


def test_pools_load_people_items_and_tables(pools) -> None:
    people = pools["people"]
    assert [e.text for e in people.entries] == ["Amara", "Lena", "Tomas"]
    assert people.entries[2].attrs["their"] == "his"
    fruit = {e.attrs["one"]: e for e in pools["items.fruit"].entries}
    assert fruit["cherry"].text == "cherries" and fruit["apple"].attrs["a"] == "an apple"
    assert pools["units"].entries[0].attrs["factor"] == 60
    assert pools["units"].attr_kinds == {"big": "text", "small": "text", "factor": "num"}


@pytest.mark.parametrize(("body", "message"), [
    ('[p]\nkind = "people"\nshe = [3]', "not a name"),
    ('[p]\nentries = []', "non-empty list"),
    ('[p]\nentries = ["a", "a"]', "listed twice"),
    ('[p]\nentries = [{x = 1}, {y = 2}]', "differ from the first entry"),
    ('[p]\nkind = "animals"\nentries = ["a"]', "unknown kind"),
    ('[p]\nentries = [{x = 1e30}]', "write the number"),
    ("[p\n", "Expected"),
])
def test_pool_errors_name_file_and_pool(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(PoolError, match=message) as err:
        load_pools([path])
    assert str(path) in str(err.value)


def test_plurals_identifiers_words() -> None:
    assert [plural(w) for w in ("box", "peach", "berry", "day", "kite")] == \
        ["boxes", "peaches", "berries", "days", "kites"]
    assert identifier("Ji-woo") == "ji_woo" and identifier("Ana María") == "ana_maria"
    assert to_words(45) == "forty-five" and to_words(300) == "three hundred"
    assert to_words(1200) == "one thousand two hundred"
    assert wordable(12) and wordable(40) and not wordable(37)
    assert has_number_word("She has twice as many.") and has_number_word("Half of them")
    assert not has_number_word("I have 3")


def test_people_are_named_first_then_pronouns_unless_ambiguous(pools) -> None:
    amara, lena, tomas = pools["people"].entries
    env = {"a": amara, "b": lena, "t": tomas}
    out = Renderer(Random(0))
    texts = ["{a.they} buys a kite.", "{a.they} flies it with {t}.", "{t.their} kite is red.", "{b} has one too.",
             "{a.their} kite is blue."]
    rendered = [out.sentence(compile_text(t), env, {}) for t in texts]
    assert rendered == ["Amara buys a kite.", "She flies it with Tomas.", "His kite is red.", "Lena has one too.",
                        "Amara's kite is blue."]  # after Lena, "her" would be ambiguous
    assert out.names == ["Amara", "Tomas", "Lena"]


def test_number_formats(pools) -> None:
    env = {"p": Exact(1250), "c": Exact(25, 2), "r": Exact(15), "n": Exact(12), "big": Exact(4500)}
    formats = {"p": Format("money"), "c": Format("money"), "r": Format("percent"), "n": Format("number"),
               "big": Format("number")}
    words = Renderer(Random(0), words_p=1.0)
    assert words.sentence(compile_text("{p} and {c}"), env, formats) == "$1,250 and $12.50"
    assert words.sentence(compile_text("Only {n} left."), env, formats) == "Only twelve left."
    assert words.sentence(compile_text("{n}% off"), env, formats) == "12% off"  # next to %: digits
    assert words.sentence(compile_text("{r} off"), env, formats) in ("15% off", "15 percent off")
    assert words.sentence(compile_text("{n.digits} and {big.words}"), env, formats) == "12 and 4500"
    digits = Renderer(Random(0), words_p=0.0)
    assert digits.sentence(compile_text("We have {n} boxes."), env, formats) == "We have 12 boxes."
    assert words.sentence(compile_text("Take {n}% of it"), env, formats) == "Take 12% of it"  # not "twelve%"
    assert money_text(Exact(5, 2)) == "$2.50" and money_text(Exact(1, 3)) == "$1/3"


def test_a_sentence_never_starts_with_digits_when_words_are_allowed(pools) -> None:
    out = Renderer(Random(0), words_p=0.0)
    assert out.sentence(compile_text("{n} children came."), {"n": Exact(7)}, {"n": Format()}) == "Seven children came."


def test_stray_braces_are_errors() -> None:
    for bad in ("a { b", "costs {price", "x}"):
        with pytest.raises(TextError, match="stray"):
            compile_text(bad)
    assert [s.var for s in compile_text("{a} and {b.c}").slots] == ["a", "b"]
