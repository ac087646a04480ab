"""Self-consistency (maj@k): k sampled traces per problem, each executed exactly by the runtime;
the answer most of the valid traces agree on wins, and one trace that gives it is the prediction.

Votes are counted on exact answers (rationals), never on text, so two different plans that run to
the same number agree. Every sample's answer is kept, so the run reports pass@k (a right answer among
the k) beside maj@k. A problem with no valid trace among its k keeps the first sample (scored
as what it is: invalid). Ties go to the answer reached first in sample order, so a run repeats."""

from __future__ import annotations

from collections import Counter

from ..grounding import grounder_for
from ..numbers import render
from ..pipeline import analyze
from .backends import Backend, Generated


class VotingBackend:
    def __init__(self, sampler: Backend, k: int):
        if k < 1:
            raise ValueError("maj@k needs k >= 1")
        self.sampler, self.k = sampler, k
        self.votes: dict[str, list[str]] = {}  # question -> the answers voted (for the record)

    def generate(self, prompts: list[str], questions: list[str]) -> list[Generated]:
        outs = self.sampler.generate([p for p in prompts for _ in range(self.k)],
                                     [q for q in questions for _ in range(self.k)])
        chosen = []
        for i, question in enumerate(questions):
            group = outs[i * self.k:(i + 1) * self.k]
            answers = []
            for g in group:
                report = analyze(g.text, grounder=grounder_for(question))
                voted = report.ok and report.complete and report.answer is not None and not g.budget_closed
                answers.append(report.answer if voted else None)
            tally = Counter(a for a in answers if a is not None)
            if tally:
                top = max(tally.values())
                winner = next(a for a in answers if a is not None and tally[a] == top)
                pick = group[answers.index(winner)]
            else:
                pick = group[0]
            tokens = sum(g.new_tokens for g in group)
            rendered = tuple(None if a is None else render(a) for a in answers)
            chosen.append(Generated(pick.text, tokens, sum(g.seconds for g in group), pick.budget_closed, rendered))
        return chosen
