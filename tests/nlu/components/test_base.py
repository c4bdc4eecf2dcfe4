"""The component base class and registry."""

from __future__ import annotations

import pytest

from nlu.components import COMPONENT_REGISTRY, Component, component_class, register_component


def test_default_pipeline_components_are_registered():
    for name in (
        "VietnameseNormalizer",
        "NgramFeaturizer",
        "LinearIntentClassifier",
        "RegexEntityExtractor",
        "LookupEntityExtractor",
        "RatingExtractor",
        "EntitySynonymMapper",
        "FallbackClassifier",
    ):
        assert component_class(name).name == name


def test_unknown_component_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="unknown pipeline component 'Nope'.*FallbackClassifier"):
        component_class("Nope")


def test_config_overrides_merge_over_defaults():
    @register_component
    class Probe(Component):
        name = "ProbeForTest"

        @classmethod
        def default_config(cls):
            return {"a": 1, "b": [1]}

    try:
        probe = Probe({"b": [2]})
        assert probe.config == {"a": 1, "b": [2]}
        assert Probe().config["b"] is not Probe().config["b"]
    finally:
        COMPONENT_REGISTRY.pop("ProbeForTest")
