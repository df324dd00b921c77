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


# --------------------------------------------------------------------------- settings: typed, named, at parse time

import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402

import torch  # noqa: E402

from vicinal.lab.config import RunConfig, apply_settings, canonical_config  # noqa: E402
from vicinal.lab.store import ResultStore, config_key  # noqa: E402
from vicinal.lab.sweep import expand_grid, load_sweep, run_sweep, spec_from_overrides  # noqa: E402

_WRONG_TYPES = [
    ("truncate", "yes", r"'truncate' must be true or false, got 'yes'"),
    ("truncate", 1, r"'truncate' must be true or false, got 1"),
    ("eval_rescaled", "false", r"'eval_rescaled' must be true or false"),
    ("alpha", "1.0", r"'alpha' must be a number, got '1.0'"),
    ("alpha", True, r"'alpha' must be a number, got True"),
    ("epochs", 2.0, r"'epochs' must be an integer, got 2.0"),
    ("epochs", "20", r"'epochs' must be an integer, got '20'"),
    ("seed", False, r"'seed' must be an integer, got False"),
    ("method", 3, r"'method' must be a string, got 3"),
    ("noise_stds", 0.1, r"'noise_stds' must be a list .*got 0.1"),
    ("mix_layers", 0, r"'mix_layers' must be a list .*got 0"),
    ("fgsm_eps", ["a"], r"'fgsm_eps' must be a list of floats"),
    ("milestones", [1.5], r"'milestones' must be a list of ints"),
    ("dataset_params", 3, r"'dataset_params' must be a table"),
]


@pytest.mark.parametrize("key, value, match", _WRONG_TYPES)
def test_wrong_typed_setting_is_named(key, value, match):
    with pytest.raises(TypeError, match=match):
        RunConfig.from_dict({key: value})


@pytest.mark.parametrize("key, value, match", _WRONG_TYPES[:3] + _WRONG_TYPES[9:11])
def test_wrong_typed_toml_value_is_refused_before_training_naming_file_and_setting(tmp_path, key, value, match):
    from vicinal.lab.cli import main

    toml_value = json.dumps(value) if not isinstance(value, bool) else str(value).lower()
    sweep = tmp_path / "s.toml"
    sweep.write_text(f"seeds = 1\n[base]\ndataset = 'spirals'\nepochs = 1\n{key} = {toml_value}\n")
    store = tmp_path / "r.sqlite"
    assert main(["sweep", str(sweep), "--store", str(store)]) == 2
    assert not store.exists()  # nothing ran, nothing was created


def test_wrong_type_message_names_the_sweep_file(tmp_path, capsys):
    from vicinal.lab.cli import main

    sweep = tmp_path / "s.toml"
    sweep.write_text("seeds = 1\n[base]\ntruncate = 'yes'\n")
    assert main(["sweep", str(sweep), "--store", str(tmp_path / "r.sqlite")]) == 2
    err = capsys.readouterr().err
    assert "s.toml: setting 'truncate' must be true or false, got 'yes'" in err


@pytest.mark.parametrize("wrong, right", [("methd", "method"), ("epoch", "epochs"), ("alhpa", "alpha"),
                                          ("n_neighbours", "n_neighbors")])
def test_misspelt_setting_gets_did_you_mean(wrong, right):
    with pytest.raises(ValueError, match=rf"'{wrong}' \(did you mean '{right}'"):
        RunConfig.from_dict({wrong: 1})


@pytest.mark.parametrize("key, wrong, right", [("method", "local_mixpu", "local_mixup"), ("dataset", "spiral", "spirals"),
                                               ("model", "lenet5", "lenet"), ("optimizer", "adamw", "adam"),
                                               ("graph", "treshold", "threshold")])
def test_misspelt_name_gets_did_you_mean(key, wrong, right):
    with pytest.raises(ValueError, match=rf"did you mean '{right}'"):
        RunConfig.from_dict({key: wrong})


