"""Families where only the wording decides the op (corpora/templates/wording.toml), and the held-out
generalisation templates (corpora/templates/heldout/) that training never loads."""

from __future__ import annotations

import json

import pytest

from tracelang.corpus.compose import TemplateSource
from tracelang.corpus.generate import generate
from tracelang.corpus.library import Library
from tracelang.paths import TEMPLATES
from tracelang.pipeline import parse

FAMILIES = ("change", "compare", "parts", "rate", "distract")


@pytest.fixture(scope="module")
def training() -> Library:
    return Library.load(TEMPLATES)


@pytest.fixture(scope="module")
def heldout() -> Library:
    return Library.load(TEMPLATES / "heldout")


def _ops(template) -> set[str]:
    text = template.trace_text
    return {op for op in ("add", "sub", "mul", "div") if f"compute_op: {op}" in text}


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_has_three_wordings_and_the_wording_picks_the_op(training: Library, family: str) -> None:
    members = [t for t in training.templates if t.family == family]
    assert len(members) >= 2
    for t in members:
        assert all(len(fact) >= 3 for fact in t.facts), t.id
        assert len(t.question) >= 3, t.id
    # the same kind of story goes with more than one operation: only the words tell them apart
    assert len(set().union(*(_ops(t) for t in members))) >= 2


def test_trace_names_keep_the_deciding_words(training: Library) -> None:
    names = " ".join(t.trace_text for t in training.templates if t.family in FAMILIES)
    for word in ("had_at_first", "gave_away", "got_more", "more_than_first", "fewer_than_first",
                 "times_as_many", "per_bag", "pages_per_day", "in_all", "left"):
        assert word in names


def test_heldout_templates_are_never_in_the_training_library(training: Library, heldout: Library) -> None:
    assert heldout.templates and heldout.pools  # its pools are the parent's
    train_ids = {t.id for t in training.templates}
    assert not train_ids & {t.id for t in heldout.templates}
    train_phrases = {p.source for t in training.templates for fact in t.facts for p in fact}
    for t in heldout.templates:  # the deciding fact is worded as no training template words it
        assert any(not {p.source for p in fact} & train_phrases for fact in t.facts), t.id
    assert {t.family for t in heldout.templates} - {t.family for t in training.templates}  # whole families too


def test_the_generalisation_set_generates_verified_and_distinct_from_training(heldout: Library,
                                                                                training: Library) -> None:
    general = list(generate(60, seed=11, templates=TemplateSource(heldout)))
    trained = list(generate(300, seed=11, templates=TemplateSource(training)))
    assert len(general) == 60
    assert not {r["question"] for r in general} & {r["question"] for r in trained}
    for record in general[:20]:
        report = parse(record["trace"])
        assert report.program is not None, json.dumps(record)
    again = list(generate(60, seed=11, templates=TemplateSource(heldout)))
    assert [r["question"] for r in again] == [r["question"] for r in general]
