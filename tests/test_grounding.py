"""Quantities in question text: spans, exact values, kinds, derived values, constants, grounding.
Every sentence here is written for these tests (none comes from GSM-8K)."""

from __future__ import annotations

import pytest

from tracelang.grounding import Quantity, allowed_values, constants_for, extract, grounder_for, stated_values
from tracelang.numbers import Exact


def found(text: str) -> list[tuple[str, str, Exact]]:
    return [(q.text, q.kind, q.value) for q in extract(text)]


def q(num: int, den: int = 1) -> Exact:
    return Exact(num, den)


@pytest.mark.parametrize(("text", "expected"), [
    ("The ferry carried 1,250 cars and 3.75 tons of mail.",
     [("1,250", "number", q(1250)), ("3.75", "number", q(15, 4))]),
    ("A lamp costs $1.50, a bulb 75 cents and a shade $12.",
     [("$1.50", "money", q(3, 2)), ("75 cents", "money", q(75)), ("$12", "money", q(12))]),
    ("Prices rose 12.5% in May and 40 percent in June.",
     [("12.5%", "percent", q(25, 2)), ("40 percent", "percent", q(40))]),
    ("Mix 3/4 cup of oats with 2 1/3 cups of milk.",
     [("3/4", "fraction", q(3, 4)), ("2 1/3", "fraction", q(7, 3))]),
    ("Forty-five owls and two hundred and six bats live in a hundred and ten caves.",
     [("Forty-five", "word", q(45)), ("two hundred and six", "word", q(206)),
      ("a hundred and ten", "word", q(110))]),
    ("The crate held a dozen pears, half a dozen figs and three dozen plums.",
     [("a dozen", "word", q(12)), ("half a dozen", "word", q(6)), ("three dozen", "word", q(36))]),
    ("Pia swam twice as far, then tripled it, for a quarter of an hour.",
     [("twice", "multiplier", q(2)), ("tripled", "multiplier", q(3)), ("a quarter", "fraction", q(1, 4))]),
    ("One-third of the seeds and two-fifths of the bulbs sprouted in half the time.",
     [("One-third", "fraction", q(1, 3)), ("two-fifths", "fraction", q(2, 5)), ("half", "fraction", q(1, 2))]),
    ("The hike took 2 and a half hours; the drive took one and a quarter hours.",
     [("2 and a half", "fraction", q(5, 2)), ("one and a quarter", "fraction", q(5, 4))]),
    ("The town has 2.5 million trees and a budget of $3 billion.",
     [("2.5 million", "number", q(2_500_000)), ("$3 billion", "money", q(3_000_000_000))]),
    ("Tess, Omar, and Lin each read a 320-page novel on the 3rd floor.",
     [("Tess, Omar, and Lin", "count", q(3)), ("320", "number", q(320)), ("3rd", "ordinal", q(3))]),
    ("Bake at 350 degrees from 3:30 until ½ past, then add 1 ¾ cups.",
     [("350", "number", q(350)), ("3", "number", q(3)), ("30", "number", q(30)), ("½", "fraction", q(1, 2)),
      ("1 ¾", "fraction", q(7, 4))]),
    ("Nobody counted anything here.", []),
])
def test_extract(text: str, expected: list) -> None:
    assert found(text) == expected


def test_spans_point_at_the_text() -> None:
    text = "Jo paid $4.25 for 3 pens and two-thirds of a cake."
    for quantity in extract(text):
        assert text[quantity.start:quantity.end] == quantity.text
    assert [quantity.text for quantity in extract(text)] == ["$4.25", "3", "two-thirds"]


def test_derived_values() -> None:
    (pct,) = extract("Sales fell 25% this year.")
    assert pct.value == 25 and {q(1, 4), q(75), q(3, 4), q(125), q(5, 4)} <= set(pct.also)
    (frac,) = extract("She ate 3/8 of it.")
    assert set(frac.also) == {q(3), q(8)}
    (coins,) = extract("It cost $0.35.")
    assert coins.also == (q(35),)  # 35 cents
    (half,) = extract("He gave half away.")
    assert half.value == q(1, 2) and half.also == (q(2),)


def test_overlaps_keep_the_longest() -> None:
    # "2 and a half dozen" is one quantity, not "2", "a half" and "dozen"
    assert found("Buy 2 and a half dozen rolls.") == [("2 and a half dozen", "fraction", q(30))]


def test_constants_follow_their_cues() -> None:
    names = {c.name: c.value for c in constants_for("A train runs 3 hours a day for 2 weeks.")}
    assert names["minutes_per_hour"] == 60 and names["hours_per_day"] == 24 and names["days_per_week"] == 7
    assert "months_per_year" not in names and "cents_per_dime" not in names
    plain = {c.value for c in constants_for("Ann has 5 pens.")}
    assert plain == {q(0), q(1), q(2), q(100)}  # the universal ones only


def test_allowed_values_and_grounder() -> None:
    question = "A coat costs $80 and is 15% off for a week."
    allowed = allowed_values(question)
    assert {q(80), q(15), q(3, 20), q(85), q(7), q(100)} <= allowed
    ground = grounder_for(question)
    assert ground(q(80)) and ground(q(85)) and ground(q(7))
    assert not ground(q(81)) and not ground(q(60))


def test_stated_values_are_the_quantities_as_written() -> None:
    """What E401 exempts: the question's own quantities, neither derived values nor constants."""
    question = "A coat costs $80 and is 15% off for 1 week."
    assert stated_values(question) == {q(80), q(15), q(1)}
    ground = grounder_for(question)
    assert ground.stated(q(1)) and not ground.stated(q(85)) and not ground.stated(q(100))  # type: ignore[attr-defined]
    assert ground(q(100)) and ground(q(85))  # allowed (W701) all the same


def test_quantity_is_frozen() -> None:
    quantity = extract("7 cats")[0]
    assert isinstance(quantity, Quantity) and quantity.values == (q(7),)
    with pytest.raises(AttributeError):
        quantity.value = q(8)  # type: ignore[misc]


def test_hostile_text_is_fast_and_safe() -> None:
    long = "9" * 5000 + " apples and " + "one " * 2000 + "pears " + "(" * 3000 + "Abc, " * 20000
    result = extract(long)
    assert [quantity.text for quantity in result][:2] == ["one", "one"]  # the 5000-digit run is no quantity


def test_spec_shows_the_constants_table() -> None:
    from pathlib import Path

    from tracelang.grounding import constants_markdown

    spec = (Path(__file__).resolve().parents[1] / "spec" / "quantities.md").read_text(encoding="utf-8")
    assert constants_markdown() in spec