def test_misspelt_dataset_parameter_gets_did_you_mean():
    with pytest.raises(ValueError, match=r"no parameter\(s\) 'nosie' \(did you mean 'noise'\?\)"):
        RunConfig(dataset_params={"nosie": 0.5})


def test_misspelt_override_key_and_reproduction_get_did_you_mean():
    with pytest.raises(ValueError, match=r"unknown key 'epoch' \(did you mean 'epochs'"):
        spec_from_overrides(["seeds=1", "epoch=3"])
    from vicinal.lab.reproduce import run_reproduction

    with pytest.raises(ValueError, match=r"did you mean 'spirals-eps'"):
        run_reproduction("spirals-esp", out="unused")


def test_sweep_set_takes_run_settings_like_compare():
    spec = spec_from_overrides(["seeds=2", "epochs=20", "model_params.widths=[8]", "dataset_params.noise=0.3"])
    assert spec.base == {"epochs": 20, "model_params": {"widths": [8]}, "dataset_params": {"noise": 0.3}}
    # the same items, given to compare's parser, give the same settings
    assert apply_settings({}, ["epochs=20", "model_params.widths=[8]", "dataset_params.noise=0.3"]) == spec.base


@pytest.mark.parametrize("text", ["/data/cifar", "~/data", "./rel/dir", "C:\\data", "my data", "data-2.0"])
def test_set_accepts_bare_paths_and_text(text):
    assert apply_settings({}, [f"dataset_params.root={text}"]) == {"dataset_params": {"root": text}}
    assert spec_from_overrides([f"dataset_params.root={text}", "seeds=1"]).base["dataset_params"]["root"] == text


def test_missing_dataset_parameter_is_refused_at_config_time_naming_it():
    with pytest.raises(ValueError, match=r"dataset 'cifar10' needs dataset_params\.root.*--set dataset_params\.root="):
        RunConfig(dataset="cifar10")


@pytest.mark.parametrize("k, batch", [(64, 32), (16, 16), (9, 17)])
def test_kmixup_block_larger_than_half_the_batch_is_refused(k, batch):
    with pytest.raises(ValueError, match=rf"k={k} needs batches of at least 2k={2 * k}.*batch_size={batch}"):
        RunConfig(method="kmixup", k=k, batch_size=batch)
    RunConfig(method="mixup", k=k, batch_size=batch)  # k does not apply to other methods


# --------------------------------------------------------------------------- one run, one hash


@pytest.mark.parametrize("a, b", [({"alpha": 1}, {"alpha": 1.0}), ({"lr": 1}, {"lr": 1.0}),
                                  ({"noise_stds": [1]}, {"noise_stds": [1.0]}),
                                  ({"dataset_params": {"noise": 1}}, {"dataset_params": {"noise": 1.0}})])
def test_number_spellings_hash_to_one_run(a, b):
    assert config_key(canonical_config(a)) == config_key(canonical_config(b))
    assert canonical_config(a) == canonical_config(b)
    assert type(canonical_config(a)[next(iter(a))]) is type(canonical_config(b)[next(iter(b))])


def _fake_run(config):
    return {"test_error": 0.5, "seen": config["alpha"]}


def test_alpha_one_then_one_point_zero_trains_once(tmp_path):
    store = tmp_path / "r.sqlite"
    first = run_sweep([dict(RunConfig(alpha=1).to_dict(), epochs=1)], _fake_run, store=store, progress=False,
                      canonical=canonical_config)
    again = run_sweep([dict(RunConfig(alpha=1.0).to_dict(), epochs=1)], _fake_run, store=store, progress=False,
                      canonical=canonical_config)
    assert (first.completed, again.completed, again.skipped) == (1, 0, 1)


