"""Tests of vicinal.lab.datasets: paper generators, sklearn sets, offline file loaders, errors."""

from __future__ import annotations

import dataclasses
import gzip
import math
import pickle
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats
from sklearn import datasets as sk_datasets

from vicinal.lab.datasets import Dataset, available_datasets, dataset_parameters, load_dataset

TOYS = ["spirals", "one_ring", "four_bars", "swiss_roll"]


def _all_x(d: Dataset) -> torch.Tensor:
    return torch.cat([d.x_train, d.x_test]).double()


def _all_y(d: Dataset) -> torch.Tensor:
    return torch.cat([d.y_train, d.y_test])


def _one_nn_test_error(d: Dataset) -> float:
    nearest = torch.cdist(d.x_test, d.x_train).argmin(dim=1)
    return (d.y_train[nearest] != d.y_test).double().mean().item()


# --------------------------------------------------------------------------- registry


def test_registry_lists_every_dataset():
    assert set(available_datasets()) == {
        "spirals", "moons", "one_ring", "four_bars", "swiss_roll", "iris", "breast_cancer", "wine", "digits",
        "csv", "npz", "cifar10", "cifar100", "mnist", "fashion_mnist", "svhn", "tiny_imagenet", "cifar10_c",
        "cifar100_c",
    }


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown dataset 'spiral'.*spirals.*swiss_roll"):
        load_dataset("spiral")


def test_unknown_parameter_is_named():
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['sigma'\].*noise"):
        load_dataset("spirals", sigma=1.0)


def test_missing_required_parameter_is_named():
    with pytest.raises(ValueError, match=r"needs parameter\(s\) \['root'\]"):
        load_dataset("mnist")


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("spirals", {"noise": -1.0}, "noise must be a number >= 0"),
        ("spirals", {"test_fraction": 1.0}, "test_fraction must be a number strictly between 0 and 1"),
        ("spirals", {"n_per_class": 0}, "n_per_class must be an integer >= 2"),
        ("moons", {"flip": 1.5}, r"flip must be a fraction in \[0, 1\], got 1.5"),
        ("four_bars", {"n_per_class": 7}, "n_per_class must be even"),
        ("four_bars", {"bar_width": 2.0}, "bar_width must be smaller than spacing"),
        ("one_ring", {"core_radius": 0.6}, "core_radius must be smaller than radius"),
        ("iris", {"standardize": "yes"}, "standardize must be True or False"),
    ],
)
def test_invalid_parameter_values_raise_naming_them(name, params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        load_dataset(name, **params)


def test_seed_out_of_range_raises():
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        load_dataset("spirals", seed=-1)
    with pytest.raises(ValueError, match=r"seed must be below 2\*\*32, got 4294967296"):
        load_dataset("iris", seed=2**32)


@pytest.mark.parametrize("name", TOYS + ["moons", "iris", "wine", "breast_cancer", "digits"])
def test_params_rebuild_the_same_dataset(name):
    d = load_dataset(name, seed=3)
    again = load_dataset(name, **d.params)
    assert d.params["seed"] == 3
    assert set(d.params) == {"seed", *dataset_parameters(name)}
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(d, field), getattr(again, field))


# --------------------------------------------------------------------------- Dataset


def _tiny(**overrides):
    fields = dict(name="t", x_train=torch.zeros(4, 2), y_train=torch.tensor([0, 1, 0, 1]),
                  x_test=torch.zeros(2, 2), y_test=torch.tensor([1, 0]), num_classes=2)
    return Dataset(**{**fields, **overrides})


def test_dataset_is_frozen_and_summarises_itself():
    d = _tiny()
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.num_classes = 3
    assert "train=(4, 2)" in repr(d) and d.input_shape == (2,)


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"x_train": torch.zeros(4, 2, dtype=torch.int64)}, TypeError, "x_train must be a float32 tensor"),
        ({"y_train": torch.tensor([0, 1, 0])}, ValueError, "y_train must be a tensor with 4 rows"),
        ({"y_test": torch.tensor([1, 2])}, ValueError, r"labels in \[1, 2\], expected \[0, 2\)"),
        ({"y_test": torch.tensor([1.0, 0.0])}, TypeError, "y_test must be an int64 tensor"),
        ({"num_classes": None}, TypeError, "regression targets y_train must be floating"),
        ({"x_test": torch.zeros(2, 3)}, ValueError, "must share their trailing shape"),
    ],
)
def test_dataset_rejects_inconsistent_tensors(overrides, error, match):
    with pytest.raises(error, match=match):
        _tiny(**overrides)


