"""vicinal.metrics.Calibration: streaming updates equal the whole-set metrics on the concatenation."""

from __future__ import annotations

import pytest
import torch

import vicinal as v
from vicinal import metrics as M

WHOLE_SET = {"ece": M.ece, "mce": M.mce, "adaptive_ece": M.adaptive_ece, "nll": M.nll, "error": M.error_rate}


def _whole(predictions, targets, from_logits, n_bins):
    return {name: f(predictions, targets, from_logits=from_logits, **({} if name in ("nll", "error") else
                                                                      {"n_bins": n_bins}))
            for name, f in WHOLE_SET.items()}


def _random_set(seed, n=203, classes=4, soft=False, from_logits=True):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=g, dtype=torch.float64) * 2
    predictions = logits if from_logits else torch.softmax(logits, dim=1)
    if soft:
        targets = torch.softmax(torch.randn(n, classes, generator=g, dtype=torch.float64) * 3, dim=1)
    else:
        targets = torch.randint(0, classes, (n,), generator=g)
    return predictions, targets


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("n_bins", [1, 7, 15, 500])
def test_streaming_equals_whole_set_for_any_split(seed, soft, from_logits, n_bins):
    predictions, targets = _random_set(seed, soft=soft, from_logits=from_logits)
    expected = _whole(predictions, targets, from_logits, n_bins)
    n = predictions.shape[0]
    g = torch.Generator().manual_seed(100 + seed)
    cuts = sorted(set(torch.randint(1, n, (5,), generator=g).tolist()))
    for split in ([n], [1] * 3 + [n - 3], [b - a for a, b in zip([0] + cuts, cuts + [n])]):
        metric = M.Calibration(n_bins=n_bins, from_logits=from_logits)
        for p, t in zip(predictions.split(split), targets.split(split)):
            metric.update(p, t)
        assert metric.count == n
        got = metric.compute()
        for name, value in expected.items():
            assert got[name] == pytest.approx(value, rel=1e-12, abs=1e-14), (name, split)


def test_reset_starts_over_and_float32_bf16_inputs_work():
    predictions, targets = _random_set(0)
    metric = v.metrics.Calibration(from_logits=True)
    metric.update(torch.randn(10, 4), torch.zeros(10, dtype=torch.long))
    metric.reset()
    assert metric.count == 0
    metric.update(predictions.to(torch.bfloat16), targets)
    expected = _whole(predictions.to(torch.bfloat16), targets, True, 15)
    assert metric.compute() == pytest.approx(expected, rel=1e-12)


def test_averaging_per_batch_ece_is_not_the_set_ece():
    """Why the metric streams: the mean of per-batch ECEs differs from the ECE of the set (small batches)."""
    predictions, targets = _random_set(1, n=200)
    per_batch = [M.ece(p, t, from_logits=True) for p, t in zip(predictions.split(10), targets.split(10))]
    metric = M.Calibration(from_logits=True)
    for p, t in zip(predictions.split(10), targets.split(10)):
        metric.update(p, t)
    assert abs(sum(per_batch) / len(per_batch) - metric.compute()["ece"]) > 0.05


def test_bad_input_is_refused_clearly():
    metric = M.Calibration(from_logits=True)
    with pytest.raises(ValueError, match="before any update"):
        metric.compute()
    metric.update(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="5 classes but earlier updates had 3"):
        metric.update(torch.randn(4, 5), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="hold 3 labels but predictions hold 4"):
        metric.update(torch.randn(4, 3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"class-index targets must lie in \[0, 3\)"):
        metric.update(torch.randn(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="probabilities"):
        M.Calibration().update(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="n_bins"):
        M.Calibration(n_bins=0)
    with pytest.raises(TypeError, match="from_logits"):
        M.Calibration(from_logits="yes")
    assert metric.count == 4  # refused updates add nothing
