"""run_metric_names (what a run will store) against what trained runs store, and the recipe check built on it.

Ground truth: the keys of trainer.train's result for tiny runs (classification with every evaluation
setting, regression, CIFAR-10 with CIFAR-10-C plain and rescaled).
"""

import numpy as np
import pytest
import torch

from vicinal.lab.config import RunConfig
from vicinal.lab.datasets import Dataset
from vicinal.lab.datasets.cifar_corrupted import CORRUPTIONS
from vicinal.lab.recipes import RECIPES_DIR, load_recipe
from vicinal.lab.reproduce import Context
from vicinal.lab.reproduce.recipe_run import run_recipe
from vicinal.lab.run_metrics import run_metric_names
from vicinal.lab.trainer import train

from cifar_files import write_clean_cifar10, write_corrupted


@pytest.mark.parametrize("settings", [
    dict(dataset="digits", model="mlp", method="mixup", noise_stds=[0.1, 1 / 255], fgsm_eps=[0.5 / 255, 2.0],
         eval_rescaled=True),
    dict(dataset="digits", model="mlp", method="erm", eval_rescaled=False, fgsm_eps=[0.01]),
])
def test_the_names_are_those_a_trained_run_stores(settings):
    config = RunConfig.from_dict({"epochs": 1, "batch_size": 64, "model_params": {"widths": [8]}, **settings})
    assert set(train(config)) == run_metric_names(config, classification=True)


def test_a_regression_run_stores_its_mse_and_no_class_metrics():
    x = torch.randn(48, 3, generator=torch.Generator().manual_seed(0))
    data = Dataset("npz", x[:40], x[:40, 0].clone(), x[40:], x[40:, 0].clone(), None)
    config = RunConfig.from_dict(dict(dataset="npz", dataset_params={"path": "unused.npz"}, model="mlp",
                                      model_params={"widths": [8]}, method="mixup", epochs=1, batch_size=8,
                                      noise_stds=[0.1]))
    assert set(train(config, dataset=data)) == run_metric_names(config, classification=False)


@pytest.mark.parametrize("rescaled", [True, False])
def test_the_corrupted_names_are_those_a_trained_run_stores(tmp_path, rescaled):
    rng = np.random.default_rng(0)
    write_clean_cifar10(tmp_path / "clean" / "cifar-10-batches-py", rng, n=4)
    write_corrupted(tmp_path / "c" / "CIFAR-10-C", rng, n=2, corruptions=CORRUPTIONS)
    config = RunConfig.from_dict(dict(dataset="cifar10", dataset_params={"root": str(tmp_path / "clean")},
                                      model="lenet", method="mixup", epochs=1, batch_size=8,
                                      eval_rescaled=rescaled, eval_corrupted=str(tmp_path / "c")))
    assert set(train(config)) == run_metric_names(config, classification=True)


@pytest.fixture
def cifar(tmp_path):
    rng = np.random.default_rng(1)
    write_clean_cifar10(tmp_path / "data" / "cifar-10-batches-py", rng, n=8)
    return tmp_path / "data"


@pytest.mark.parametrize("recipe, old, new, key", [
    ("kmixup-table6-cifar10-noise", '"noise_error@0.0313725"', '"noise_error@0.031"', "columns.'eps=8'"),
    ("carratino-fig4-6-cifar10-resnet34", 'eval_rescaled = true', 'eval_rescaled = false',
     "columns.'rescaled error'"),
    ("carratino-fig7-cifar10-lenet", 'histogram = "test_confidence_histogram"',
     'histogram = "test_confidence_histogramm"', "histogram"),
])
def test_a_recipe_reading_a_metric_its_runs_do_not_store_is_refused_before_training(cifar, tmp_path, recipe, old,
                                                                                    new, key):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    text = (RECIPES_DIR / f"{recipe}.toml").read_text()
    assert old in text
    (recipes / f"{recipe}.toml").write_text(text.replace(old, new))
    ctx = Context(name=recipe, quick=True, out=tmp_path / "docs")
    with pytest.raises(ValueError, match=rf"{recipe}\.toml: {key} reads metric .* do not store"):
        run_recipe(ctx, load_recipe(recipe, recipes), cifar)
    assert not ctx.store_path.exists()  # nothing trained


def test_a_diverged_run_is_named_as_diverged_not_as_a_missing_column(cifar, tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    text = (RECIPES_DIR / "carratino-fig7-cifar10-lenet.toml").read_text()
    assert "lr = 0.01\n" in text
    (recipes / "blowup.toml").write_text(text.replace("lr = 0.01\n", "lr = 1e30\n"))
    ctx = Context(name="blowup", quick=True, out=tmp_path / "docs")
    with pytest.raises(ValueError, match=r"the run of cell 'ERM', seed 0 diverged at epoch 1 .* Lower the lr"):
        run_recipe(ctx, load_recipe("blowup", recipes), cifar)