# --------------------------------------------------------------------------- synthetic


@pytest.mark.parametrize("name", TOYS)
def test_toys_shapes_dtypes_and_stratified_balance(name):
    d = load_dataset(name, n_per_class=100)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.x_train.shape == (160, 2) and d.x_test.shape == (40, 2) and d.num_classes == 2
    assert torch.bincount(d.y_train).tolist() == [80, 80]
    assert torch.bincount(d.y_test).tolist() == [20, 20]


@settings(max_examples=15, deadline=None)
@given(name=st.sampled_from(TOYS + ["moons"]), seed=st.integers(0, 2**31))
def test_same_seed_same_numbers_other_seed_other_numbers(name, seed):
    a, b = load_dataset(name, seed=seed), load_dataset(name, seed=seed)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, load_dataset(name, seed=seed + 1).x_train)


def test_spirals_paper_sizes_and_train_only_standardisation():
    d = load_dataset("spirals")
    assert len(d.x_train) + len(d.x_test) == 2000 and len(d.x_test) == 400  # 1000 per class, 80/20
    # Fitted on the train split: exact there, only approximate on the test split.
    torch.testing.assert_close(d.x_train.double().mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(d.x_train.double().std(0, unbiased=False), torch.ones(2, dtype=torch.float64),
                               atol=1e-6, rtol=0)
    assert d.x_test.double().mean(0).abs().max() > 1e-4


def test_spirals_noise_controls_class_overlap():
    # Noise-free arms are separable by a 1-NN rule; the paper's sigma = 1.5 makes them overlap.
    assert _one_nn_test_error(load_dataset("spirals", noise=0.0)) == 0.0
    assert _one_nn_test_error(load_dataset("spirals", noise=1.5)) > 0.1


def test_spirals_classes_are_point_reflections():
    # Raw class 1 = -(raw class 0), so all raw points average to the origin; standardising is
    # affine, so the classes stay point reflections of each other about the mean of all points.
    d = load_dataset("spirals", noise=0.0, n_per_class=200)
    x, y = _all_x(d), _all_y(d)
    centre = x.mean(0)
    distance = torch.cdist(2 * centre - x[y == 1], x[y == 0]).min(dim=1).values
    assert distance.max() < 1e-5


def _mean_min_lam_squared(alpha: float) -> float:
    """E[min(lam, 1 - lam)^2] for lam ~ Beta(alpha, alpha) (Greenewald et al. 2023, Algorithm 1)."""
    beta = stats.beta(alpha, alpha)
    return integrate.quad(lambda t: min(t, 1 - t) ** 2 * beta.pdf(t), 0, 1, points=[0.5])[0]


# Perturbation sizes xi per alpha from Greenewald et al. 2023, App. B, Table 9.
TABLE_9_XI = {
    "one_ring": [0.10, 0.15, 0.20, 0.23, 0.25],
    "four_bars": [0.50, 0.78, 1.0, 1.1, 1.2],
    "swiss_roll": [1.2, 1.9, 2.4, 2.8, 3.0],
}


@pytest.mark.parametrize("name", sorted(TABLE_9_XI))
def test_toy_scale_matches_perturbation_sizes_of_table_9(name):
    # 1-mixup: xi^2 = E||x_i - x_j||^2 * E[min(lam, 1-lam)^2], so xi fixes the RMS pair distance.
    x = _all_x(load_dataset(name))
    rms_pair_distance = math.sqrt(2 * x.var(0, unbiased=False).sum().item())
    implied = [xi / math.sqrt(_mean_min_lam_squared(a)) for a, xi in zip([0.25, 1, 4, 16, 64], TABLE_9_XI[name])]
    assert rms_pair_distance == pytest.approx(np.mean(implied), rel=0.12)


def test_one_ring_geometry():
    d = load_dataset("one_ring", radius=2.0, core_radius=0.5)
    norms, y = _all_x(d).norm(dim=1), _all_y(d)
    torch.testing.assert_close(norms[y == 1], torch.full_like(norms[y == 1], 2.0), atol=1e-5, rtol=0)
    assert norms[y == 0].max() <= 0.5 + 1e-6


def test_four_bars_alternate_classes():
    d = load_dataset("four_bars", spacing=2.0, bar_width=0.5)
    x, y = _all_x(d), _all_y(d)
    centres = torch.tensor([-3.0, -1.0, 1.0, 3.0], dtype=torch.float64)
    bar = (x[:, :1] - centres).abs().argmin(dim=1)
    assert (x[:, 0] - centres[bar]).abs().max() <= 0.25 + 1e-6
    assert torch.equal(y, bar % 2)  # labels 0, 1, 0, 1 from left to right
    assert torch.bincount(bar).tolist() == [250] * 4


def test_swiss_roll_arms_interleave_but_stay_separable():
    d = load_dataset("swiss_roll")
    x, y = _all_x(d), _all_y(d)
    norms = x.norm(dim=1)
    assert norms.max() <= 6.5 + 1e-5 and norms.min() >= 6.5 / 3 - 1e-5
    for cls in (0, 1):  # each arm winds all the way round
        angles = torch.atan2(x[y == cls, 1], x[y == cls, 0])
        assert angles.min() < -3.0 and angles.max() > 3.0
    assert _one_nn_test_error(d) == 0.0


def test_moons_paper_sizes_and_exact_flip_count():
    clean, noisy = load_dataset("moons", seed=5, flip=0.0), load_dataset("moons", seed=5)
    assert clean.x_train.shape == (150, 2) and clean.x_test.shape == (150, 2)
    assert torch.equal(clean.x_train, noisy.x_train) and torch.equal(clean.y_test, noisy.y_test)
    assert (clean.y_train != noisy.y_train).sum().item() == round(0.2 * 150)
    everything = load_dataset("moons", seed=5, flip=1.0)
    assert torch.equal(everything.y_train, 1 - clean.y_train)


# --------------------------------------------------------------------------- scikit-learn bundled


@pytest.mark.parametrize(("name", "shape", "num_classes"),
                         [("iris", (4,), 3), ("breast_cancer", (30,), 2), ("wine", (13,), 3)])
def test_tabular_sets_are_split_stratified_and_standardised_on_train(name, shape, num_classes):
    d = load_dataset(name, seed=1)
    assert d.input_shape == shape and d.num_classes == num_classes
    counts = torch.bincount(_all_y(d)).double()
    torch.testing.assert_close(torch.bincount(d.y_test).double() / len(d.y_test), counts / counts.sum(),
                               atol=0.05, rtol=0)
    torch.testing.assert_close(d.x_train.double().mean(0), torch.zeros(shape, dtype=torch.float64), atol=1e-5, rtol=0)
    assert d.x_test.double().mean(0).abs().max() > 1e-3


def test_iris_without_standardisation_keeps_raw_features():
    d = load_dataset("iris", standardize=False)
    raw = sk_datasets.load_iris().data
    got = np.sort(_all_x(d).numpy(), axis=0)
    np.testing.assert_allclose(got, np.sort(raw, axis=0), rtol=1e-6)
    assert len(d.y_test) == 30 and torch.bincount(d.y_test).tolist() == [10, 10, 10]


def test_digits_are_images_in_unit_interval():
    d = load_dataset("digits")
    assert d.input_shape == (1, 8, 8) and d.num_classes == 10
    x = _all_x(d)
    assert x.min() == 0.0 and x.max() == 1.0
    assert len(x) == 1797


# --------------------------------------------------------------------------- user files: CIFAR


def _cifar_batch(rng, n, num_classes, label_key, byte_keys):
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = rng.integers(0, num_classes, size=n).tolist()
    batch = {"data": data, label_key: labels}
    return {k.encode(): v for k, v in batch.items()} if byte_keys else batch


def _write_cifar10(directory, rng, n=3):
    directory.mkdir(parents=True, exist_ok=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = _cifar_batch(rng, n, 10, "labels", byte_keys=True)  # like the official Python 2 pickles
        with open(directory / name, "wb") as handle:
            pickle.dump(batches[name], handle)
    return batches


def test_cifar10_reads_official_pickle_layout(tmp_path):
    batches = _write_cifar10(tmp_path / "cifar-10-batches-py", np.random.default_rng(0))
    d = load_dataset("cifar10", root=str(tmp_path))
    assert d.x_train.shape == (15, 3, 32, 32) and d.x_test.shape == (3, 3, 32, 32) and d.num_classes == 10
    first = batches["data_batch_1"][b"data"][0]
    c, h, w = 2, 5, 7  # rows are 1024 red, then green, then blue values, each row-major
    assert d.x_train[0, c, h, w].item() == pytest.approx(first[c * 1024 + h * 32 + w] / 255)
    assert d.y_test.tolist() == batches["test_batch"][b"labels"]
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0


def test_cifar10_files_directly_in_root_and_per_channel_standardisation(tmp_path):
    _write_cifar10(tmp_path, np.random.default_rng(1))
    d = load_dataset("cifar10", root=tmp_path, standardize=True)
    torch.testing.assert_close(d.x_train.double().mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64),
                               atol=1e-5, rtol=0)


def test_cifar10_missing_files_say_what_to_put_where(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(FileNotFoundError, match=r"missing \['data_batch_1'.*'test_batch'\].*cifar-10-batches-py"):
        load_dataset("cifar10", root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"nowhere' does not exist; create it and put cifar-10-batches-py/"):
        load_dataset("cifar10", root=tmp_path / "nowhere")


def test_cifar100_fine_labels_with_text_keys(tmp_path):
    rng = np.random.default_rng(2)
    directory = tmp_path / "cifar-100-python"
    directory.mkdir()
    for name, n in (("train", 4), ("test", 2)):
        with open(directory / name, "wb") as handle:
            pickle.dump(_cifar_batch(rng, n, 100, "fine_labels", byte_keys=False), handle)
    d = load_dataset("cifar100", root=tmp_path)
    assert d.x_train.shape == (4, 3, 32, 32) and d.num_classes == 100


@pytest.mark.parametrize(
    ("batch", "match"),
    [
        ({b"data": np.zeros((1, 3072), np.uint8)}, "no 'fine_labels' entry"),
        ({b"data": np.zeros((2, 1024), np.uint8), b"fine_labels": [0, 1]}, r"data of shape \(2, 1024\)"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0]}, r"fine_labels of shape \(1,\)"),
    ],
)
def test_malformed_cifar_batches_are_rejected(tmp_path, batch, match):
    directory = tmp_path / "cifar-100-python"
    directory.mkdir()
    for name in ("train", "test"):
        with open(directory / name, "wb") as handle:
            pickle.dump(batch, handle)
    with pytest.raises(ValueError, match=match):
        load_dataset("cifar100", root=tmp_path)


