"""CIFAR-10-C / CIFAR-100-C (Hendrycks & Dietterich 2019) from the distributed .npy files, with clean CIFAR for training.

The registry entries ``cifar10_c`` / ``cifar100_c`` give one corruption at one severity as the test split;
:func:`corrupted_test_sets` gives all 95 in turn, for evaluating one trained model on every one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from vicinal._checks import check_choice, check_int

from .image_sets import _read_cifar, _require_dir
from .splits import _check_bool, _classification, _standardization, _standardize

# The 15 corruptions of the benchmark and the 4 extra ones distributed with it.
CORRUPTIONS = (
    "brightness", "contrast", "defocus_blur", "elastic_transform", "fog", "frost", "gaussian_blur",
    "gaussian_noise", "glass_blur", "impulse_noise", "jpeg_compression", "motion_blur", "pixelate", "saturate",
    "shot_noise", "snow", "spatter", "speckle_noise", "zoom_blur",
)
SEVERITIES = (1, 2, 3, 4, 5)
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


def _corrupted_dir(variant: str, root: Any, names: list[str]) -> Path:
    """The directory holding ``names`` of ``variant`` as distributed: ``root`` itself or ``root/<folder>``.

    A FileNotFoundError names the missing files and where to get them."""
    folder, _, _, url = _VARIANTS[variant]
    base = _require_dir(root, f"{folder}/ (or its files: <corruption>.npy and labels.npy) from {url}")
    directory = base if (base / "labels.npy").is_file() else base / folder
    missing = [f for f in names if not (directory / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{variant}: missing {missing} in {str(directory)!r}; unpack {folder}.tar from {url} "
                                f"so that {str(base / folder)!r} holds <corruption>.npy and labels.npy")
    return directory


def _read_corrupted(variant: str, root: Any, corruption: str, severity: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``(severity - 1) * n .. severity * n`` of ``<corruption>.npy`` and ``labels.npy``: (n, 3, 32, 32) in [0, 1]."""
    folder, clean, num_classes, _ = _VARIANTS[variant]
    directory = _corrupted_dir(variant, root, [f"{corruption}.npy", "labels.npy"])
    images = _read_npy(directory / f"{corruption}.npy")
    labels = _read_npy(directory / "labels.npy")
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3) or len(images) % len(SEVERITIES):
        raise ValueError(f"{str(directory / f'{corruption}.npy')!r} is {images.dtype} of shape {images.shape}; "
                         f"expected uint8 (5 n, 32, 32, 3): severities 1..5 of the n test images, in that order")
    if labels.shape != (len(images),):
        raise ValueError(f"{str(directory / 'labels.npy')!r} has shape {labels.shape}; expected ({len(images)},), "
                         f"one label per row of {corruption}.npy")
    n = len(images) // len(SEVERITIES)
    rows = slice((severity - 1) * n, severity * n)
    y = np.asarray(labels[rows], np.int64)
    if y.size and not 0 <= y.min() <= y.max() < num_classes:
        raise ValueError(f"{str(directory / 'labels.npy')!r} holds labels in [{y.min()}, {y.max()}], but {clean} has "
                         f"{num_classes} classes: is {str(directory)!r} the {folder} of another data set?")
    return np.asarray(images[rows]).transpose(0, 3, 1, 2) / np.float32(255), y


def _corrupted_set(variant: str):
    folder, clean, num_classes, url = _VARIANTS[variant]

    def load(*, seed: int, root: str, clean_root: str, corruption: str, severity: int, standardize: bool = False):
        corruption = check_choice("corruption", corruption, CORRUPTIONS)
        severity = check_int("severity", severity, minimum=1)
        if severity > len(SEVERITIES):
            raise ValueError(f"severity must be an integer in 1..{len(SEVERITIES)}, got {severity}")
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


#: The registry name of the corrupted copy of each clean set.
CORRUPTED_VARIANTS = {clean: variant for variant, (_, clean, _, _) in _VARIANTS.items()}


def require_corrupted_files(dataset: str, root: Any) -> Path:
    """Check that ``root`` holds the whole corrupted copy of ``dataset`` (Hendrycks & Dietterich 2019).

    All 19 ``<corruption>.npy`` files of :data:`CORRUPTIONS` and ``labels.npy``, in ``root`` or
    ``root/CIFAR-10-C`` (``CIFAR-100-C``), as :func:`corrupted_test_sets` reads them. An integration
    step with no paper: a run calls it before training, so a missing file fails in seconds, not after
    the last epoch.

    Parameters
    ----------
    dataset : {"cifar10", "cifar100"}
        The clean set the model is trained on.
    root : str or Path
        Directory holding the corrupted copy as distributed.

    Returns
    -------
    Path
        The directory holding the files.

    Raises
    ------
    FileNotFoundError
        ``root`` or some files are missing: the message lists them and where to download them.
    """
    return _corrupted_dir(_variant_of(dataset), root, [f"{c}.npy" for c in CORRUPTIONS] + ["labels.npy"])


def corrupted_test_sets(dataset: str, root: Any, *, clean_root: Any,
                        standardize: bool) -> Iterator[tuple[str, int, torch.Tensor, torch.Tensor]]:
    """The 95 test sets of CIFAR-10-C / CIFAR-100-C, one at a time (Hendrycks & Dietterich 2019; Carratino et al. 2020, Fig. 5-6).

    Yields ``(corruption, severity, x, y)`` for every corruption of :data:`CORRUPTIONS` and severity
    1..5, each set exactly as the ``cifar10_c`` / ``cifar100_c`` registry loaders give it as their
    test split (the same reading code): float32 ``(n, 3, 32, 32)`` in [0, 1] and int64 labels, and
    with ``standardize`` each channel standardised with the clean train statistics, read once. Only
    one severity of one file is in memory at a time (the files are memory-mapped).

    Parameters
    ----------
    dataset : {"cifar10", "cifar100"}
        The clean set the model was trained on.
    root : str or Path
        Directory holding the corrupted copy as distributed (see :func:`require_corrupted_files`).
    clean_root : str or Path
        The clean set's directory (its ``root`` parameter); read only when ``standardize``.
    standardize : bool
        Whether the model was trained on standardised inputs (the clean set's ``standardize``).
    """
    variant = _variant_of(dataset)
    _check_bool("standardize", standardize)
    require_corrupted_files(dataset, root)
    mean = std = None
    if standardize:  # the statistics the clean loader standardised the model's inputs with
        mean, std = _standardization(_read_cifar(dataset, clean_root)[0], axes=(0, 2, 3))
    for corruption in CORRUPTIONS:
        for severity in SEVERITIES:
            x, y = _read_corrupted(variant, root, corruption, severity)
            if mean is not None:
                x = (x - mean) / std
            yield corruption, severity, torch.as_tensor(np.asarray(x, dtype=np.float32)), torch.as_tensor(y)


def _variant_of(dataset: str) -> str:
    if dataset not in CORRUPTED_VARIANTS:
        raise ValueError(f"dataset must be one of {sorted(CORRUPTED_VARIANTS)} (the sets with a corrupted copy, "
                         f"CIFAR-10-C / CIFAR-100-C), got {dataset!r}")
    return CORRUPTED_VARIANTS[dataset]
