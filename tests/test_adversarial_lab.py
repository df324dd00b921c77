"""Adversarial inputs to the experiment system (issue 13, lab half): every bad file or setting ends in a
ValueError/TypeError that names the file or the setting and says what was expected, before any training;
nothing is silently wrong, lost or trained twice."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest

from vicinal.lab.datasets import load_dataset


# --------------------------------------------------------------------------- loaders: silent wrong results


def _write_csv(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_empty_label_cell_is_refused_not_a_new_class(tmp_path):
    rows = ["a,b,label"] + [f"{i},{i % 3},{i % 2}" for i in range(20)] + ["5,6,"]
    path = _write_csv(tmp_path / "t.csv", rows)
    with pytest.raises(ValueError, match=r"line 22 of .*t\.csv.* empty 'label' cell"):
        load_dataset("csv", path=str(path))


@pytest.mark.parametrize("cell", ["nan", "NaN", "inf", "-inf"])
def test_csv_non_finite_regression_target_is_refused(tmp_path, cell):
    rows = ["a,y"] + [f"{i},{i * 0.5}" for i in range(10)] + [f"3,{cell}"]
    path = _write_csv(tmp_path / "r.csv", rows)
    with pytest.raises(ValueError, match=r"line 12 of .*r\.csv.* non-finite 'y' value"):
        load_dataset("csv", path=str(path), target="y", task="regression")


def test_csv_nan_label_is_refused_not_a_class(tmp_path):
    rows = ["a,label"] + [f"{i},{i % 2}" for i in range(10)] + ["3,nan"]
    path = _write_csv(tmp_path / "c.csv", rows)
    with pytest.raises(ValueError, match=r"line 12 .*non-finite 'label'"):
        load_dataset("csv", path=str(path))


@pytest.mark.parametrize("split", [True, False])
def test_npz_nan_regression_targets_are_refused(tmp_path, split):
    rng = np.random.default_rng(0)
    y = rng.normal(size=20)
    y[7] = np.nan
    x = rng.normal(size=(20, 3))
    path = tmp_path / "r.npz"
    if split:
        np.savez(path, x_train=x[:15], y_train=y[:15], x_test=x[15:], y_test=y[15:])
    else:
        np.savez(path, x=x, y=y)
    with pytest.raises(ValueError, match=r"r\.npz.*targets hold NaN or Inf"):
        load_dataset("npz", path=str(path))


# --------------------------------------------------------------------------- loaders: named file errors


def _good_npz(path):
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(size=(40, 3)), y=np.arange(40) % 2)
    return path


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_npz_names_the_file(tmp_path, keep):
    path = _good_npz(tmp_path / "d.npz")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match=r"d\.npz.*(not a readable|damaged) \.npz archive"):
        load_dataset("npz", path=str(path))


def test_npy_given_as_npz_says_what_it_is(tmp_path):
    path = tmp_path / "x.npz"
    with open(path, "wb") as handle:
        np.save(handle, np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"x\.npz.*single \.npy array of shape \(5, 2\).*np\.savez"):
        load_dataset("npz", path=str(path))


@pytest.mark.parametrize("content", [b"", b"garbage that is no zip", pickle.dumps({"x": 1})])
def test_foreign_file_given_as_npz_names_the_file(tmp_path, content):
    path = tmp_path / "f.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"f\.npz"):
        load_dataset("npz", path=str(path))


@pytest.mark.parametrize("layout", ["xy", "split"])
def test_one_hot_npz_labels_are_named_one_hot(tmp_path, layout):
    y = np.eye(3, dtype=np.int64)[np.arange(30) % 3]
    x = np.random.default_rng(0).normal(size=(30, 2))
    path = tmp_path / "h.npz"
    if layout == "xy":
        np.savez(path, x=x, y=y)
    else:
        np.savez(path, x_train=x[:20], y_train=y[:20], x_test=x[20:], y_test=y[20:])
    with pytest.raises(ValueError, match=r"h\.npz.*shape \(N,\), got shape \(\d+, 3\).*one-hot.*argmax"):
        load_dataset("npz", path=str(path))


def _write_cifar10(directory, n=3):
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
        with open(directory / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_damaged_cifar_batch_names_the_file(tmp_path, damage):
    _write_cifar10(tmp_path / "cifar-10-batches-py")
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "empty": b"", "garbage": b"\x00not a pickle"}[damage])
    with pytest.raises(ValueError, match=r"data_batch_3.*not a readable CIFAR batch"):
        load_dataset("cifar10", root=str(tmp_path))


def _idx(array):
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _write_mnist(root, compress):
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, size=6, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(2, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, size=2, dtype=np.uint8),
    }
    for stem, array in files.items():
        path = root / (stem + (".gz" if compress else ""))
        with (gzip.open if compress else open)(path, "wb") as handle:
            handle.write(_idx(array))


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("keep", [3, 10, 500])
def test_truncated_mnist_file_names_the_file(tmp_path, compress, keep):
    _write_mnist(tmp_path, compress)
    path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if compress else ""))
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte"):
        load_dataset("mnist", root=str(tmp_path))
