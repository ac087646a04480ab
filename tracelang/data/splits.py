"""Splits. A fixed, seeded 500-problem dev split carved from GSM-8K train, for model selection;
GSM-8K test is evaluation-only everywhere in the project.

The split is a list of record ids (``gsm8k-train-00012`` = line 12 of train.jsonl, from 0), drawn
by ``random.Random(DEV_SEED).sample`` over the 7,473 train indices: reproducible anywhere without
storing any of GSM-8K's text.
"""

from __future__ import annotations

import random
from functools import cache

from .gsm8k import TRAIN_SIZE, problem_id

DEV_SIZE = 500
DEV_SEED = 8_500  # fixed forever: changing it changes every result that used the dev split


@cache
def dev_ids(size: int = DEV_SIZE, seed: int = DEV_SEED, train_size: int = TRAIN_SIZE) -> frozenset[str]:
    """The ids of the dev split."""
    if not 0 <= size <= train_size:
        raise ValueError(f"a dev split of {size} from {train_size} problems")
    return frozenset(problem_id("train", i) for i in random.Random(seed).sample(range(train_size), size))


def split_of(record_id: str) -> str:
    """``dev`` or ``train`` for GSM-8K train ids, ``test`` for GSM-8K test ids, else ``other``."""
    if record_id.startswith("gsm8k-train-"):
        return "dev" if record_id in dev_ids() else "train"
    if record_id.startswith("gsm8k-test-"):
        return "test"
    return "other"


def is_evaluation_only(record_id: str) -> bool:
    """GSM-8K test records: never for training, templates or tuning."""
    return split_of(record_id) == "test"
