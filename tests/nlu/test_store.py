"""The versioned model store."""

from __future__ import annotations

import json
import os

import pytest

from nlu import ModelLoadError, ModelStore


@pytest.fixture
def store(tmp_path):
    return ModelStore(tmp_path / "models")


def test_empty_store_has_no_versions_and_nothing_active(store):
    assert store.versions() == [] and store.active_version() is None


def test_add_copies_a_model_and_lists_its_metadata(store, tiny_model_dir, tiny_data):
    version = store.add(tiny_model_dir)
    [info] = store.versions()
    assert (info.version, info.intents, info.active) == (version, tiny_data.intents, False)
    assert info.path == store.root / version and len(info.training_data_hash) == 64
    assert info.config["pipeline"][0]["name"] == "VietnameseNormalizer"


def test_adding_the_same_model_twice_keeps_one_version(store, tiny_model_dir):
    assert store.add(tiny_model_dir) == store.add(tiny_model_dir) and len(store.versions()) == 1


def test_activate_writes_the_pointer_file(store, tiny_model_dir):
    version = store.add(tiny_model_dir)
    store.activate(version)
    assert json.loads(store.pointer_path.read_text())["version"] == version
    assert store.active_version() == version and store.versions()[0].active


def test_activation_replaces_the_pointer_atomically(store, tiny_model_dir, monkeypatch):
    version = store.add(tiny_model_dir)
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (replaced.append((src, dst)), real_replace(src, dst)))
    store.activate(version)
    assert [dst for _, dst in replaced] == [store.pointer_path]
    assert not [p for p in store.root.iterdir() if p.name.startswith(".")]


def test_switching_versions_changes_what_load_active_returns(store, tiny_data):
    first = store.train_and_add(tiny_data, activate=True)
    second = store.train_and_add(tiny_data)
    assert store.load_active().version == first
    store.activate(second)
    assert ModelStore(store.root).active_version() == second
    assert store.load_active().version == second
    assert [i.version for i in store.versions()] == [first, second]


def test_activating_an_unknown_version_fails(store):
    with pytest.raises(KeyError, match="no model version 'nope'"):
        store.activate("nope")


def test_load_active_without_active_model_fails_clearly(store):
    with pytest.raises(ModelLoadError, match="no active NLU model"):
        store.load_active()


def test_set_metrics_records_test_results(store, tiny_model_dir):
    version = store.add(tiny_model_dir)
    store.set_metrics(version, {"accuracy": 0.9})
    assert store.info(version).metrics == {"accuracy": 0.9}


def test_remove_refuses_the_active_version(store, tiny_model_dir):
    version = store.add(tiny_model_dir, activate=True)
    with pytest.raises(ValueError, match="is active"):
        store.remove(version)


def test_train_and_add_reports_progress(store, tiny_data):
    seen = []
    store.train_and_add(tiny_data, progress=lambda stage, fraction: seen.append(fraction))
    assert seen[-1] == 1.0
