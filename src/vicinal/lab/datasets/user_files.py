"""The user's own data from a CSV table or an NPZ archive: labels mapped to 0..C-1, or regression targets."""

from __future__ import annotations

import csv
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vicinal._checks import check_choice

from .splits import _check_bool, _check_fraction, _classification, _split, _standardize


def _require_file(path: Any, what: str) -> Path:
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or pathlib.Path to {what}, got {path!r}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {str(path)!r}")
    return path


def _labels_or_targets(y: np.ndarray, task: str, path: Path):
    """Classification: any label values -> 0..C-1 in sorted order. Regression: float32.

    Non-finite targets and numeric labels are refused: a NaN target trains on NaN losses, and a NaN
    label would become a class of its own (np.unique keeps NaN apart).
    """
    if y.dtype.kind in "fc" and not np.isfinite(y).all():
        bad = int(np.flatnonzero(~np.isfinite(y).reshape(len(y), -1).all(axis=1))[0])
        what = "targets" if task == "regression" else "labels"
        raise ValueError(f"{str(path)!r}: {what} hold NaN or Inf values (first at row {bad} of train+test); "
                         f"drop or fill those rows first")
    if task == "regression":
        return y.astype(np.float32), None
    _check_label_shape(y, path)
    classes, y = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"classification needs at least 2 distinct labels, found only {classes.tolist()}")
    return y.reshape(-1), len(classes)


def _check_label_shape(y: np.ndarray, path: Path) -> None:
    """Class labels are one index per sample; say so (and how to convert) for one-hot rows."""
    if y.ndim != 1:
        one_hot = y.ndim == 2 and np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()
        hint = " They look one-hot: save y.argmax(axis=1) instead." if one_hot else ""
        raise ValueError(f"{str(path)!r}: integer class labels must be one index per sample, shape (N,), "
                         f"got shape {y.shape}.{hint}")


def _finish_user_data(x_train, y_train, x_test, y_test, *, task: str, standardize: bool, path: Path):
    """Shared ending of the csv and npz loaders: labels, optional per-feature standardisation, tensors."""
    for name, values in (("x_train", x_train), ("x_test", x_test)):
        if not np.issubdtype(np.asarray(values).dtype, np.number):
            raise ValueError(f"{str(path)!r}: {name} has dtype {np.asarray(values).dtype}; expected numbers")
        if not np.isfinite(values).all():
            raise ValueError(f"{str(path)!r}: {name} holds NaN or Inf values; clean the file first")
    y_all, num_classes = _labels_or_targets(np.concatenate([y_train, y_test]), task, path)
    y_train, y_test = y_all[: len(y_train)], y_all[len(y_train):]
    if standardize:
        x_train, x_test = _standardize(x_train, x_test, axes=(0,))
    if num_classes is not None:
        return _classification(x_train, y_train, x_test, y_test, num_classes)
    return (torch.as_tensor(np.asarray(x_train, dtype=np.float32)), torch.as_tensor(y_train),
            torch.as_tensor(np.asarray(x_test, dtype=np.float32)), torch.as_tensor(y_test), None)


def _csv(*, seed: int, path: str, target: str = "label", task: str = "classification",
         test_fraction: float = 0.2, standardize: bool = True):
    """A table from a CSV file: one header row, one column ``target``, all others numeric features.

    Comma-separated, first row = column names. The column named ``target`` holds the
    labels (any values; mapped to 0..C-1 in sorted order, numerically when all are
    numbers) or, with ``task="regression"``, float targets. Every other column must be
    numeric. Seeded split (stratified for classification), features standardised with
    train statistics when ``standardize``.

    Parameters
    ----------
    path : str
        The CSV file.
    target : str
        Name of the label/target column (default ``"label"``).
    task : {"classification", "regression"}
    test_fraction : float
        Share held out for testing.
    standardize : bool
        Standardise features with train statistics (default True).
    """
    path = _require_file(path, "CSV file")
    task = check_choice("task", task, ("classification", "regression"))
    test_fraction = _check_fraction("test_fraction", test_fraction)
    _check_bool("standardize", standardize)
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        raise ValueError(f"{str(path)!r} needs a header row and at least one data row, found {len(rows)} rows")
    header, body = rows[0], [row for row in rows[1:] if row]
    if target not in header:
        raise ValueError(f"{str(path)!r} has no column target={target!r}; its columns are {header}")
    column = header.index(target)
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ValueError(f"line {line} of {str(path)!r} has {len(row)} fields; the header has {len(header)}")
        if not row[column].strip():  # an empty cell would become a class (or target) of its own
            raise ValueError(f"line {line} of {str(path)!r} has an empty {target!r} cell; every row needs a "
                             f"{'target' if task == 'regression' else 'label'} (drop or fill that row)")
    table = np.array(body, dtype=object)
    feature_names = [name for i, name in enumerate(header) if i != column]
    try:
        x = np.delete(table, column, axis=1).astype(np.float64)
    except ValueError as error:
        raise ValueError(f"feature columns {feature_names} of {str(path)!r} must be numeric: {error}") from error
    y = table[:, column].astype(str)
    if task == "regression":
        try:
            y = y.astype(np.float64)
        except ValueError as error:
            raise ValueError(f"regression target column {target!r} must be numeric: {error}") from error
    else:
        try:  # numeric labels sort numerically (2 before 10), others as text
            y = y.astype(np.float64)
        except ValueError:
            pass
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        line = int(np.flatnonzero(~np.isfinite(y))[0]) + 2
        raise ValueError(f"line {line} of {str(path)!r} has a non-finite {target!r} value "
                         f"{table[line - 2, column]!r}; drop or fix that row")
    x_train, x_test, y_train, y_test = _split(x, y, test_fraction, seed, stratify=task == "classification")
    return _finish_user_data(x_train, y_train, x_test, y_test, task=task, standardize=standardize, path=path)


