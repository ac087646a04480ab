"""The annotation-to-trace importer on hand-written problems (none comes from GSM-8K)."""

from __future__ import annotations

import pytest

from tracelang.data.contamination import Guard
from tracelang.data.gsm8k import Problem, gold_answer
from tracelang.data.importer import FAILURES, convert, import_problems
from tracelang.grounding import grounder_for
from tracelang.pipeline import analyze


def problem(question: str, solution: str, pid: str = "gsm8k-train-00001") -> Problem:
    return Problem(pid, int(pid.rsplit("-", 1)[1]), pid.split("-")[1], question, solution, gold_answer(solution))


def converted(question: str, solution: str, **kw) -> dict:
    conversion = convert(problem(question, solution), **kw)
    assert conversion.failure is None, (conversion.failure, conversion.detail)
    record = conversion.record
    # every kept trace checks clean (grounded unless meta says otherwise) and executes to gold
    report = analyze(record["trace"], expected=record["answer"], grounder=grounder_for(record["question"]))
    assert report.ok and report.correct
    assert [d.code for d in report.diagnostics] == conversion.warnings
    return record


def failure(question: str, solution: str, **kw) -> str:
    conversion = convert(problem(question, solution), **kw)
    assert conversion.record is None
    assert conversion.failure in FAILURES
    return conversion.failure


def test_nested_expression_is_one_step_per_operation() -> None:
    record = converted(
        "A baker bakes 12 trays of 8 rolls and 5 trays of 6 buns. She sells 30 of them. How many are left?",
        "She has 12*8+5*6-30 = <<12*8+5*6-30=96>>96 left.\n#### 96")
    assert record["trace"] == """\
expert: arithmetic
trace:
- {op: init, var: trays, value: 12}
- {op: init, var: rolls, value: 8}
- {op: init, var: trays_2, value: 5}
- {op: init, var: buns, value: 6}
- {op: init, var: sells, value: 30}
- {op: compute, compute_op: mul, args: [trays, rolls], var: step1}
- {op: compute, compute_op: mul, args: [trays_2, buns], var: step2}
- {op: compute, compute_op: add, args: [step1, step2], var: step3}
- {op: compute, compute_op: sub, args: [step3, sells], var: result}
- {op: query, var: result}
"""
    assert record["answer"] == "96" and record["expert"] == "arithmetic"
    assert record["id"] == "gsm8k-train-00001" and record["source"] == "gsm8k-train"
    assert record["meta"]["steps"] == 4


def test_later_steps_reference_earlier_results() -> None:
    record = converted(
        "Ivy picks 14 apples and gives half to Sam. Then she picks 9 more. How many apples does she have?",
        "She gives away 14/2 = <<14/2=7>>7.\nShe keeps 14-7 = <<14-7=7>>7.\nNow she has 7+9 = <<7+9=16>>16.\n#### 16")
    assert "- {op: compute, compute_op: div, args: [apples, halves], var: gives_away}" in record["trace"]
    assert "- {op: compute, compute_op: sub, args: [apples, gives_away], var: keeps}" in record["trace"]
    assert "- {op: compute, compute_op: add, args: [keeps, more], var: result}" in record["trace"]


def test_percent_patterns_become_percent_ops() -> None:
    record = converted(
        "A bike costs $240. It is on sale for 25% off, and then a 10% sales tax is added. What does it cost?",
        "The discount is 240*25/100 = <<240*25/100=60>>60.\nSo it costs 240-60 = <<240-60=180>>180.\n"
        "With tax, 180*1.1 = <<180*1.1=198>>198.\n#### 198")
    assert record["expert"] == "percentage"
    assert record["trace"].splitlines()[5:8] == [
        "- {op: percent_of, base: bike_cost, rate: discount_percent, var: discount}",
        "- {op: compute, compute_op: sub, args: [bike_cost, discount], var: step1}",
        "- {op: percent_increase, base: step1, rate: sales_tax_percent, var: result}",
    ]


@pytest.mark.parametrize("annotation", ["80*.15", "0.15*80", "15/100*80", "80*15*.01", "15%*80"])
def test_percent_of_spellings(annotation: str) -> None:
    record = converted("A jar holds 80 beads and 15% of them are red. How many are red?",
                       f"Red: {annotation} = <<{annotation}=12>>12.\n#### 12")
    assert "- {op: percent_of, base: beads, rate: red_percent, var: result}" in record["trace"]


def test_percent_off_from_a_complement() -> None:
    record = converted("A lamp costs $60 and is 30% off. What is the sale price?",
                       "It costs 60*0.7 = <<60*0.7=42>>42.\n#### 42")
    assert "- {op: percent_off, base: lamp_cost, rate: discount_percent, var: result}" in record["trace"]


def test_the_same_number_twice_in_the_question_gives_two_inputs() -> None:
    record = converted("Lena has 5 red pens and 5 blue pens. Each pen costs $2. How much did she pay?",
                       "She has 5+5 = <<5+5=10>>10 pens.\nThey cost 10*2 = $<<10*2=20>>20.\n#### 20")
    assert "- {op: compute, compute_op: add, args: [red_pens, blue_pens], var: pens}" in record["trace"]


def test_solution_words_pick_which_occurrence() -> None:
    record = converted(
        "A relay has 8 runners. The first 5 runners run for 8 hours each and the others run for 3 hours each. "
        "How many hours in all?",
        "The first group runs 5 runners x 8 hours = <<5*8=40>>40 hours.\n"
        "There are 8 runners - 5 runners = <<8-5=3>>3 others.\nThey run 3*3 = <<3*3=9>>9 hours.\n"
        "In all 40+9 = <<40+9=49>>49 hours.\n#### 49")
    lines = record["trace"].splitlines()
    assert "- {op: compute, compute_op: mul, args: [runners_run, hours_each], var: hours}" in lines
    assert "- {op: compute, compute_op: sub, args: [runners, runners_run], var: others}" in lines
    # the computed 3 and the stated "3 hours" are kept apart
    assert "- {op: compute, compute_op: mul, args: [others, hours_each_2], var: step1}" in lines


