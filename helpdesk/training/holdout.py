"""The train/held-out split of the training set: a fixed share of each intent's examples is kept
aside to test candidates on, drawn once and never revisited."""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict

from sqlalchemy import func
from sqlmodel import Session, select

from helpdesk.training.models import ExampleSource, NluExample

#: share of each intent's examples kept aside to test candidates on
HOLDOUT_FRACTION = 0.15
#: fixed seed of the held-out draw, so the split is the same for every retrain
HOLDOUT_SEED = "caredesk-holdout-v1"
#: intents with fewer examples keep them all for training
MIN_EXAMPLES_FOR_HOLDOUT = 5


def holdout_rank(text: str) -> int:
    """A fixed pseudo-random rank of a text (seeded), so the held-out draw never changes."""
    return int.from_bytes(hashlib.sha256(f"{HOLDOUT_SEED}\n{text}".encode()).digest()[:8], "big")


def draw_holdout(texts: list[str]) -> set[int]:
    """Indexes of one intent's examples to hold out: the same share of every intent (stratified)."""
    if len(texts) < MIN_EXAMPLES_FOR_HOLDOUT:
        return set()
    count = max(1, math.floor(HOLDOUT_FRACTION * len(texts) + 0.5))
    ranked = sorted(range(len(texts)), key=lambda index: (holdout_rank(texts[index]), index))
    return set(ranked[:count])


class HoldoutCounter:
    """Decides, example by example, whether a new one is held out, keeping each intent at the share.

    A decision is never revisited: an example trained on stays in training, so an earlier model
    trained by the loop never saw a held-out example and the comparison with it stays fair.
    """

    def __init__(self, session: Session):
        rows = session.exec(
            select(NluExample.intent_id, NluExample.holdout, func.count())
            .where(NluExample.source != ExampleSource.review)
            .group_by(NluExample.intent_id, NluExample.holdout)
        ).all()
        self.total: dict[int, int] = defaultdict(int)
        self.held: dict[int, int] = defaultdict(int)
        for intent_id, holdout, count in rows:
            self.total[intent_id] += count
            if holdout:
                self.held[intent_id] += count

    def next(self, intent_id: int, source: str) -> bool:
        """Whether the next example added to the intent is held out."""
        if source == ExampleSource.review:
            # Labelled review messages are the review set: they must be learnt, and are tested there.
            return False
        self.total[intent_id] += 1
        total = self.total[intent_id]
        if total >= MIN_EXAMPLES_FOR_HOLDOUT and math.floor(HOLDOUT_FRACTION * total) > self.held[intent_id]:
            self.held[intent_id] += 1
            return True
        return False


def assign_holdout(session: Session, fresh: list[NluExample]) -> None:
    """Hold out new examples: a seeded draw for an intent that is all new, else one by one."""
    by_intent: dict[int, list[NluExample]] = defaultdict(list)
    for example in fresh:
        by_intent[example.intent_id].append(example)
    counter = HoldoutCounter(session)
    for intent_id, examples in by_intent.items():
        # The new rows are flushed already, not held out: take them out of the counts first.
        counter.total[intent_id] -= sum(1 for e in examples if e.source != ExampleSource.review)
        if counter.total[intent_id] == 0:
            chosen = draw_holdout([example.text for example in examples])
            for index, example in enumerate(examples):
                example.holdout = index in chosen
            counter.total[intent_id] = len(examples)
            counter.held[intent_id] = len(chosen)
        else:
            for example in examples:
                example.holdout = counter.next(intent_id, example.source)
        session.add_all(examples)
