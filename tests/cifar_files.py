"""CIFAR-10 and CIFAR-10-C / 100-C files written in their distributed formats, tiny, for the tests."""

import pickle

import numpy as np


def write_clean_cifar10(directory, rng, n=4):
    """The official CIFAR-10 python pickles: five train batches and the test batch of ``n`` random images each."""
    directory.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, size=n).tolist()}
        with (directory / name).open("wb") as handle:
            pickle.dump(batch, handle)


def write_corrupted(directory, rng, n=3, corruptions=("fog", "snow"), num_classes=10):
    """CIFAR-10-C / 100-C as distributed: ``<corruption>.npy`` (5 n, 32, 32, 3) uint8 and ``labels.npy``."""
    directory.mkdir(parents=True)
    labels = np.tile(rng.integers(0, num_classes, size=n), 5)  # the n test labels once per severity
    np.save(directory / "labels.npy", labels.astype(np.uint8))
    images = {}
    for corruption in corruptions:
        images[corruption] = rng.integers(0, 256, size=(5 * n, 32, 32, 3), dtype=np.uint8)
        np.save(directory / f"{corruption}.npy", images[corruption])
    return images, labels