# --------------------------------------------------------------------------- user files: IDX


def _idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _write_idx_set(root, rng, compress):
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, size=6, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(2, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, size=2, dtype=np.uint8),
    }
    for i, (name, array) in enumerate(arrays.items()):
        gz = compress == "all" or (compress == "some" and i % 2 == 0)
        with (gzip.open if gz else open)(root / (name + (".gz" if gz else "")), "wb") as handle:
            handle.write(_idx_bytes(array))
    return arrays


@pytest.mark.parametrize("compress", ["none", "all", "some"])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_files_gzipped_or_not(tmp_path, name, compress):
    arrays = _write_idx_set(tmp_path, np.random.default_rng(3), compress)
    d = load_dataset(name, root=tmp_path)
    assert d.x_train.shape == (6, 1, 28, 28) and d.x_test.shape == (2, 1, 28, 28) and d.num_classes == 10
    np.testing.assert_allclose(d.x_train[:, 0].numpy(), arrays["train-images-idx3-ubyte"] / 255, rtol=1e-6)
    assert d.y_test.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_idx_missing_files_are_listed(tmp_path):
    arrays = _write_idx_set(tmp_path, np.random.default_rng(4), "none")
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing \['t10k-labels-idx1-ubyte'\] \(each may end in .gz\)"):
        load_dataset("mnist", root=tmp_path)
    assert arrays  # the other three files were there


