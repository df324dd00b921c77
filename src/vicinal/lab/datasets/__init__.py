"""Datasets: registry (load_dataset), dataset (Dataset), splits (shared steps), synthetic, sklearn_sets, user_files,
image_sets (CIFAR, MNIST), svhn, tiny_imagenet, cifar_corrupted.

``load_dataset(name, seed=..., **params)`` returns a frozen :class:`Dataset`.
Synthetic sets are generated from ``seed`` (numpy ``Generator``); real sets come
from scikit-learn's bundled copies or from files the user put in a local
directory. Nothing is downloaded.

Standardisation, wherever it happens, uses the mean and standard deviation of
the *training* split only, so no test statistic leaks into the inputs.
"""

from .dataset import Dataset
from .registry import available_datasets, dataset_parameters, load_dataset

__all__ = ["Dataset", "load_dataset", "available_datasets", "dataset_parameters"]
