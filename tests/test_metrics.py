"""Error rate, NLL and calibration metrics (Carratino et al. 2020, Sec. 5; Guo et al. 2017)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchmetrics.classification import MulticlassCalibrationError

from vicinal.metrics import adaptive_ece, ece, error_rate, mce, nll, reliability_data


def _random_problem(seed, n=500, c=5, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, c, generator=g, dtype=torch.float64)
    labels = torch.randint(0, c, (n,), generator=g)
    return logits, labels


def test_error_rate_and_nll_on_a_hand_example():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.25, 0.25]])
    labels = torch.tensor([0, 1, 0])
    assert error_rate(probs, labels) == pytest.approx(1 / 3)
    assert nll(probs, labels) == pytest.approx(-(math.log(0.7) + math.log(0.3) + math.log(0.5)) / 3, rel=1e-6)


def test_logits_and_probabilities_agree():
    logits, labels = _random_problem(0)
    probs = torch.softmax(logits, dim=1)
    for metric in (error_rate, nll, ece, mce, adaptive_ece):
        assert metric(logits, labels, from_logits=True) == pytest.approx(metric(probs, labels), abs=1e-12)


def test_nll_from_logits_is_stable_for_huge_logits():
    logits = torch.tensor([[1000.0, 0.0], [0.0, 1000.0]])
    assert nll(logits, torch.tensor([0, 0]), from_logits=True) == pytest.approx(500.0)


def test_soft_targets_use_argmax_for_accuracy_and_cross_entropy_for_nll():
    logits, labels = _random_problem(1)
    probs = torch.softmax(logits, dim=1)
    soft = 0.5 * torch.nn.functional.one_hot(labels, 5).double() + 0.1  # argmax is the label
    assert error_rate(probs, soft) == error_rate(probs, labels)
    assert ece(probs, soft) == ece(probs, labels)
    assert nll(probs, soft) == pytest.approx(float(-(soft * probs.log()).sum(1).mean()), rel=1e-12)


def test_zero_probability_on_the_target_gives_infinite_nll():
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    assert nll(probs, torch.tensor([1, 0])) == math.inf
    assert math.isfinite(nll(probs, torch.tensor([[1.0, 0.0], [0.5, 0.5]])))  # 0 * log 0 = 0


def _ece_by_definition(conf, correct, n_bins):
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = (conf > lo) & (conf <= hi)
        if members.any():
            total += members.mean() * abs(correct[members].mean() - conf[members].mean())
    return total


@pytest.mark.parametrize("n_bins", [1, 3, 15, 40])
def test_ece_follows_the_binned_definition(n_bins):
    logits, labels = _random_problem(2)
    probs = torch.softmax(logits, dim=1)
    conf, predicted = probs.max(1)
    correct = (predicted == labels).double().numpy()
    assert ece(probs, labels, n_bins=n_bins) == pytest.approx(_ece_by_definition(conf.numpy(), correct, n_bins))


def test_one_bin_ece_is_the_gap_between_mean_confidence_and_accuracy():
    logits, labels = _random_problem(3)
    probs = torch.softmax(logits, dim=1)
    gap = abs(probs.max(1).values.mean().item() - (1 - error_rate(probs, labels)))
    assert ece(probs, labels, n_bins=1) == pytest.approx(gap)
    assert mce(probs, labels, n_bins=1) == pytest.approx(gap)
    assert adaptive_ece(probs, labels, n_bins=1) == pytest.approx(gap)


def test_perfectly_calibrated_predictions_have_zero_ece():
    # Every sample has confidence 3/4 and exactly 3 of each 4 are right.
    probs = torch.tensor([[0.75, 0.25]] * 8)
    labels = torch.tensor([0, 0, 0, 1] * 2)
    assert ece(probs, labels) == pytest.approx(0.0)
    assert mce(probs, labels) == pytest.approx(0.0)
    assert adaptive_ece(probs, labels, n_bins=2) == pytest.approx(0.0)


def test_bins_are_closed_on_the_right():
    # Confidence exactly 0.6 belongs to the bin (0.4, 0.6] when n_bins = 5.
    probs = torch.tensor([[0.6, 0.4], [0.65, 0.35]], dtype=torch.float64)
    data = reliability_data(probs, torch.tensor([0, 1]), n_bins=5)
    assert data.counts.tolist() == [0, 0, 1, 1, 0]
    assert data.accuracy[2] == 1.0 and data.accuracy[3] == 0.0
    assert np.isnan(data.confidence[0]) and np.isnan(data.accuracy[4])


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 30))
def test_reliability_data_invariants(seed, n_bins):
    logits, labels = _random_problem(seed, n=200)
    data = reliability_data(logits, labels, n_bins=n_bins, from_logits=True)
    assert data.counts.sum() == 200 and data.histogram.sum() == pytest.approx(1.0)
    filled = data.counts > 0
    # Mean confidence of a bin lies inside the bin.
    assert np.all(data.confidence[filled] > data.bin_edges[:-1][filled] - 1e-12)
    assert np.all(data.confidence[filled] <= data.bin_edges[1:][filled] + 1e-12)
    # ECE is the histogram-weighted mean gap, so it never exceeds the MCE.
    assert ece(logits, labels, n_bins=n_bins, from_logits=True) <= mce(logits, labels, n_bins=n_bins,
                                                                         from_logits=True) + 1e-12


@pytest.mark.parametrize("n_bins", [5, 15])
@pytest.mark.parametrize("norm, metric", [("l1", ece), ("max", mce)])
def test_matches_torchmetrics(norm, metric, n_bins):
    logits, labels = _random_problem(4, n=2000, c=10)
    probs = torch.softmax(logits, dim=1).float()
    reference = MulticlassCalibrationError(num_classes=10, n_bins=n_bins, norm=norm)(probs, labels).item()
    assert metric(probs, labels, n_bins=n_bins) == pytest.approx(reference, abs=1e-5)


def test_adaptive_bins_hold_equal_numbers_of_samples():
    # Confidences 0.55, 0.65, 0.75, 0.85 (twice each); with 4 equal-mass bins each bin holds one value.
    conf = torch.tensor([0.55, 0.65, 0.75, 0.85] * 2, dtype=torch.float64)
    probs = torch.stack([conf, 1 - conf], dim=1)
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 0, 0])
    # Per bin: (0.55, acc 0.5), (0.65, acc 0.5), (0.75, acc 1), (0.85, acc 1).
    expected = (0.05 + 0.15 + 0.25 + 0.15) / 4
    assert adaptive_ece(probs, labels, n_bins=4) == pytest.approx(expected)


@pytest.mark.parametrize("metric", [ece, mce, adaptive_ece, reliability_data])
@pytest.mark.parametrize("n_bins", [0, -3])
def test_rejects_too_few_bins(metric, n_bins):
    probs = torch.tensor([[0.5, 0.5]])
    with pytest.raises(ValueError, match=r"n_bins must be an integer >= 1, got"):
        metric(probs, torch.tensor([0]), n_bins=n_bins)


@pytest.mark.parametrize("metric", [error_rate, nll, ece, mce, adaptive_ece, reliability_data])
def test_rejects_probabilities_that_do_not_sum_to_one(metric):
    with pytest.raises(ValueError, match=r"rows summing to 1 .* off by 0\.2.*from_logits=True"):
        metric(torch.tensor([[0.5, 0.3], [0.5, 0.5]]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"non-negative"):
        metric(torch.tensor([[1.5, -0.5]]), torch.tensor([0]))


def test_rejects_bad_shapes_and_labels():
    probs = torch.tensor([[0.5, 0.5], [0.2, 0.8]])
    with pytest.raises(ValueError, match=r"shape \(N, C\)"):
        ece(torch.tensor([0.5, 0.5]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"class-index targets must lie in \[0, 2\)"):
        ece(probs, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"targets hold 3 labels but predictions hold 2"):
        ece(probs, torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r"dense targets of shape \(2, 2\)"):
        ece(probs, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"dense targets must be probability vectors .* off by 0\.5"):
        ece(probs, torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="NaN or Inf"):
        nll(torch.tensor([[math.nan, 0.0]]), torch.tensor([0]), from_logits=True)