def _npz(*, seed: int, path: str, test_fraction: float = 0.2, standardize: bool = False):
    """Arrays from a NumPy ``.npz`` file, already split or not.

    Either arrays ``x_train, y_train, x_test, y_test`` (used as given) or arrays
    ``x, y`` (seeded split, stratified for classification). ``y`` of integer dtype
    means class labels (mapped to 0..C-1 in sorted order); floating ``y`` means
    regression targets. Inputs may have any shape ``(N, ...)``; they are cast to
    float32 and standardised per feature with train statistics only when
    ``standardize`` (default False, e.g. for images already in [0, 1]).

    Parameters
    ----------
    path : str
        The ``.npz`` file (``np.savez(path, x=..., y=...)``).
    test_fraction : float
        Share held out when the file holds ``x, y``.
    standardize : bool
        Standardise every input feature with train statistics (default False).
    """
    path = _require_file(path, "npz file")
    test_fraction = _check_fraction("test_fraction", test_fraction)
    _check_bool("standardize", standardize)
    try:
        arrays = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as error:
        raise ValueError(f"{str(path)!r} is not a readable .npz archive ({type(error).__name__}: {error}); "
                         f"expected a file written by np.savez(path, x=..., y=...)") from None
    if not isinstance(arrays, np.lib.npyio.NpzFile):
        raise ValueError(f"{str(path)!r} holds a single .npy array of shape {np.shape(arrays)}, not an .npz "
                         f"archive; expected a file written by np.savez(path, x=..., y=...)")
    try:
        with arrays:
            x_train, y_train, x_test, y_test, task = _npz_arrays(arrays, path, test_fraction, seed)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise ValueError(f"{str(path)!r} is a damaged .npz archive ({type(error).__name__}: {error}); "
                         f"write it again with np.savez") from None
    return _finish_user_data(x_train, y_train, x_test, y_test, task=task, standardize=standardize, path=path)


def _npz_arrays(arrays, path: Path, test_fraction: float, seed: int):
    """The four arrays (split here when the archive holds x, y) and the task their label dtype says."""
    names = set(arrays.files)
    if {"x_train", "y_train", "x_test", "y_test"} <= names:
        x_train, y_train, x_test, y_test = (arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))
        task = _task_of(path, y_train, y_test)
    elif {"x", "y"} <= names:
        x, y = arrays["x"], arrays["y"]
        task = _task_of(path, y)
        if len(x) != len(y):
            raise ValueError(f"arrays x and y in {str(path)!r} have {len(x)} and {len(y)} rows; expected equal")
        x_train, x_test, y_train, y_test = _split(x, y, test_fraction, seed, stratify=task == "classification")
    else:
        raise ValueError(
            f"{str(path)!r} holds arrays {sorted(names)}; expected x_train, y_train, x_test, y_test or x, y"
        )
    return x_train, y_train, x_test, y_test, task


def _task_of(path: Path, *ys: np.ndarray) -> str:
    if all(np.issubdtype(y.dtype, np.integer) for y in ys):
        for y in ys:
            _check_label_shape(y, path)
        return "classification"
    if all(np.issubdtype(y.dtype, np.floating) for y in ys):
        return "regression"
    raise ValueError(f"{str(path)!r}: labels must all be integer (classes) or all floating (regression), "
                     f"got dtypes {[str(y.dtype) for y in ys]}")