def test_idx_missing_directory_names_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does not exist; create it and put the four IDX files \['train-images"):
        load_dataset("fashion_mnist", root=tmp_path / "absent")


def test_idx_bad_magic_is_rejected(tmp_path):
    _write_idx_set(tmp_path, np.random.default_rng(5), "none")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00" * 4)
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        load_dataset("mnist", root=tmp_path)


# --------------------------------------------------------------------------- user files: CSV / NPZ


def test_csv_text_labels_map_to_sorted_classes(tmp_path):
    rng = np.random.default_rng(6)
    path = tmp_path / "table.csv"
    rows = ["a,species,b"] + [f"{u:.4f},{'dog' if i % 2 else 'cat'},{v:.4f}"
                              for i, (u, v) in enumerate(rng.normal(size=(20, 2)))]
    path.write_text("\n".join(rows) + "\n")
    d = load_dataset("csv", path=str(path), target="species", test_fraction=0.25)
    assert d.num_classes == 2 and d.input_shape == (2,)
    assert d.x_train.shape == (15, 2) and torch.bincount(d.y_test).tolist() in ([3, 2], [2, 3])
    torch.testing.assert_close(d.x_train.double().mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-6, rtol=0)


def test_csv_numeric_labels_sort_numerically_and_regression(tmp_path):
    path = tmp_path / "numbers.csv"
    path.write_text("x,label\n" + "".join(f"{i},{10 if i % 2 else 2}\n" for i in range(10)))
    d = load_dataset("csv", path=path, standardize=False)
    x, y = _all_x(d)[:, 0], _all_y(d)
    assert torch.equal(y, (x % 2 == 1).long())  # label 10 -> class 1, label 2 -> class 0
    r = load_dataset("csv", path=path, task="regression", standardize=False)
    assert r.num_classes is None and r.y_train.dtype == torch.float32
    assert set(torch.cat([r.y_train, r.y_test]).tolist()) == {2.0, 10.0}


@pytest.mark.parametrize(
    ("text", "params", "match"),
    [
        ("x,y\n1,0\n2,1\n", {}, r"no column target='label'; its columns are \['x', 'y'\]"),
        ("x,label\nabc,0\n2,1\n", {}, r"feature columns \['x'\].*must be numeric"),
        ("x,label\n1,0\n2\n", {}, "line 3 .* has 1 fields; the header has 2"),
        ("x,label\n1,cat\n2,dog\n", {"task": "regression"}, "regression target column 'label' must be numeric"),
        ("x,label\n1,0\n2,1\n", {"task": "ranking"}, "task must be one of 'classification', 'regression'"),
        ("x,label\n1,0\nnan,1\n3,0\n4,1\n", {"test_fraction": 0.5}, "holds NaN or Inf values"),
    ],
)
def test_csv_bad_files_are_explained(tmp_path, text, params, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_dataset("csv", path=path, **params)


def test_csv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no CSV file at .*absent.csv"):
        load_dataset("csv", path=tmp_path / "absent.csv")


def test_npz_presplit_arrays_are_used_as_given(tmp_path):
    rng = np.random.default_rng(7)
    arrays = dict(x_train=rng.normal(size=(6, 1, 4, 4)), y_train=np.array([0, 1, 2, 0, 1, 2]),
                  x_test=rng.normal(size=(3, 1, 4, 4)), y_test=np.array([2, 1, 0]))
    np.savez(tmp_path / "d.npz", **arrays)
    d = load_dataset("npz", path=tmp_path / "d.npz")
    assert d.num_classes == 3 and d.input_shape == (1, 4, 4) and d.x_train.dtype == torch.float32
    np.testing.assert_allclose(d.x_train.numpy(), arrays["x_train"], rtol=1e-6)
    assert d.y_test.tolist() == [2, 1, 0]


def test_npz_unsplit_regression(tmp_path):
    rng = np.random.default_rng(8)
    np.savez(tmp_path / "r.npz", x=rng.normal(size=(10, 3)), y=rng.normal(size=10))
    d = load_dataset("npz", path=tmp_path / "r.npz", test_fraction=0.3, standardize=True)
    assert d.num_classes is None and len(d.y_test) == 3 and d.y_train.is_floating_point()
    torch.testing.assert_close(d.x_train.double().mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-6, rtol=0)


def test_npz_without_expected_arrays(tmp_path):
    np.savez(tmp_path / "w.npz", inputs=np.zeros((2, 2)))
    expected = r"holds arrays \['inputs'\]; expected x_train, y_train, x_test, y_test or x, y"
    with pytest.raises(ValueError, match=expected):
        load_dataset("npz", path=tmp_path / "w.npz")
