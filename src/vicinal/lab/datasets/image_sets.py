"""CIFAR-10/100 (official python pickles) and MNIST/Fashion-MNIST (IDX files) from a local directory."""

from __future__ import annotations

import gzip
import math
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .splits import _check_bool, _classification, _standardize


_CIFAR_FILES = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels", 10),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels", 100),
}


def _load_cifar(variant: str, root: Any, standardize: bool):
    x_train, y_train, x_test, y_test = _read_cifar(variant, root)
    if standardize:
        x_train, x_test = _standardize(x_train, x_test, axes=(0, 2, 3))
    return _classification(x_train, y_train, x_test, y_test, _CIFAR_FILES[variant][4])


def _read_cifar(variant: str, root: Any):
    """The official CIFAR split as arrays: (N, 3, 32, 32) float32 images in [0, 1] and int64 labels."""
    folder, train_files, test_files, label_key, _ = _CIFAR_FILES[variant]
    base = _require_dir(root, f"{folder}/ holding {train_files + test_files} (the official python version)")
    directory = base if (base / train_files[0]).is_file() else base / folder
    missing = [name for name in train_files + test_files if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{variant}: missing {missing} in {str(directory)!r}. Unpack the official python version "
            f"(https://www.cs.toronto.edu/~kriz/cifar.html) so that {str(base / folder)!r} holds "
            f"{train_files + test_files}"
        )

    def read(names: list[str]):
        images, labels = [], []
        for name in names:
            batch = _read_pickle(directory / name)
            images.append(np.asarray(_entry(batch, "data", directory / name), dtype=np.uint8))
            labels.append(np.asarray(_entry(batch, label_key, directory / name), dtype=np.int64))
            if images[-1].ndim != 2 or images[-1].shape[1] != 3072 or labels[-1].shape != (len(images[-1]),):
                raise ValueError(
                    f"{str(directory / name)!r}: data of shape {images[-1].shape} and {label_key} of shape "
                    f"{labels[-1].shape}; expected (N, 3072) uint8 rows and N labels"
                )
        return np.concatenate(images).reshape(-1, 3, 32, 32) / np.float32(255), np.concatenate(labels)

    return (*read(train_files), *read(test_files))


