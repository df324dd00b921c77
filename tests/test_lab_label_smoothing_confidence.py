"""Carratino et al. 2020, Fig. 7 in the lab: RunConfig ``label_smoothing`` (ERM, the mixers, both loops, the batched
trainer's fallback, the refusals, old hashes kept) and the confidence metrics (mean and histogram), each against a
computation written here from its definition."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from vicinal.lab.config import RunConfig, make_mixer
from vicinal.lab.datasets import Dataset, load_dataset
from vicinal.lab.ensemble import batch_group_key, fit_batched, run_batch
from vicinal.lab.evaluate import classification_metrics
from vicinal.lab.models import build_model
from vicinal.lab.store import config_key
from vicinal.lab.trainer import _Step, train

SMALL = dict(dataset="moons", model="mlp", model_params={"widths": [8]}, epochs=2, batch_size=32, lr=0.05,
             eval_rescaled=False)


def _smoothed_cross_entropy(logits: np.ndarray, labels: np.ndarray, s: float) -> float:
    """Szegedy et al. 2016, Sec. 7, by hand: mean over samples of -sum_c ((1 - s) [c = y] + s / C) log softmax_c."""
    n, c = logits.shape
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    total = 0.0
    for i in range(n):
        for k in range(c):
            target = (1 - s) * (k == labels[i]) + s / c
            total -= target * log_p[i, k]
    return total / n


def _step_and_batch(method: str, smoothing: float):
    data = load_dataset("digits", seed=0)
    config = RunConfig.from_dict(dict(dataset="digits", model="mlp", model_params={"widths": [16]}, method=method,
                                      label_smoothing=smoothing))
    model = build_model("mlp", input_shape=data.input_shape, num_outputs=10, seed=3, widths=[16])
    return _Step(config, model, data, None), model, data.x_train[:24], data.y_train[:24]


def test_erm_with_label_smoothing_trains_the_smoothed_cross_entropy():
    step, model, x, y = _step_and_batch("erm", 0.1)
    loss = step(x, y, torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(x).double().numpy()
    assert loss.item() == pytest.approx(_smoothed_cross_entropy(logits, y.numpy(), 0.1), rel=1e-5)
    plain, _, _, _ = _step_and_batch("erm", 0.0)
    assert plain(x, y, torch.Generator()).item() == pytest.approx(_smoothed_cross_entropy(logits, y.numpy(), 0.0),
                                                                  rel=1e-5)
    assert plain(x, y, torch.Generator()).item() < loss.item()  # the smoothed targets cost more on the same logits


def test_mixup_with_label_smoothing_interpolates_smoothed_targets():
    """The mixer receives the setting, and the step's loss is the soft CE against lerp of smoothed one-hots."""
    step, model, x, y = _step_and_batch("mixup", 0.2)
    assert step.mixer.label_smoothing == 0.2
    loss = step(x, y, torch.Generator().manual_seed(5))
    # The same draws without smoothing give lambda and the partners; build the smoothed targets from them by hand.
    plain, _, _, _ = _step_and_batch("mixup", 0.0)
    batch = plain.mixer(x, y, generator=torch.Generator().manual_seed(5))
    lam, partner = batch.lam.double().numpy(), batch.partner.numpy()
    with torch.no_grad():
        logp = torch.log_softmax(model(batch.inputs).double(), 1).numpy()
    onehot = np.eye(10)[y.numpy()]
    smooth = 0.8 * onehot + 0.2 / 10
    targets = lam[:, None] * smooth + (1 - lam[:, None]) * smooth[partner]
    assert loss.item() == pytest.approx(float(-(targets * logp).sum(1).mean()), rel=1e-5)
    for method in ("local_mixup", "kmixup"):
        config = RunConfig.from_dict(dict(SMALL, method=method, k=4, label_smoothing=0.05))
        assert make_mixer(config, 2).label_smoothing == 0.05


def test_label_smoothing_reaches_both_loops_with_equal_numbers():
    config = dict(SMALL, dataset="digits", model_params={"widths": [16]}, batch_size=64, label_smoothing=0.1)
    host = train(config)
    device = train(dict(config, loop="device"))
    assert device["train_loss"] == pytest.approx(host["train_loss"], rel=1e-5)
    plain = train(dict(config, label_smoothing=0.0))
    # Same seeds and code path, so any difference is the smoothing (measured: 1.60 against 1.36 in epoch 2).
    assert host["train_loss"][-1] > plain["train_loss"][-1] + 1e-3


