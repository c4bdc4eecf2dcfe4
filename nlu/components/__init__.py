"""Pipeline components; importing this package registers them all."""

from nlu.components.base import COMPONENT_REGISTRY, Component, component_class, register_component
from nlu.components.classifier import LinearIntentClassifier
from nlu.components.crf import CRFEntityExtractor
from nlu.components.entities import (
    EntitySynonymMapper,
    LookupEntityExtractor,
    RatingExtractor,
    RegexEntityExtractor,
)
from nlu.components.fallback import FALLBACK_INTENT, FallbackClassifier
from nlu.components.featurizer import NgramFeaturizer
from nlu.components.normalizer import VietnameseNormalizer

__all__ = [
    "COMPONENT_REGISTRY",
    "FALLBACK_INTENT",
    "CRFEntityExtractor",
    "Component",
    "EntitySynonymMapper",
    "FallbackClassifier",
    "LinearIntentClassifier",
    "LookupEntityExtractor",
    "NgramFeaturizer",
    "RatingExtractor",
    "RegexEntityExtractor",
    "VietnameseNormalizer",
    "component_class",
    "register_component",
]
