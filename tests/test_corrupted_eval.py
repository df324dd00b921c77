"""CIFAR-10-C evaluation of a run (eval_corrupted; Carratino et al. 2020, Fig. 5-6), on tiny files in the distributed format.

Ground truth: each of the 95 (corruption, severity) sets loaded on its own through the ``cifar10_c``
registry entry, the returned model's metrics computed here with ``classification_metrics`` and
averaged here, over all sets and per severity.
"""

import shutil

import numpy as np
import pytest
import torch

from vicinal.lab.cli import main
from vicinal.lab.config import RunConfig
from vicinal.lab.datasets import load_dataset
from vicinal.lab.datasets.cifar_corrupted import CORRUPTIONS, corrupted_test_sets
from vicinal.lab.ensemble import fit_batched
from vicinal.lab.evaluate import classification_metrics
from vicinal.lab.store import ResultStore, config_key
from vicinal.lab.sweep import expand_grid, load_sweep
from vicinal.lab.trainer import train
from vicinal.rescale import RescaledPredictor, fit_stats

from cifar_files import write_clean_cifar10, write_corrupted

N_PER_SEVERITY = 20
METRICS = ("error", "nll", "ece")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Clean CIFAR-10 (40 train images) and CIFAR-10-C with all 19 corruptions, 20 images per severity."""
    root = tmp_path_factory.mktemp("cifar")
    rng = np.random.default_rng(0)
    write_clean_cifar10(root / "clean" / "cifar-10-batches-py", rng, n=8)
    write_corrupted(root / "c" / "CIFAR-10-C", rng, n=N_PER_SEVERITY, corruptions=CORRUPTIONS)
    return root


def config(data, **settings):
    values = dict(dataset="cifar10", dataset_params={"root": str(data / "clean")}, model="lenet", method="mixup",
                  epochs=2, batch_size=8, lr=0.05, eval_corrupted=str(data / "c"))
    values.update(settings)
    return RunConfig.from_dict(values)


def expected(model, data, run, prefix):
    """The stored numbers from their definition: every set through the registry, metrics and means here."""
    per_set = {}
    for corruption in CORRUPTIONS:
        for severity in range(1, 6):
            d = load_dataset("cifar10_c", root=data / "c", clean_root=data / "clean", corruption=corruption,
                             severity=severity, standardize=run.dataset_params.get("standardize", False))
            predictor = model
            if prefix:
                stats = fit_stats((d.x_train, d.y_train), num_classes=10)  # the clean train split, as the run's
                predictor = RescaledPredictor(model, alpha=run.alpha, stats=stats)
            with torch.no_grad():
                logits = predictor.eval()(d.x_test)
            per_set[corruption, severity] = classification_metrics(logits, d.y_test, n_bins=run.n_bins, prefix="")
    out = {}
    for metric in METRICS:
        out[f"{prefix}corrupted_test_{metric}"] = np.mean([m[metric] for m in per_set.values()])
        for s in range(1, 6):
            out[f"{prefix}corrupted_test_{metric}@s{s}"] = np.mean([per_set[c, s][metric] for c in CORRUPTIONS])
    return out


def corrupted_keys(results):
    return {key for key in results if "corrupted" in key}


@pytest.mark.parametrize("settings", [dict(dataset_params={"standardize": True}),
                                      dict(method="erm", eval_rescaled=False)])
def test_stored_averages_equal_each_set_evaluated_through_the_registry(data, settings):
    params = {"root": str(data / "clean"), **settings.pop("dataset_params", {})}
    run = config(data, dataset_params=params, **settings)
    results, model = train(run, return_model=True)
    want = expected(model, data, run, "")
    if run.eval_rescaled:
        want.update(expected(model, data, run, "rescaled_"))
    assert corrupted_keys(results) == set(want)
    assert len(want) == 18 * (2 if run.eval_rescaled else 1)  # 3 metrics x (all sets + 5 severities)
    for key, value in want.items():
        assert results[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    # The averages are over sets that differ: the five severities do not all give one number.
    assert len({round(results[f"corrupted_test_nll@s{s}"], 9) for s in range(1, 6)}) == 5
    assert next(model.parameters()).device.type == "cpu"  # the evaluation moved nothing for good


def test_batched_trainer_stores_the_single_runs_corrupted_metrics(data):
    runs = [config(data, seed=seed) for seed in (0, 1)]
    batched = fit_batched(runs)[1][1]  # the second member: its own slice of the stacked weights
    single = train(runs[1])
    assert corrupted_keys(batched) == corrupted_keys(single) and len(corrupted_keys(single)) == 36
    for key in corrupted_keys(single):
        assert batched[key] == pytest.approx(single[key], rel=1e-4, abs=1e-6), key


def test_a_missing_file_is_refused_before_anything_loads_or_trains(data, tmp_path, monkeypatch):
    shutil.copytree(data / "c", tmp_path / "c")
    (tmp_path / "c" / "CIFAR-10-C" / "fog.npy").unlink()
    (tmp_path / "c" / "CIFAR-10-C" / "snow.npy").unlink()
    run = config(data, eval_corrupted=str(tmp_path / "c"))

    def trains(*args, **kwargs):
        raise AssertionError("the run started loading its data before checking eval_corrupted")

    monkeypatch.setattr("vicinal.lab.trainer.load_dataset", trains)
    monkeypatch.setattr("vicinal.lab.ensemble.train._load_datasets", trains)
    message = r"cifar10_c: missing \['fog.npy', 'snow.npy'\] in .*CIFAR-10-C.*zenodo.org/record/2535967"
    with pytest.raises(FileNotFoundError, match=message):
        train(run)
    with pytest.raises(FileNotFoundError, match=message):
        fit_batched([run])
    with pytest.raises(FileNotFoundError, match=r"data directory .*nowhere' does not exist.*CIFAR-10-C"):
        train(config(data, eval_corrupted=str(tmp_path / "nowhere")))


def test_the_setting_is_refused_for_other_datasets_and_blank_paths():
    with pytest.raises(ValueError, match=r"needs dataset 'cifar10' \(with CIFAR-10-C\) or 'cifar100'.*got dataset "
                                         r"'moons'"):
        RunConfig(dataset="moons", eval_corrupted="/data/CIFAR-10-C")
    with pytest.raises(ValueError, match=r"got dataset 'cifar10_c'"):
        RunConfig(dataset="cifar10_c", dataset_params=dict(root="/d", clean_root="/d", corruption="fog", severity=1),
                  eval_corrupted="/data/CIFAR-10-C")
    with pytest.raises(ValueError, match=r"eval_corrupted must be a directory or empty, got '  '"):
        RunConfig(dataset="cifar10", dataset_params={"root": "/d"}, eval_corrupted="  ")
    with pytest.raises(TypeError, match=r"setting 'eval_corrupted' must be a string, got 1"):
        RunConfig(dataset="cifar10", dataset_params={"root": "/d"}, eval_corrupted=1)


def test_a_cifar100_c_folder_given_to_a_cifar10_run_is_named(tmp_path):
    write_corrupted(tmp_path / "CIFAR-10-C", np.random.default_rng(3), corruptions=CORRUPTIONS, num_classes=100)
    labels = np.load(tmp_path / "CIFAR-10-C" / "labels.npy")
    labels[0] = 57  # a CIFAR-100 label, whatever the draw
    np.save(tmp_path / "CIFAR-10-C" / "labels.npy", labels)
    with pytest.raises(ValueError, match=r"labels.npy' holds labels in \[\d+, 57\], but cifar10 has 10 classes"):
        next(corrupted_test_sets("cifar10", tmp_path, clean_root=tmp_path, standardize=False))
    with pytest.raises(ValueError, match=r"dataset must be one of \['cifar10', 'cifar100'\].*got 'mnist'"):
        next(corrupted_test_sets("mnist", tmp_path, clean_root=tmp_path, standardize=False))


def test_runs_without_the_setting_keep_their_hash():
    run = RunConfig(dataset="cifar10", dataset_params={"root": "/data/cifar"}, model="lenet", method="mixup",
                    alpha=1.0, epochs=200)
    assert "eval_corrupted" not in run.to_dict()
    # The key this config had before eval_corrupted existed (commit 95c5684).
    assert config_key(run.to_dict()) == "41f73d2864377d93ca8153d579080367995e3b784a750dea271c13a4956b1149"
    with_field = RunConfig.from_dict({**run.to_dict(), "eval_corrupted": "/data/CIFAR-10-C"})
    assert with_field.to_dict()["eval_corrupted"] == "/data/CIFAR-10-C"
    assert config_key(with_field.to_dict()) != config_key(run.to_dict())
    assert RunConfig.from_dict(with_field.to_dict()) == with_field


def test_a_sweep_file_with_the_setting_stores_the_corrupted_metrics(data, tmp_path):
    sweep = tmp_path / "c.toml"
    sweep.write_text(f'''seeds = 1
[base]
dataset = "cifar10"
dataset_params = {{ root = "{data / 'clean'}" }}
model = "lenet"
epochs = 1
batch_size = 8
eval_corrupted = "{data / 'c'}"
[grid]
method = ["mixup"]
''')
    configs = expand_grid(load_sweep(sweep))
    assert [c["eval_corrupted"] for c in configs] == [str(data / "c")]
    overridden = expand_grid(load_sweep(sweep, [f"eval_corrupted={tmp_path}"]))
    assert {c["eval_corrupted"] for c in overridden} == {str(tmp_path)}
    store = tmp_path / "s.sqlite"
    assert main(["sweep", str(sweep), "--store", str(store), "--workers", "1"]) == 0
    rows = ResultStore(store, read_only=True).rows()
    assert len(rows) == 1 and rows[0].config["eval_corrupted"] == str(data / "c")
    assert 0 <= rows[0].metrics["corrupted_test_error@s5"] <= 1 and rows[0].metrics["rescaled_corrupted_test_nll"] > 0