def test_batched_trainer_routes_label_smoothing_to_the_single_run_trainer(caplog):
    configs = [dict(SMALL, method="erm", seed=0, label_smoothing=0.1), dict(SMALL, method="mixup", seed=1),
               dict(SMALL, method="mixup", seed=2, label_smoothing=0.1)]
    assert batch_group_key(configs[0]).startswith("sequential:")
    assert batch_group_key(configs[1]).startswith("batched:")
    with pytest.raises(ValueError, match="label smoothing.*not batched"):
        fit_batched([configs[0]])
    with caplog.at_level(logging.WARNING, logger="vicinal.lab.ensemble"):
        results = run_batch(configs)
    assert "label smoothing (label_smoothing=0.1) is not batched" in caplog.text and "seeds 0, 2" in caplog.text
    for result, config in zip(results, configs):
        single = train(config)
        assert result.keys() == single.keys()
        for key in ("test_nll", "train_loss", "test_mean_confidence", "test_confidence_histogram"):
            assert result[key] == pytest.approx(single[key], abs=1e-5), key


@pytest.mark.parametrize("settings, message", [
    (dict(label_smoothing=1.0), r"label_smoothing must be in \[0, 1\), got 1.0"),
    (dict(label_smoothing=-0.1), r"label_smoothing must be in \[0, 1\), got -0.1"),
    (dict(label_smoothing=math.nan), r"label_smoothing must be in \[0, 1\), got nan"),
    (dict(label_smoothing=0.1, method="modified_data"), "no meaning for method 'modified_data': its targets are "
                                                          "already Carratino"),
    (dict(label_smoothing=0.1, method="approx_mixup"), "no meaning for method 'approx_mixup'"),
])
def test_label_smoothing_is_refused_where_it_has_no_meaning(settings, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict(dict(SMALL, **settings))


def test_label_smoothing_is_refused_for_regression_targets():
    rng = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=rng)
    data = Dataset("npz", x[:32], x[:32, 0].clone(), x[32:], x[32:, 0].clone(), None)
    with pytest.raises(ValueError, match="smooths class targets, but dataset 'npz' is a regression set"):
        train(dict(SMALL, dataset="npz", dataset_params={"path": "unused.npz"}, label_smoothing=0.1), dataset=data)


def test_label_smoothing_keeps_the_hashes_of_runs_stored_before_it():
    # Hashes of runs stored before the setting existed (computed at c0122b6): they must not change.
    assert config_key(RunConfig().to_dict()) == "63b63ee802cc2af7834f47cf4fe7e8b9ed11efad3700f71aa3a988ad15515c5c"
    assert config_key(RunConfig(method="mixup", dataset="moons").to_dict()) == \
        "2a42b4f4fa3fa56fcad39c2aecedd6d410e363346f688596c4f88271f0bdd0d3"
    assert "label_smoothing" not in RunConfig().to_dict()
    smoothed = RunConfig(label_smoothing=0.1).to_dict()
    assert smoothed["label_smoothing"] == 0.1 and config_key(smoothed) != config_key(RunConfig().to_dict())
    assert RunConfig.from_dict(smoothed) == RunConfig(label_smoothing=0.1)


def test_confidence_metrics_match_a_brute_force_count():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(200, 4))
    logits[:3] = [[0.0, 0.0, 0.0, 0.0], [50.0, 0.0, 0.0, 0.0], [math.log(3.0), 0.0, -1e9, -1e9]]  # 0.25, ~1, 0.6
    labels = rng.integers(0, 4, size=200)
    got = classification_metrics(torch.tensor(logits), torch.tensor(labels), n_bins=10)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    confidence = probs.max(1)
    assert got["test_mean_confidence"] == pytest.approx(float(np.mean(confidence)), rel=1e-12)
    counts = [0] * 10
    for c in confidence:  # bins (b / 10, (b + 1) / 10], the first one closed at 0
        b = next(b for b in range(10) if c <= (b + 1) / 10 + 1e-15)
        counts[b] += 1
    assert got["test_confidence_histogram"] == counts and sum(counts) == 200
    assert counts[2] >= 1 and counts[5] >= 1 and counts[9] >= 1  # the edge cases 0.25, 0.6 and ~1 were counted
    assert all(isinstance(count, int) for count in got["test_confidence_histogram"])  # JSON-storable


def test_trained_runs_store_plain_and_rescaled_confidence():
    metrics = train(dict(SMALL, method="mixup", eval_rescaled=True, n_bins=20))
    for prefix in ("test_", "rescaled_test_"):
        assert 0.5 <= metrics[f"{prefix}mean_confidence"] <= 1.0  # two classes: the top probability is >= 1/2
        histogram = metrics[f"{prefix}confidence_histogram"]
        assert len(histogram) == 20 and sum(histogram) == len(load_dataset("moons", seed=0).y_test)
        assert sum(histogram[:10]) == 0


def test_library_mean_confidence_reads_probabilities_and_refuses_other_rows():
    from vicinal.metrics import mean_confidence

    probs = torch.tensor([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]], dtype=torch.float64)
    assert mean_confidence(probs) == pytest.approx((0.7 + 0.4) / 2, abs=1e-15)
    with pytest.raises(ValueError, match="predictions must be probabilities.*from_logits=True"):
        mean_confidence(torch.tensor([[2.0, -1.0]]))
    with pytest.raises(ValueError, match="NaN or Inf"):
        mean_confidence(torch.tensor([[math.nan, 1.0]]), from_logits=True)