def _read_pickle(path: Path) -> dict:
    """One official CIFAR batch (a Python 2 pickle); a truncated or foreign file is named, not a bare EOFError."""
    try:
        with path.open("rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, ImportError, IndexError) as error:
        raise ValueError(f"{str(path)!r} is not a readable CIFAR batch ({type(error).__name__}: {error}); the file "
                         f"is truncated or not the official python version: unpack the archive again") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{str(path)!r} holds a pickled {type(batch).__name__}, expected the dict of a CIFAR batch")
    return batch


def _entry(batch: dict, key: str, path: Path):
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    raise ValueError(f"{str(path)!r} is not a CIFAR batch: it has no {key!r} entry (keys: {list(batch)})")


def _require_dir(root: Any, needs: str) -> Path:
    """``root`` as a Path to an existing directory; ``needs`` says what the user must put in it."""
    if not isinstance(root, (str, Path)):
        raise TypeError(f"root must be a str or pathlib.Path to a local directory, got {root!r}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data directory {str(root)!r} does not exist; create it and put {needs} in it")
    return root


def _image_set(read: Callable[[str, Any, bool], tuple], name: str, *, doc: str, root_holds: str):
    """A registry loader for an image set with an official split: ``read(name, root, standardize)``.

    Its docstring is ``doc`` followed by the two parameters every image set takes; ``seed`` is unused.
    """

    def load(*, seed: int, root: str, standardize: bool = False):
        _check_bool("standardize", standardize)
        return read(name, root, standardize)

    load.__doc__ = f"""{doc}

    Parameters
    ----------
    root : str
        Directory holding {root_holds}.
    standardize : bool
        Standardise each channel with train statistics (default False).
    """
    return load


_cifar10 = _image_set(
    _load_cifar, "cifar10", root_holds="``cifar-10-batches-py``",
    doc="""CIFAR-10 from the official python pickle batches in a local directory (used by all three papers).

    Expects ``root/cifar-10-batches-py/{data_batch_1..5, test_batch}`` (or those files
    directly in ``root``): pickled dicts with ``data`` (N, 3072) uint8 rows and
    ``labels``. Images ``(N, 3, 32, 32)`` in [0, 1]; with ``standardize`` each channel
    is standardised with train statistics. The official split is kept; ``seed`` is
    unused. Only load files you trust: they are pickles.""",
)

_cifar100 = _image_set(
    _load_cifar, "cifar100", root_holds="``cifar-100-python``",
    doc="""CIFAR-100 (fine labels) from the official python pickles in a local directory (Carratino et al. 2020).

    Expects ``root/cifar-100-python/{train, test}`` (or those files directly in
    ``root``): pickled dicts with ``data`` (N, 3072) uint8 rows and ``fine_labels``.
    Images ``(N, 3, 32, 32)`` in [0, 1], optionally standardised per channel with
    train statistics. Official split; ``seed`` unused. Only load files you trust.""",
)


_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (magic 0x00 0x00 0x08 ndim, big-endian uint32 sizes)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (EOFError, OSError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{str(path)!r} cannot be read ({type(error).__name__}: {error}); the file is truncated "
                         f"or damaged: download or unpack it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(
            f"{str(path)!r} is not an unsigned-byte IDX file (magic bytes {raw[:4].hex()}, expected 0000 08 nn)"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{str(path)!r} is truncated: {len(raw)} bytes, shorter than its {header}-byte IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != math.prod(shape):
        raise ValueError(f"{str(path)!r} declares shape {shape} but holds {data.size} values (expected "
                         f"{math.prod(shape)}); the file is truncated or damaged: download or unpack it again")
    return data.reshape(shape)


def _load_idx_pair(name: str, root: Any, standardize: bool):
    root = _require_dir(root, f"the four IDX files {list(_IDX_FILES)} (each may end in .gz)")
    paths = []
    for stem in _IDX_FILES:
        found = [root / f"{stem}{suffix}" for suffix in ("", ".gz") if (root / f"{stem}{suffix}").is_file()]
        paths.append(found[0] if found else None)
    missing = [stem for stem, path in zip(_IDX_FILES, paths) if path is None]
    if missing:
        raise FileNotFoundError(
            f"{name}: missing {missing} (each may end in .gz) in {str(root)!r}; put the four official "
            f"IDX files {list(_IDX_FILES)} there"
        )
    train_images, train_labels, test_images, test_labels = (_read_idx(p) for p in paths)
    for images, labels, split in ((train_images, train_labels, "train"), (test_images, test_labels, "t10k")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{name}: {split} images of shape {images.shape} do not match labels of shape {labels.shape}; "
                f"expected (N, H, W) and (N,)"
            )
    x_train = train_images[:, None].astype(np.float32) / 255
    x_test = test_images[:, None].astype(np.float32) / 255
    if standardize:
        x_train, x_test = _standardize(x_train, x_test, axes=(0, 1, 2, 3))
    return _classification(x_train, train_labels, x_test, test_labels, 10)


_mnist = _image_set(
    _load_idx_pair, "mnist", root_holds="the four IDX files",
    doc="""MNIST from the four official IDX files (gzipped or not) in ``root`` (Greenewald et al. 2023; Baena et al. 2022).

    Files: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``.
    Images ``(N, 1, 28, 28)`` in [0, 1]; with ``standardize``, the single channel is
    standardised with train statistics. Official split; ``seed`` unused.""",
)

_fashion_mnist = _image_set(
    _load_idx_pair, "fashion_mnist", root_holds="the four IDX files",
    doc="""Fashion-MNIST from its four IDX files (same names as MNIST) in ``root`` (Baena et al. 2022, Table I).

    Same format, file names and options as ``mnist``.""",
)
