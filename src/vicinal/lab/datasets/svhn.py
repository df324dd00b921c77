"""SVHN (Street View House Numbers, cropped digits) from the official MATLAB files in a local directory."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from .image_sets import _image_set, _require_dir
from .splits import _classification, _standardize

_SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")
_SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"


def _read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN ``.mat`` file: X (32, 32, 3, N) uint8 -> (N, 3, 32, 32) in [0, 1]; y in 1..10 -> 0..9."""
    try:
        mat = scipy.io.loadmat(path)
    except (MatReadError, ValueError, OSError, EOFError, TypeError, zlib.error) as error:
        raise ValueError(f"{str(path)!r} is not a readable MATLAB file ({type(error).__name__}: {error}); it is "
                         f"truncated or damaged: download it again from {_SVHN_URL}") from None
    if "X" not in mat or "y" not in mat:
        raise ValueError(f"{str(path)!r} is not an SVHN file: it has no 'X' and 'y' "
                         f"(variables: {sorted(k for k in mat if not k.startswith('__'))})")
    images, labels = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[:3] != (32, 32, 3):
        raise ValueError(f"{str(path)!r}: X is {images.dtype} of shape {images.shape}; expected uint8 (32, 32, 3, N)")
    if labels.shape != (images.shape[3],):
        raise ValueError(f"{str(path)!r}: y holds {labels.size} labels for {images.shape[3]} images")
    if labels.size and not (labels.min() >= 1 and labels.max() <= 10):
        raise ValueError(f"{str(path)!r}: y holds labels in [{labels.min()}, {labels.max()}]; SVHN's are 1..10")
    # The distributed files label the digit 0 as 10; the class index is the digit itself.
    return images.transpose(3, 2, 0, 1) / np.float32(255), labels.astype(np.int64) % 10


def _load_svhn(name: str, root: Any, standardize: bool):
    root = _require_dir(root, f"{list(_SVHN_FILES)} from {_SVHN_URL}")
    missing = [f for f in _SVHN_FILES if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{name}: missing {missing} in {str(root)!r}; download the cropped-digit files "
                                f"(format 2) {list(_SVHN_FILES)} from {_SVHN_URL} into it")
    x_train, y_train = _read_svhn_mat(root / _SVHN_FILES[0])
    x_test, y_test = _read_svhn_mat(root / _SVHN_FILES[1])
    if standardize:
        x_train, x_test = _standardize(x_train, x_test, axes=(0, 2, 3))
    return _classification(x_train, y_train, x_test, y_test, 10)


_svhn = _image_set(
    _load_svhn, "svhn", root_holds="``train_32x32.mat`` and ``test_32x32.mat``",
    doc="""SVHN cropped digits from the official MATLAB files in a local directory (Baena et al. 2022, Table I; Greenewald et al. 2023).

    Expects ``root/train_32x32.mat`` (73,257 images) and ``root/test_32x32.mat``
    (26,032) of http://ufldl.stanford.edu/housenumbers/ (format 2): ``X`` of shape
    (32, 32, 3, N) uint8 and ``y`` in 1..10, where 10 is the digit 0. Images
    ``(N, 3, 32, 32)`` in [0, 1], labels the digits 0..9; with ``standardize`` each
    channel is standardised with train statistics. The ``extra`` set is not read.
    Official split; ``seed`` unused.""",
)
