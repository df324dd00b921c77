"""Loaders of SVHN, Tiny ImageNet and CIFAR-10-C / 100-C, on tiny files written here in the distributed formats."""

from __future__ import annotations

import inspect
import pickle
import sys

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from vicinal.lab.datasets import dataset_parameters, load_dataset
from vicinal.lab.datasets.cifar_corrupted import CORRUPTIONS

from cifar_files import write_clean_cifar10, write_corrupted

# --------------------------------------------------------------------------- SVHN


def _write_svhn(directory, rng, n_train=7, n_test=5):
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, n in (("train_32x32.mat", n_train), ("test_32x32.mat", n_test)):
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = np.resize(np.arange(1, 11, dtype=np.uint8), n).reshape(n, 1)  # 1..10, as distributed
        scipy.io.savemat(directory / name, {"X": x, "y": y})
        arrays[name] = (x, y)
    return arrays


def test_svhn_reads_the_mat_layout_and_maps_label_10_to_digit_0(tmp_path):
    arrays = _write_svhn(tmp_path, np.random.default_rng(0), n_train=12)
    d = load_dataset("svhn", root=tmp_path)
    x, y = arrays["train_32x32.mat"]
    assert d.x_train.shape == (12, 3, 32, 32) and d.x_test.shape == (5, 3, 32, 32) and d.num_classes == 10
    assert d.y_train.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]  # label 10 is the digit 0
    # Pixel (row 4, column 7, green) of image 3, read straight from X[h, w, c, n].
    assert d.x_train[3, 1, 4, 7].item() == pytest.approx(x[4, 7, 1, 3] / 255)
    assert 0 <= d.x_train.min() and d.x_train.max() <= 1 and d.x_train.dtype == torch.float32


def test_svhn_standardises_each_channel_with_train_statistics(tmp_path):
    _write_svhn(tmp_path, np.random.default_rng(1))
    d = load_dataset("svhn", root=tmp_path, standardize=True)
    mean = d.x_train.double().mean(dim=(0, 2, 3))
    std = d.x_train.double().std(dim=(0, 2, 3), unbiased=False)
    torch.testing.assert_close(mean, torch.zeros(3, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(std, torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0)


def test_svhn_missing_truncated_and_foreign_files(tmp_path):
    _write_svhn(tmp_path, np.random.default_rng(2))
    (tmp_path / "test_32x32.mat").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing \['test_32x32.mat'\].*ufldl.stanford.edu/housenumbers"):
        load_dataset("svhn", root=tmp_path)
    _write_svhn(tmp_path, np.random.default_rng(2))
    raw = (tmp_path / "train_32x32.mat").read_bytes()
    (tmp_path / "train_32x32.mat").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"train_32x32.mat' is not a readable MATLAB file.*download it again"):
        load_dataset("svhn", root=tmp_path)
    scipy.io.savemat(tmp_path / "train_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": [[0], [3]]})
    with pytest.raises(ValueError, match=r"labels in \[0, 3\]; SVHN's are 1..10"):
        load_dataset("svhn", root=tmp_path)
    scipy.io.savemat(tmp_path / "train_32x32.mat", {"images": np.zeros(3)})
    with pytest.raises(ValueError, match=r"no 'X' and 'y' \(variables: \['images'\]\)"):
        load_dataset("svhn", root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"absent' does not exist.*train_32x32.mat"):
        load_dataset("svhn", root=tmp_path / "absent")


# --------------------------------------------------------------------------- Tiny ImageNet

WNIDS = ["n02", "n01", "n03"]  # wnids.txt is not sorted as distributed; classes follow the sorted order


