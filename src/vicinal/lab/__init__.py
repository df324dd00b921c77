"""The experiment system: datasets, models, trainer, sweeps, result store, reports, reproductions.

Needs the ``lab`` extra (matplotlib, scikit-learn, tqdm); Ray is the optional ``ray`` extra.
"""

from .config import RunConfig
from .datasets import Dataset, available_datasets, dataset_parameters, load_dataset
from .models import (MLP, DenseNetBC, LeNet, PreActResNet18, RandomFourierFeatures, StagedModel, available_models,
                     build_model, model_parameters)
from .trainer import train

__all__ = [
    "RunConfig", "train",
    "Dataset", "available_datasets", "dataset_parameters", "load_dataset",
    "MLP", "DenseNetBC", "LeNet", "PreActResNet18", "RandomFourierFeatures", "StagedModel",
    "available_models", "build_model", "model_parameters",
]
