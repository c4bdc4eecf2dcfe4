"""CareDesk NLU: intent classification and entity extraction for Vietnamese and English
customer-care messages, trained from Rasa 3 YAML data."""

from nlu.model import (
    Entity,
    IntentPrediction,
    Interpreter,
    ModelLoadError,
    ParseResult,
    load_model,
    train_model,
)
from nlu.pipeline import NLUConfigError, load_pipeline_config
from nlu.rasa_http import NLUUnavailableError, RasaHTTPInterpreter
from nlu.store import ModelInfo, ModelStore
from nlu.training_data import (
    EntityAnnotation,
    TrainingData,
    TrainingDataError,
    TrainingExample,
    load_training_data,
    write_training_data,
)

__all__ = [
    "Entity",
    "EntityAnnotation",
    "IntentPrediction",
    "Interpreter",
    "ModelInfo",
    "ModelLoadError",
    "ModelStore",
    "NLUConfigError",
    "NLUUnavailableError",
    "ParseResult",
    "RasaHTTPInterpreter",
    "TrainingData",
    "TrainingDataError",
    "TrainingExample",
    "load_model",
    "load_pipeline_config",
    "load_training_data",
    "train_model",
    "write_training_data",
]
