"""Names that keep the words deciding an operation (issue 26): quantities, computed steps, the rate.
Every question here is written for this test; none comes from GSM-8K."""

from __future__ import annotations

import pytest

from tracelang.corpus.stats import corpus_stats, relation_steps
from tracelang.data.gsm8k import Problem, gold_answer
from tracelang.data.importer import convert
from tracelang.data.naming import base_name, relation_words, step_name
from tracelang.grounding import extract
from tracelang.numbers import Exact
from tracelang.pipeline import parse


def name_of(question: str, number: str) -> str:
    quantity = next(q for q in extract(question) if q.text == number)
    return base_name(question, quantity)


@pytest.mark.parametrize(("question", "number", "name"), [
    ("A class has 15 more girls than boys. There are 40 girls.", "15", "more_girls_than_boys"),
    ("The bus had 20 children. Then 5 children got off at the park.", "5", "children_got_off"),
    ("Tom had 30 marbles. He gave away 12 marbles to his friends.", "12", "marbles_gave_away"),
    ("Ada had 12 stickers at first, and now she has 30.", "12", "stickers_at_first"),
    ("Ben reads 25 pages per day.", "25", "pages_per_day"),
    ("Ana has 12 shells. She gives 5 away.", "5", "gives_away"),
    ("Leo has 8 fewer cards than Mia.", "8", "fewer_cards_than_mia"),
    ("Sam sold 48 clips in April.", "48", "clips_sold_in_april"),
    ("There are 7 apples left.", "7", "apples_left"),
    ("Tickets cost $7 each.", "$7", "tickets_cost_each"),
    ("The 5 runners run for 8 hours each.", "8", "hours_each"),
    ("Each box holds 6 cups.", "6", "cups_per_box"),
    ("Each bag holds 6 bag apples.", "6", "bag_apples"),  # the noun is named already: no dangling per
    ("Every crate has 12 pears.", "12", "pears_per_crate"),
])
def test_quantity_names_keep_the_relation_words(question: str, number: str, name: str) -> None:
    assert name_of(question, number) == name


def test_a_plain_quantity_keeps_its_plain_name() -> None:
    assert name_of("Eli has 9 apples.", "9") == "apples"


@pytest.mark.parametrize(("line", "value", "name"), [
    ("Sam sold 48/2 = <<48/2=24>>24 clips in May.", 24, "clips_in_may"),
    ("He had 30-12=<<30-12=18>>18 marbles left.", 18, "marbles_left"),
    ("The total cost is 5*3 = <<5*3=15>>15.", 15, "total_cost"),
    ("5*3 = <<5*3=15>>15", 15, ""),
])
def test_step_names_come_from_the_solution_line(line: str, value: int, name: str) -> None:
    assert step_name(line, Exact(value)) == name


def test_the_importer_names_quantities_and_steps_by_their_relations() -> None:
    question = "Tom had 30 marbles. He gave away 12 marbles to his friends. Then he bought 5 more. " \
               "How many marbles does he have now?"
    solution = "He had 30-12=<<30-12=18>>18 marbles left.\nNow he has 18+5=<<18+5=23>>23 marbles.\n#### 23"
    record = convert(Problem("gsm8k-train-00001", 1, "train", question, solution, gold_answer(solution))).record
    assert record["trace"].splitlines()[2:] == [
        "- {op: init, var: marbles, value: 30}",
        "- {op: init, var: marbles_gave_away, value: 12}",
        "- {op: init, var: more_bought, value: 5}",
        "- {op: compute, compute_op: sub, args: [marbles, marbles_gave_away], var: marbles_left}",
        "- {op: compute, compute_op: add, args: [marbles_left, more_bought], var: result}",
        "- {op: query, var: result}",
    ]


def test_relation_words_are_those_the_question_says() -> None:
    question = "Tom had 30 marbles. He gave away 12. How many are left?"
    assert relation_words(question, ["marbles_gave_away"]) == {"gave", "away"}
    assert relation_words(question, ["marbles", "number_12"]) == set()
    assert relation_words(question, ["more_marbles"]) == set()  # "more" is not in this question
    assert relation_words(question, ["minutes_per_hour"]) == {"per"}  # a rate, however the question says it


def test_the_rate_counts_compute_steps_whose_names_carry_a_relation() -> None:
    question = "Tom had 30 marbles. He gave away 12. Then he found 4. How many are left?"
    trace = ("expert: arithmetic\ntrace:\n- {op: init, var: marbles, value: 30}\n"
             "- {op: init, var: marbles_gave_away, value: 12}\n- {op: init, var: found, value: 4}\n"
             "- {op: compute, compute_op: sub, args: [marbles, marbles_gave_away], var: kept}\n"
             "- {op: compute, compute_op: add, args: [kept, found], var: result}\n- {op: query, var: result}\n")
    program = parse(trace).program
    assert relation_steps(question, program) == (2, 2)
    plain = trace.replace("marbles_gave_away", "marbles_2").replace("found", "marbles_3")
    assert relation_steps(question, parse(plain).program) == (2, 0)
    stats = corpus_stats([{"question": question, "trace": plain, "expert": "arithmetic"},
                          {"question": question, "trace": trace, "expert": "arithmetic"}])
    assert stats.table()["steps whose names carry relation words"] == "50.0%"