def test_repeated_computation_is_reused_and_identities_dropped() -> None:
    record = converted(
        "Two boxes each hold 6 rows of 4 cups. How many cups are there?",
        "One box has 6*4 = <<6*4=24>>24 cups.\nThe other has 6*4*1 = <<6*4*1=24>>24 cups.\n"
        "Together 24+24 = <<24+24=48>>48.\n#### 48")
    steps = [line for line in record["trace"].splitlines() if "compute" in line]
    assert steps == ["- {op: compute, compute_op: mul, args: [rows, cups], var: step1}",
                     "- {op: compute, compute_op: add, args: [step1, step1], var: result}"]


def test_steps_that_do_not_lead_to_the_answer_are_dropped() -> None:
    record = converted("Max has 9 marbles and 4 cards. He wins 6 marbles. How many marbles does he have?",
                       "Cards doubled: 4*2 = <<4*2=8>>8.\nMarbles: 9+6 = <<9+6=15>>15.\n#### 15")
    assert "cards" not in record["trace"] and "mul" not in record["trace"]


def test_constants_are_named_inputs() -> None:
    record = converted("A pump moves 3 liters a minute. How many liters does it move in 2 hours?",
                       "Minutes: 2*60 = <<2*60=120>>120.\nLiters: 120*3 = <<120*3=360>>360.\n#### 360")
    assert "- {op: init, var: minutes_per_hour, value: 60}" in record["trace"]
    assert record["expert"] == "rate_equation"


def test_floor_and_percent_answers() -> None:
    record = converted("Each van seats 7 people. How many full vans can 30 people fill?",
                       "30/7 = <<30/7=4.29>>4.29 vans.\n#### 4")
    assert "- {op: compute, compute_op: floor, args: [step1], var: result}" in record["trace"]
    record = converted("Out of 40 seeds, 30 sprouted. What percent sprouted?",
                       "30/40 = <<30/40=0.75>>0.75.\n#### 75")
    assert "- {op: compute, compute_op: mul, args: [step1, percent], var: result}" in record["trace"]


def test_prose_equations_fill_gaps_between_annotations() -> None:
    record = converted("Ana has 12 shells and finds 7 more. She gives 5 away. How many are left?",
                       "She has 12 + 7 = 19 shells.\nThen 19-5 = <<19-5=14>>14.\n#### 14")
    assert "- {op: compute, compute_op: add, args: [shells, more_finds], var: step1}" in record["trace"]


def test_ungrounded_values_warn_or_fail_in_strict_mode() -> None:
    question = "Ben walks his dogs. He has 3 dogs. How many legs do the dogs have?"
    solution = "Each dog has 4 legs, so 3*4 = <<3*4=12>>12 legs.\n#### 12"
    assert "legs_per_animal" in converted(question, solution)["trace"]  # a licensed constant
    question = "Ben has 3 cats and some birds. How many pets?"
    solution = "He has 5 birds, so 3+5 = <<3+5=8>>8 pets.\n#### 8"
    record = converted(question, solution)
    assert "- {op: init, var: birds, value: 5}" in record["trace"]
    assert record["meta"]["warnings"] == {"W701": 1}
    assert failure(question, solution, strict=True) == "ungrounded_value"


@pytest.mark.parametrize(("question", "solution", "category"), [
    ("Sam has 7 apples.", "He has 7 apples.\n#### 7", "no_annotations"),
    ("Sam has 7 apples.", "He has <<7=7>>7 apples.\n#### 7", "answer_is_input"),
    ("Sam has 7 apples and 2 pears.", "He has 7+2 = <<7+2=9>>9.\n#### 11", "answer_not_computed"),
    ("Sam has 7 apples.", "He has <<7+2=9>>9.\n", "missing_gold"),
    ("Sam has 7 apples.", "He has <<7$2=9>>9.\n#### 9", "unparsable_annotation"),
    ("Sam has 7 apples.", "He has <<7/0=9>>9.\n#### 9", "invalid_annotation"),
    ("Twice a number is 14.", "Let x be it. 2x = 14, so x = <<7=7>>7.\n#### 7", "algebra"),
])
def test_failure_categories(question: str, solution: str, category: str) -> None:
    assert failure(question, solution) == category


def test_import_problems_reports_and_guards() -> None:
    good = problem("A kite costs $3. How much do 4 kites cost?", "4*3 = <<4*3=12>>12.\n#### 12",
                   "gsm8k-train-00002")
    bad = problem("Zoe has 4 kites.", "She has 4.\n#### 4", "gsm8k-train-00003")
    twin = problem("Zoe buys 9 kites at $5 each. What does she pay?", "9*5 = <<9*5=45>>45.\n#### 45",
                   "gsm8k-train-00004")
    guard = Guard.from_questions([("gsm8k-test-00000", "Ann buys 9 kites at $5 each. What does she pay?")], n=6)
    records, report = import_problems([good, bad, twin], guard=guard)
    assert [r["id"] for r in records] == ["gsm8k-train-00002"]
    data = report.to_json()
    assert (data["total"], data["converted"]) == (3, 1)
    assert data["failures"] == {"contaminated": 1, "no_annotations": 1}
    assert data["contaminated"][0]["reference"] == "gsm8k-test-00000"
    records, report = import_problems([twin], guard=guard, allow_contaminated=True)
    assert records[0]["meta"]["contaminated"]["kind"] == "ngram"
