"""Steps every loader shares: argument checks, the seeded split, train-only standardisation, tensors."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split


def _check_fraction(name: str, value: Any) -> float:
    """A number strictly between 0 and 1 (a test fraction: both splits non-empty)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int, *, stratify: bool):
    """Seeded train/test split; stratified so both splits keep the class proportions."""
    try:
        return train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y if stratify else None)
    except ValueError as error:  # e.g. a class with a single member cannot be stratified
        raise ValueError(f"cannot split {len(y)} samples with test_fraction={test_fraction}: {error}") from error


def _standardization(x_train: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The train mean and std over ``axes`` (kept as broadcastable dimensions) that :func:`_standardize` applies.

    A constant feature (std 0) gets std 1, so it is only centred, as in scikit-learn's StandardScaler.
    """
    mean = x_train.mean(axis=axes, keepdims=True)
    std = x_train.std(axis=axes, keepdims=True)
    return mean, np.where(std > 0, std, 1.0)


def _standardize(x_train: np.ndarray, x_test: np.ndarray, axes: tuple[int, ...]):
    """Centre and scale both splits with the train mean/std over ``axes`` (:func:`_standardization`)."""
    mean, std = _standardization(x_train, axes)
    return (x_train - mean) / std, (x_test - mean) / std


def _classification(x_train, y_train, x_test, y_test, num_classes: int | None):
    """Arrays -> (float32 inputs, int64 labels, num_classes) tensors."""
    return (
        torch.as_tensor(np.asarray(x_train, dtype=np.float32)),
        torch.as_tensor(np.asarray(y_train, dtype=np.int64)),
        torch.as_tensor(np.asarray(x_test, dtype=np.float32)),
        torch.as_tensor(np.asarray(y_test, dtype=np.int64)),
        num_classes,
    )


def _split_standardize(x, y, *, test_fraction, seed, standardize: bool, num_classes: int):
    x_train, x_test, y_train, y_test = _split(x, y, test_fraction, seed, stratify=True)
    if standardize:
        x_train, x_test = _standardize(x_train, x_test, axes=(0,))
    return _classification(x_train, y_train, x_test, y_test, num_classes)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value