def test_rows_stored_before_canonical_numbers_still_count_as_done(tmp_path):
    # A row written by an older vicinal, whose config kept alpha as the int 1 (its own hash).
    old = dict(RunConfig().to_dict(), alpha=1, epochs=1)
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.put(old, {"test_error": 0.5}, wall_s=0.0, started_at="t", finished_at="t")
    summary = run_sweep([dict(RunConfig().to_dict(), epochs=1)], _fake_run, store=tmp_path / "r.sqlite",
                        progress=False, canonical=canonical_config)
    assert (summary.completed, summary.skipped) == (0, 1)


# --------------------------------------------------------------------------- diverged runs are results

from vicinal.lab.ensemble import run_batch  # noqa: E402
from vicinal.lab.report import paired_differences, summarize  # noqa: E402
from vicinal.lab.trainer import run_checkpointed, train  # noqa: E402

_TINY = dict(dataset="spirals", dataset_params={"n_per_class": 60}, model_params={"widths": [16]}, epochs=3,
             batch_size=16, optimizer="sgd", eval_every=1)


def _same(a, b):
    """Equal metric dicts, NaN equal to NaN and floats to rounding (the batched trainer's contract)."""
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, list):
            assert len(x) == len(y), key
            for u, w in zip(x, y):
                assert (math.isnan(u) and math.isnan(w)) or u == pytest.approx(w, rel=1e-5, abs=1e-6), key
        elif isinstance(x, float):
            assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-5, abs=1e-6), key
        else:
            assert x == y, key


def test_diverged_run_is_a_result_not_an_error():
    result = train(dict(_TINY, lr=1e4))
    assert result["diverged"] is True and result["diverged_epoch"] == len(result["train_loss"]) <= 3
    assert not math.isfinite(result["train_loss"][-1]) and all(map(math.isfinite, result["train_loss"][:-1]))
    assert "test_error" not in result  # no NaN metric to average


def test_one_diverging_member_keeps_the_healthy_members_rows():
    configs = [dict(_TINY, method="mixup", lr=1e4), dict(_TINY, method="mixup", lr=0.05),
               dict(_TINY, method="local_mixup", eps=1.0, lr=0.05, seed=1), dict(_TINY, lr=0.05, seed=2)]
    batched = run_batch(configs)
    assert batched[0]["diverged"] is True
    assert all("diverged" not in r and math.isfinite(r["test_error"]) for r in batched[1:])
    for config, row in zip(configs, batched):  # every member, the diverged one included, equals its single run
        _same(row, train(config))


def test_sweep_stores_a_diverged_run_and_does_not_retrain_it(tmp_path):
    from vicinal.lab.ensemble import batch_group_key

    configs = [canonical_config(dict(_TINY, lr=lr)) for lr in (1e4, 0.05)]
    kwargs = dict(batch_fn=run_batch, group_key=batch_group_key, store=tmp_path / "r.sqlite", progress=False)
    first = run_sweep(configs, None, **kwargs)
    again = run_sweep(configs, None, **kwargs)
    assert (first.completed, len(first.failures), again.completed, again.skipped) == (2, 0, 0, 2)
    with ResultStore(tmp_path / "r.sqlite", read_only=True) as store:
        rows = store.rows()
    table = summarize(rows, by=["lr"], metrics=["test_error"])
    assert table.groups == ((0.05,),) and "1 diverged run(s) left out: erm lr=10000.0" in table.title
    diffs = paired_differences(rows + [dict(config=dict(rows[1].config, method="mixup"), metrics={"test_error": 0.1})],
                               baseline="erm", metrics=["test_error"])
    assert "1 diverged run(s) left out" in diffs.title
    with pytest.raises(ValueError, match=r"all 1 runs diverged.*Lower the learning rate"):
        summarize([r for r in rows if r.metrics.get("diverged")], by=["lr"], metrics=["test_error"])


# --------------------------------------------------------------------------- damaged checkpoints