def _jpeg(path, value, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    # A flat image: JPEG keeps flat colours to within a grey level or two.
    Image.new(mode, (64, 64), value).save(path, format="JPEG", quality=95)


def _write_tiny_imagenet(root, per_class=2):
    directory = root / "tiny-imagenet-200"
    directory.mkdir(parents=True)
    (directory / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    for c, wnid in enumerate(WNIDS):
        for i in range(per_class):
            _jpeg(directory / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", (40 * c, 10 * i, 200))
    lines = []
    for i, wnid in enumerate(["n03", "n01", "n02", "n03"]):
        _jpeg(directory / "val" / "images" / f"val_{i}.JPEG", (60 * i, 100, 20))
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
    (directory / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return directory


def test_tiny_imagenet_reads_the_folder_layout(tmp_path):
    directory = _write_tiny_imagenet(tmp_path)
    _jpeg(directory / "train" / "n03" / "images" / "n03_grey.JPEG", 128, mode="L")  # some are grey: made RGB
    d = load_dataset("tiny_imagenet", root=tmp_path)
    assert d.x_train.shape == (7, 3, 64, 64) and d.x_test.shape == (4, 3, 64, 64) and d.num_classes == 3
    # Sorted wnids: n01 -> 0, n02 -> 1, n03 -> 2; files within a class in name order.
    assert d.y_train.tolist() == [0, 0, 1, 1, 2, 2, 2] and d.y_test.tolist() == [2, 0, 1, 2]
    # Class n01 (index 1 in wnids.txt) image 1 was RGB (40, 10, 200); the grey one is 128 in every channel.
    torch.testing.assert_close(d.x_train[1].mean(dim=(1, 2)), torch.tensor([40, 10, 200]) / 255.0, atol=3 / 255, rtol=0)
    torch.testing.assert_close(d.x_train[6], torch.full((3, 64, 64), 128 / 255), atol=2 / 255, rtol=0)
    torch.testing.assert_close(d.x_test[3].mean(dim=(1, 2)), torch.tensor([180, 100, 20]) / 255.0, atol=3 / 255, rtol=0)


def test_tiny_imagenet_missing_parts_are_named(tmp_path):
    directory = _write_tiny_imagenet(tmp_path)
    (directory / "val" / "val_annotations.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing \['val/val_annotations.txt'\].*tiny-imagenet-200.zip"):
        load_dataset("tiny_imagenet", root=tmp_path)
    (directory / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn01\nval_9.JPEG\tn02\n")
    with pytest.raises(FileNotFoundError, match=r"1 validation image\(s\).*\['val_9.JPEG'\]"):
        load_dataset("tiny_imagenet", root=tmp_path)
    (directory / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99\n")
    with pytest.raises(ValueError, match=r"line 1: 'val_0.JPEG\\tn99'.*wnid listed in wnids.txt"):
        load_dataset("tiny_imagenet", root=directory)  # the folder itself is accepted as root too
    for path in (directory / "train" / "n02" / "images").iterdir():
        path.unlink()
    with pytest.raises(FileNotFoundError, match=r"no images in \['train/n02/images/\*.JPEG'\] \(1 of 3 classes\)"):
        load_dataset("tiny_imagenet", root=tmp_path)


def test_tiny_imagenet_truncated_or_wrong_size_jpeg_is_named(tmp_path):
    directory = _write_tiny_imagenet(tmp_path)
    path = directory / "train" / "n01" / "images" / "n01_0.JPEG"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"n01_0.JPEG' is not a readable image.*unpack"):
        load_dataset("tiny_imagenet", root=tmp_path)
    Image.new("RGB", (32, 64)).save(path, format="JPEG")
    with pytest.raises(ValueError, match=r"n01_0.JPEG' is 32x64; Tiny ImageNet images are 64x64"):
        load_dataset("tiny_imagenet", root=tmp_path)


def test_tiny_imagenet_without_pillow_names_the_extra(tmp_path, monkeypatch):
    _write_tiny_imagenet(tmp_path)
    monkeypatch.setitem(sys.modules, "PIL", None)  # `from PIL import Image` now raises ImportError
    with pytest.raises(ImportError, match=r"Pillow, which is not installed: pip install 'vicinal\[images\]'"):
        load_dataset("tiny_imagenet", root=tmp_path)


# --------------------------------------------------------------------------- CIFAR-10-C / 100-C


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_cifar10_c_severity_selects_its_block_of_rows(tmp_path, severity):
    rng = np.random.default_rng(severity)
    write_clean_cifar10(tmp_path / "clean" / "cifar-10-batches-py", rng)
    images, labels = write_corrupted(tmp_path / "CIFAR-10-C", rng)
    d = load_dataset("cifar10_c", root=tmp_path, clean_root=tmp_path / "clean", corruption="fog", severity=severity)
    clean = load_dataset("cifar10", root=tmp_path / "clean")
    torch.testing.assert_close(d.x_train, clean.x_train, rtol=0, atol=0)  # train split: clean CIFAR-10
    assert torch.equal(d.y_train, clean.y_train) and d.num_classes == 10
    rows = slice(3 * (severity - 1), 3 * severity)
    expected = torch.from_numpy(images["fog"][rows].transpose(0, 3, 1, 2).astype(np.float32) / 255)
    torch.testing.assert_close(d.x_test, expected, rtol=0, atol=0)  # HWC -> CHW, in [0, 1]
    assert d.y_test.tolist() == labels[rows].tolist() and d.y_test.dtype == torch.int64


def test_cifar100_c_reads_files_in_root_and_standardises_with_clean_statistics(tmp_path):
    rng = np.random.default_rng(7)
    clean_dir = tmp_path / "cifar-100-python"
    clean_dir.mkdir()
    for name in ("train", "test"):
        batch = {"data": rng.integers(0, 256, size=(6, 3072), dtype=np.uint8),
                 "fine_labels": rng.integers(0, 100, size=6).tolist()}
        with (clean_dir / name).open("wb") as handle:
            pickle.dump(batch, handle)
    images, _ = write_corrupted(tmp_path / "c", rng, corruptions=("zoom_blur",), num_classes=100)
    d = load_dataset("cifar100_c", root=tmp_path / "c", clean_root=tmp_path, corruption="zoom_blur", severity=2,
                     standardize=True)
    raw = load_dataset("cifar100", root=tmp_path)
    mean = raw.x_train.double().mean(dim=(0, 2, 3), keepdim=True)
    std = raw.x_train.double().std(dim=(0, 2, 3), keepdim=True, unbiased=False)
    test = torch.from_numpy(images["zoom_blur"][3:6].transpose(0, 3, 1, 2) / 255.0)
    torch.testing.assert_close(d.x_test.double(), (test - mean) / std, atol=1e-5, rtol=0)
    assert d.num_classes == 100


def test_cifar_c_parameters_are_checked_and_listed(tmp_path):
    required = inspect.Parameter.empty
    assert dataset_parameters("cifar10_c") == {"root": required, "clean_root": required, "corruption": required,
                                               "severity": required, "standardize": False}
    assert len(CORRUPTIONS) == 19 and "gaussian_noise" in CORRUPTIONS
    common = {"root": tmp_path, "clean_root": tmp_path}
    with pytest.raises(ValueError, match=r"severity must be an integer in 1..5, got 6"):
        load_dataset("cifar10_c", corruption="fog", severity=6, **common)
    with pytest.raises(ValueError, match=r"corruption must be one of 'brightness'.*got 'fogg'"):
        load_dataset("cifar10_c", corruption="fogg", severity=1, **common)
    with pytest.raises(ValueError, match=r"needs parameter\(s\) \['corruption', 'severity'\]"):
        load_dataset("cifar10_c", **common)


def test_cifar_c_missing_truncated_and_misshapen_files(tmp_path):
    rng = np.random.default_rng(9)
    write_clean_cifar10(tmp_path / "cifar-10-batches-py", rng)
    write_corrupted(tmp_path / "CIFAR-10-C", rng)
    common = {"root": tmp_path, "clean_root": tmp_path, "severity": 1}
    with pytest.raises(FileNotFoundError, match=r"missing \['frost.npy'\].*zenodo.org/record/2535967"):
        load_dataset("cifar10_c", corruption="frost", **common)
    raw = (tmp_path / "CIFAR-10-C" / "fog.npy").read_bytes()
    (tmp_path / "CIFAR-10-C" / "fog.npy").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"fog.npy' is not a readable .npy array.*truncated"):
        load_dataset("cifar10_c", corruption="fog", **common)
    np.save(tmp_path / "CIFAR-10-C" / "fog.npy", np.zeros((7, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=r"shape \(7, 32, 32, 3\); expected uint8 \(5 n, 32, 32, 3\)"):
        load_dataset("cifar10_c", corruption="fog", **common)
    np.save(tmp_path / "CIFAR-10-C" / "fog.npy", np.zeros((10, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=r"labels.npy' has shape \(15,\); expected \(10,\)"):
        load_dataset("cifar10_c", corruption="fog", **common)
    with pytest.raises(FileNotFoundError, match=r"missing \['data_batch_1'"):
        load_dataset("cifar10_c", root=tmp_path, clean_root=tmp_path / "CIFAR-10-C", corruption="snow", severity=1)
