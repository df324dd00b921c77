"""CIFAR-10-C / CIFAR-100-C (Hendrycks & Dietterich 2019) from the distributed .npy files, with clean CIFAR for training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vicinal._checks import check_choice, check_int

from .image_sets import _read_cifar, _require_dir
from .splits import _check_bool, _classification, _standardize

# The 15 corruptions of the benchmark and the 4 extra ones distributed with it.
CORRUPTIONS = (
    "brightness", "contrast", "defocus_blur", "elastic_transform", "fog", "frost", "gaussian_blur",
    "gaussian_noise", "glass_blur", "impulse_noise", "jpeg_compression", "motion_blur", "pixelate", "saturate",
    "shot_noise", "snow", "spatter", "speckle_noise", "zoom_blur",
)
_SEVERITIES = 5
# variant -> (folder as distributed, clean CIFAR registry name, number of classes, where to get it)
_VARIANTS = {
    "cifar10_c": ("CIFAR-10-C", "cifar10", 10, "https://zenodo.org/record/2535967"),
    "cifar100_c": ("CIFAR-100-C", "cifar100", 100, "https://zenodo.org/record/3555552"),
}


def _read_npy(path: Path) -> np.ndarray:
    """A memory-mapped .npy array (only the severity asked for is read); a damaged file is named."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{str(path)!r} is not a readable .npy array ({type(error).__name__}: {error}); it is "
                         f"truncated or damaged: download or unpack it again") from None


def _read_corrupted(variant: str, root: Any, corruption: str, severity: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``(severity - 1) * n .. severity * n`` of ``<corruption>.npy`` and ``labels.npy``: (n, 3, 32, 32) in [0, 1]."""
    folder, _, _, url = _VARIANTS[variant]
    base = _require_dir(root, f"{folder}/ (or its files: <corruption>.npy and labels.npy) from {url}")
    directory = base if (base / "labels.npy").is_file() else base / folder
    missing = [f for f in (f"{corruption}.npy", "labels.npy") if not (directory / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{variant}: missing {missing} in {str(directory)!r}; unpack {folder}.tar from {url} "
                                f"so that {str(base / folder)!r} holds <corruption>.npy and labels.npy")
    images = _read_npy(directory / f"{corruption}.npy")
    labels = _read_npy(directory / "labels.npy")
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3) or len(images) % _SEVERITIES:
        raise ValueError(f"{str(directory / f'{corruption}.npy')!r} is {images.dtype} of shape {images.shape}; "
                         f"expected uint8 (5 n, 32, 32, 3): severities 1..5 of the n test images, in that order")
    if labels.shape != (len(images),):
        raise ValueError(f"{str(directory / 'labels.npy')!r} has shape {labels.shape}; expected ({len(images)},), "
                         f"one label per row of {corruption}.npy")
    n = len(images) // _SEVERITIES
    rows = slice((severity - 1) * n, severity * n)
    return np.asarray(images[rows]).transpose(0, 3, 1, 2) / np.float32(255), np.asarray(labels[rows], np.int64)


def _corrupted_set(variant: str):
    folder, clean, num_classes, url = _VARIANTS[variant]

    def load(*, seed: int, root: str, clean_root: str, corruption: str, severity: int, standardize: bool = False):
        corruption = check_choice("corruption", corruption, CORRUPTIONS)
        severity = check_int("severity", severity, minimum=1)
        if severity > _SEVERITIES:
            raise ValueError(f"severity must be an integer in 1..{_SEVERITIES}, got {severity}")
        _check_bool("standardize", standardize)
        x_test, y_test = _read_corrupted(variant, root, corruption, severity)
        x_train, y_train, _, _ = _read_cifar(clean, clean_root)
        if standardize:  # with the clean train statistics: the same inputs a model trained on `clean` saw
            x_train, x_test = _standardize(x_train, x_test, axes=(0, 2, 3))
        return _classification(x_train, y_train, x_test, y_test, num_classes)

    load.__doc__ = f"""{folder}: one corruption at one severity as the test split (Hendrycks & Dietterich 2019; Carratino et al. 2020, Sec. 5).

    The test split is rows ``(severity - 1) * 10000 .. severity * 10000`` of
    ``root/{folder}/<corruption>.npy`` ((50000, 32, 32, 3) uint8: severities 1..5 of
    the 10,000 {clean} test images, in order) with ``labels.npy``, from {url}. The
    train split is the clean {clean} train set read from ``clean_root`` (as the
    ``{clean}`` dataset), so a run trains on clean images and is evaluated on
    corrupted ones, which is the benchmark's protocol. Images ``(N, 3, 32, 32)`` in
    [0, 1]; only the severity asked for is read (memory-mapped). ``seed`` unused.

    Parameters
    ----------
    root : str
        Directory holding ``{folder}`` (or its files directly).
    clean_root : str
        Directory of the clean {clean} set, as for the ``{clean}`` dataset.
    corruption : str
        One of {", ".join(CORRUPTIONS)}.
    severity : int
        1 (mildest) .. 5.
    standardize : bool
        Standardise each channel with the clean train statistics (default False).
    """
    return load


_cifar10_c = _corrupted_set("cifar10_c")
_cifar100_c = _corrupted_set("cifar100_c")
