"""The name -> loader registry and the entry points: load_dataset, available_datasets, dataset_parameters."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

from vicinal._checks import check_int

from .dataset import Dataset
from .cifar_corrupted import _cifar10_c, _cifar100_c
from .image_sets import _cifar10, _cifar100, _fashion_mnist, _mnist
from .sklearn_sets import _breast_cancer, _digits, _iris, _wine
from .svhn import _svhn
from .synthetic import _four_bars, _moons, _one_ring, _spirals, _swiss_roll
from .tiny_imagenet import _tiny_imagenet
from .user_files import _csv, _npz


_REGISTRY: dict[str, Callable[..., tuple]] = {
    "spirals": _spirals,
    "moons": _moons,
    "one_ring": _one_ring,
    "four_bars": _four_bars,
    "swiss_roll": _swiss_roll,
    "iris": _iris,
    "breast_cancer": _breast_cancer,
    "wine": _wine,
    "digits": _digits,
    "csv": _csv,
    "npz": _npz,
    "cifar10": _cifar10,
    "cifar100": _cifar100,
    "mnist": _mnist,
    "fashion_mnist": _fashion_mnist,
    "svhn": _svhn,
    "tiny_imagenet": _tiny_imagenet,
    "cifar10_c": _cifar10_c,
    "cifar100_c": _cifar100_c,
}


def available_datasets() -> tuple[str, ...]:
    """Names accepted by :func:`load_dataset`, sorted."""
    return tuple(sorted(_REGISTRY))


def dataset_parameters(name: str) -> dict[str, Any]:
    """The parameters ``name`` accepts with their defaults (``inspect.Parameter.empty`` when required)."""
    loader = _loader(name)
    return {p.name: p.default for p in inspect.signature(loader).parameters.values() if p.name != "seed"}


def _loader(name: str) -> Callable[..., tuple]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(available_datasets())}")
    return _REGISTRY[name]


def load_dataset(name: str, *, seed: int = 0, **params: Any) -> Dataset:
    """Build the dataset ``name`` with its seeded train/test split.

    Parameters
    ----------
    name : str
        One of :func:`available_datasets`: synthetic ``spirals`` (Baena et al. 2022,
        Sec. V-A), ``moons`` (Carratino et al. 2020, App. B.3), ``one_ring``,
        ``four_bars``, ``swiss_roll`` (Greenewald et al. 2023, App. B); scikit-learn's
        bundled ``iris``, ``breast_cancer``, ``wine``, ``digits``; user files ``csv``,
        ``npz``; local copies of image benchmarks ``cifar10``, ``cifar100``, ``mnist``,
        ``fashion_mnist``, ``svhn``, ``tiny_imagenet``, ``cifar10_c``, ``cifar100_c``.
    seed : int
        Seed in [0, 2**32) of the data generator and of the split; the same seed gives
        the same tensors. Unused by the sets with an official split.
    **params
        Options of that dataset (see :func:`dataset_parameters` and each generator's
        docstring), e.g. ``noise=0.5`` for spirals or ``root="~/data"`` for mnist.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Unknown name, unknown or missing parameter, or an invalid parameter value.
    FileNotFoundError
        A file-based dataset whose directory or files are not there (the message
        lists what to put where).
    """
    loader = _loader(name)
    seed = check_int("seed", seed, minimum=0)
    if seed >= 2**32:  # scikit-learn's random_state limit
        raise ValueError(f"seed must be below 2**32, got {seed}")
    accepted = dataset_parameters(name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"dataset {name!r} has no parameter(s) {unknown}; it accepts {sorted(accepted)}")
    missing = sorted(k for k, default in accepted.items() if default is inspect.Parameter.empty and k not in params)
    if missing:
        raise ValueError(
            f"dataset {name!r} needs parameter(s) {missing}, e.g. load_dataset({name!r}, {missing[0]}=...)"
        )
    x_train, y_train, x_test, y_test, num_classes = loader(seed=seed, **params)
    used = {k: params.get(k, default) for k, default in accepted.items()}
    used = {k: str(v) if isinstance(v, Path) else v for k, v in used.items()}
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=num_classes,
        description=(loader.__doc__ or "").strip().splitlines()[0],
        params={"seed": seed, **used},
    )