@pytest.mark.parametrize("content", [b"", b"\x80\x04 truncated pickle", b"PK\x03\x04 not a torch zip"])
def test_damaged_checkpoint_is_moved_aside_and_the_run_restarts(tmp_path, caplog, content):
    config = canonical_config(dict(_TINY, lr=0.05))
    path = tmp_path / f"{config_key(config)}.pt"
    path.write_bytes(content)
    with caplog.at_level("WARNING", logger="vicinal.lab.trainer"):
        result = run_checkpointed(config, checkpoint_dir=str(tmp_path))
    _same(result, train(config))  # from scratch: the numbers of an uninterrupted run
    assert (tmp_path / f"{path.name}.damaged").read_bytes() == content
    assert not path.exists()
    assert any(path.name in r.getMessage() and "damaged" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- read-only stores


def _filled_store(path):
    with ResultStore(path) as store:
        store.put(dict(RunConfig().to_dict(), seed=0), {"test_error": 0.25}, wall_s=1.0, started_at="a", finished_at="b")
    return path


def test_read_only_store_opens_without_changing_the_store(tmp_path):
    path = _filled_store(tmp_path / "store" / "r.sqlite")
    before = path.read_bytes()
    with ResultStore(path, read_only=True) as store:
        assert len(store) == 1 and store.rows()[0].metrics == {"test_error": 0.25}
        with pytest.raises(ValueError, match="opened read-only"):
            store.put(dict(RunConfig().to_dict(), seed=1), {}, wall_s=0.0, started_at="a", finished_at="b")
    assert path.read_bytes() == before


def test_read_only_store_in_unwritable_directory_and_immutable_fallback(tmp_path, monkeypatch):
    import os
    import sqlite3

    path = _filled_store(tmp_path / "store" / "r.sqlite")
    os.chmod(path, 0o444)
    os.chmod(path.parent, 0o555)
    try:
        with ResultStore(path, read_only=True) as store:
            assert len(store) == 1
        # Root ignores permission bits, so also force the path a read-only mount takes: plain mode=ro fails.
        real = sqlite3.connect
        uris = []

        def connect(database, *args, **kwargs):
            uris.append(database)
            if "immutable=1" not in database:  # a WAL store whose -shm cannot be created
                raise sqlite3.OperationalError("unable to open database file")
            return real(database, *args, **kwargs)

        monkeypatch.setattr(sqlite3, "connect", connect)
        with ResultStore(path, read_only=True) as store:
            assert len(store) == 1
        assert any("mode=ro&immutable=1" in u for u in uris)
    finally:
        os.chmod(path.parent, 0o755)
        os.chmod(path, 0o644)


def test_read_only_open_refuses_what_is_not_a_store(tmp_path):
    with pytest.raises(FileNotFoundError, match="no result store"):
        ResultStore(tmp_path / "missing.sqlite", read_only=True)
    (tmp_path / "t.txt").write_text("hello")
    with pytest.raises(ValueError, match="t.txt"):
        ResultStore(tmp_path / "t.txt", read_only=True)


@pytest.mark.parametrize("params, match", [
    (dict(dataset_params={"noise": "abc"}), r"dataset_params\.noise must be a number, got 'abc'"),
    (dict(dataset_params={"n_per_class": 2.5}), r"dataset_params\.n_per_class must be an integer, got 2\.5"),
    (dict(dataset_params={"n_per_class": True}), r"dataset_params\.n_per_class must be an integer, got True"),
    (dict(model_params={"widths": 64}), r"model_params\.widths must be a list"),
    (dict(dataset="cifar10", dataset_params={"root": 3}), r"dataset_params\.root must be a path, got 3"),
    (dict(dataset="iris", dataset_params={"standardize": "no"}), r"dataset_params\.standardize must be true or false"),
])
def test_wrong_typed_dataset_or_model_parameter_is_refused_at_config_time(params, match):
    with pytest.raises(TypeError, match=match):
        RunConfig.from_dict(params)
