"""Accuracy floor on the misses of issue #19: train on data/nlu plus the demo shop's catalog (as
`caredesk prepare` does) and score tests/nlu/heldout_broad.yml, 75 customer messages written apart
from the training data (products beyond the kitchen range, scores out of ten, freeship and deposit,
bot challenges, short affirm/deny/goodbye forms, product price/availability/warranty questions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu import load_model, load_training_data, train_model
from nlu.catalog import load_training_data_with_catalogs
from nlu.evaluation import evaluate
from nlu.normalization import fold

pytestmark = pytest.mark.slow  # trains a model on the whole data set

ROOT = Path(__file__).resolve().parents[2]
HELDOUT_FILE = Path(__file__).with_name("heldout_broad.yml")
# Measured 0.973 (73 of 75) when the set was written; the model trained on the data before the
# broadening scored 0.627 on it. A little under the measure, so noise from data edits does not fail it.
INTENT_ACCURACY_FLOOR = 0.93


def _key(text: str) -> str:
    return " ".join(fold(text).split())


@pytest.fixture(scope="module")
def training_data():
    return load_training_data_with_catalogs([ROOT / "data" / "nlu"], [ROOT / "data" / "demo" / "shop.yml"])


def test_the_heldout_set_shares_no_message_with_the_training_data(training_data):
    trained = {_key(example.text) for example in training_data.examples}
    copies = [e.text for e in load_training_data([HELDOUT_FILE]).examples if _key(e.text) in trained]
    assert copies == []


def test_heldout_intent_accuracy_on_the_issue_misses_stays_above_the_floor(training_data, tmp_path):
    model = load_model(train_model(training_data, tmp_path / "model"))
    report = evaluate(model, load_training_data([HELDOUT_FILE]))
    assert report["intent"]["n_examples"] >= 60
    assert report["intent"]["accuracy"] >= INTENT_ACCURACY_FLOOR, report["errors"]
