"""Tiny ImageNet (200 classes, 64x64 colour) from the distributed folder layout; needs Pillow (extra ``images``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .image_sets import _image_set, _require_dir
from .splits import _classification, _standardize

_FOLDER = "tiny-imagenet-200"
_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
_SIDE = 64


def _pillow_image():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("tiny_imagenet reads JPEG files with Pillow, which is not installed: "
                          "pip install 'vicinal[images]' (or pip install pillow)") from None
    return Image


def _read_images(paths: list[Path]) -> np.ndarray:
    """JPEGs -> (N, 3, 64, 64) float32 in [0, 1]; grey images are converted to RGB, a bad file is named."""
    image_module = _pillow_image()
    out = np.empty((len(paths), _SIDE, _SIDE, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            with image_module.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
        except (OSError, SyntaxError, ValueError) as error:  # UnidentifiedImageError and truncation are OSErrors
            raise ValueError(f"{str(path)!r} is not a readable image ({type(error).__name__}: {error}); it is "
                             f"truncated or damaged: unpack {_URL} again") from None
        if pixels.shape != (_SIDE, _SIDE, 3):
            raise ValueError(f"{str(path)!r} is {pixels.shape[1]}x{pixels.shape[0]}; Tiny ImageNet images are "
                             f"{_SIDE}x{_SIDE}")
        out[i] = pixels
    return out.transpose(0, 3, 1, 2) / np.float32(255)


def _read_tiny_imagenet(root: Any):
    base = _require_dir(root, f"{_FOLDER}/ unpacked from {_URL}")
    directory = base if (base / "wnids.txt").is_file() else base / _FOLDER
    needed = ["wnids.txt", "train", "val/images", "val/val_annotations.txt"]
    missing = [n for n in needed if not (directory / n).exists()]
    if missing:
        raise FileNotFoundError(f"tiny_imagenet: missing {missing} in {str(directory)!r}; unpack {_URL} so that "
                                f"{str(base / _FOLDER)!r} holds {needed}")
    wnids = sorted({line.strip() for line in (directory / "wnids.txt").read_text().splitlines() if line.strip()})
    if len(wnids) < 2:
        raise ValueError(f"{str(directory / 'wnids.txt')!r} lists {len(wnids)} class id(s); expected one per line "
                         f"(200 in Tiny ImageNet)")
    index = {wnid: i for i, wnid in enumerate(wnids)}
    train_paths, train_labels, empty = [], [], []
    for wnid in wnids:
        files = sorted((directory / "train" / wnid / "images").glob("*.JPEG"))
        empty += [] if files else [f"train/{wnid}/images/*.JPEG"]
        train_paths += files
        train_labels += [index[wnid]] * len(files)
    if empty:
        raise FileNotFoundError(f"tiny_imagenet: no images in {empty[:5]}{' ...' if len(empty) > 5 else ''} "
                                f"({len(empty)} of {len(wnids)} classes) under {str(directory)!r}; unpack {_URL} again")
    val_paths, val_labels = [], []
    annotations = directory / "val" / "val_annotations.txt"
    for number, line in enumerate(annotations.read_text().splitlines(), start=1):
        fields = line.split("\t")
        if not line.strip():
            continue
        if len(fields) < 2 or fields[1] not in index:
            raise ValueError(f"{str(annotations)!r} line {number}: {line!r}; expected '<file>\\t<wnid>\\t...' with a "
                             f"wnid listed in wnids.txt")
        val_paths.append(directory / "val" / "images" / fields[0])
        val_labels.append(index[fields[1]])
    absent = [p.name for p in val_paths if not p.is_file()]
    if absent or not val_paths:
        raise FileNotFoundError(f"tiny_imagenet: {len(absent)} validation image(s) named in val_annotations.txt "
                                f"are missing from {str(directory / 'val' / 'images')!r} (e.g. {absent[:3]}), or "
                                f"none is listed; unpack {_URL} again")
    x_train, x_test = _read_images(train_paths), _read_images(val_paths)
    return x_train, np.asarray(train_labels), x_test, np.asarray(val_labels), len(wnids)


def _load_tiny_imagenet(name: str, root: Any, standardize: bool):
    x_train, y_train, x_test, y_test, num_classes = _read_tiny_imagenet(root)
    if standardize:
        x_train, x_test = _standardize(x_train, x_test, axes=(0, 2, 3))
    return _classification(x_train, y_train, x_test, y_test, num_classes)


_tiny_imagenet = _image_set(
    _load_tiny_imagenet, "tiny_imagenet", root_holds="``tiny-imagenet-200``",
    doc="""Tiny ImageNet from its distributed folder layout in a local directory (Greenewald et al. 2023, Sec. 5.2).

    Expects ``root/tiny-imagenet-200/`` (or its contents directly in ``root``) as
    unpacked from http://cs231n.stanford.edu/tiny-imagenet-200.zip: ``wnids.txt``,
    ``train/<wnid>/images/*.JPEG`` (500 per class) and ``val/images/*.JPEG`` with
    ``val/val_annotations.txt``. The labelled ``val`` set is the test split (the
    ``test`` folder has no labels). Class ``i`` is the ``i``-th wnid in sorted order
    (as torchvision's ImageFolder). Images ``(N, 3, 64, 64)`` in [0, 1] (grey JPEGs
    converted to RGB); the full train split takes 4.9 GB as float32. With
    ``standardize`` each channel is standardised with train statistics. Needs
    Pillow (``pip install 'vicinal[images]'``). Official split; ``seed`` unused.""",
)
