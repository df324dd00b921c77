"""Training means, the eq. (5) data transform and the eq. (22) rescaled predictor (Carratino et al. 2020)."""

import io
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import betainc
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vicinal.moments import theta_bar
from vicinal.rescale import RescaledPredictor, TrainingStats, fit_stats, modified_data


def _classification_data(seed=0, n=37, d=4, c=3):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g) + 0.5, torch.randint(0, c, (n,), generator=g)


# ----------------------------------------------------------------------------- fit_stats

@pytest.mark.parametrize("batch_size", [1, 5, 37, 100])
def test_fit_stats_is_the_same_for_every_container(batch_size):
    x, y = _classification_data()
    expected_x, expected_y = x.double().mean(0), nn.functional.one_hot(y, 3).double().mean(0)
    containers = [
        (x, y),
        TensorDataset(x, y),
        DataLoader(TensorDataset(x, y), batch_size=batch_size),
        ((x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)),
    ]
    for data in containers:
        stats = fit_stats(data, num_classes=3)
        assert stats.count == 37
        torch.testing.assert_close(stats.x_mean, expected_x, rtol=0, atol=1e-12)
        torch.testing.assert_close(stats.y_mean, expected_y, rtol=0, atol=1e-12)
        assert stats.x_mean.dtype == torch.float64


def test_fit_stats_accepts_soft_and_regression_targets():
    x, y = _classification_data()
    soft = torch.softmax(torch.randn(37, 3, generator=torch.Generator().manual_seed(1)), 1)
    torch.testing.assert_close(fit_stats((x, soft)).y_mean, soft.double().mean(0))
    values = x[:, 0] * 3
    stats = fit_stats((x, values))
    assert stats.y_mean.shape == () and float(stats.y_mean) == pytest.approx(float(values.double().mean()))


def test_fit_stats_accumulates_in_float64():
    # float32 data with a large offset, fed in many small batches: a float32 running sum would drift.
    g = torch.Generator().manual_seed(2)
    x = (1e4 + torch.rand(20_000, 1, generator=g, dtype=torch.float64)).float()
    y = torch.zeros(20_000)
    stats = fit_stats(DataLoader(TensorDataset(x, y), batch_size=7))
    assert float(stats.x_mean) == pytest.approx(float(x.double().mean()), abs=1e-9)


def test_fit_stats_rejects_bad_data():
    x, y = _classification_data()
    with pytest.raises(ValueError, match="no samples"):
        fit_stats(DataLoader(TensorDataset(x[:0], y[:0]), batch_size=4), num_classes=3)
    with pytest.raises(ValueError, match="no samples"):
        fit_stats([])
    with pytest.raises(ValueError, match="need num_classes"):
        fit_stats((x, y))
    with pytest.raises(ValueError, match=r"label 2 is outside \[0, 2\)"):
        fit_stats((x, y), num_classes=2)
    with pytest.raises(ValueError, match=r"batch 1 has inputs \(2,\)"):
        fit_stats([(x, y), (x[:, :2], y)], num_classes=3)
    with pytest.raises(TypeError, match=r"batch 0 must be an \(x, y\) pair, got tuple of length 3"):
        fit_stats([(x, y, y)], num_classes=3)
    with pytest.raises(TypeError, match="data must be an"):
        fit_stats(3.5)


# ----------------------------------------------------------------------------- modified_data (eq. 5)

@settings(max_examples=30, deadline=None)
@given(st.floats(min_value=1e-3, max_value=1e3), st.integers(0, 1000))
def test_modified_data_keeps_the_means_and_shrinks_the_spread(alpha, seed):
    x, y = _classification_data(seed)
    stats = fit_stats((x, y), num_classes=3)
    x_t, y_t = modified_data(x.double(), y, alpha=alpha, stats=stats)
    shrink = theta_bar(alpha)
    torch.testing.assert_close(x_t.mean(0), stats.x_mean)
    torch.testing.assert_close(y_t.mean(0), stats.y_mean)
    torch.testing.assert_close(x_t - stats.x_mean, shrink * (x.double() - stats.x_mean))


def test_modified_targets_are_label_smoothing_towards_the_class_frequencies():
    # Sec. 5: y~ = (1 - eps) y + eps u with eps = 1 - theta_bar and u = y_bar.
    x, y = _classification_data()
    stats = fit_stats((x, y), num_classes=3)
    _, y_t = modified_data(x, y, alpha=0.4, stats=stats)
    eps = 1 - theta_bar(0.4)
    expected = (1 - eps) * nn.functional.one_hot(y, 3).float() + eps * stats.y_mean.float()
    torch.testing.assert_close(y_t, expected)
    torch.testing.assert_close(y_t.sum(1), torch.ones(37))


def test_modified_data_rejects_mismatched_shapes():
    x, y = _classification_data()
    stats = fit_stats((x, y), num_classes=3)
    with pytest.raises(ValueError, match=r"per-sample shape \(2,\) but stats.x_mean has shape \(4,\)"):
        modified_data(x[:, :2], y, alpha=1.0, stats=stats)
    with pytest.raises(ValueError, match=r"per-sample shape \(5,\) but stats.y_mean has shape \(3,\)"):
        modified_data(x, torch.rand(37, 5), alpha=1.0, stats=stats)
    with pytest.raises(TypeError, match="stats must be the TrainingStats"):
        modified_data(x, y, alpha=1.0, stats=(x.mean(0), y))


# ----------------------------------------------------------------------------- RescaledPredictor (eq. 22)

def _fitted(seed=0):
    x, y = _classification_data(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    return model, x, fit_stats((x, y), num_classes=3)


def test_matches_the_papers_algorithm_1():
    model, x, stats = _fitted()
    shrink = 1.0 - betainc(0.7 + 1.0, 0.7, 0.5)
    x_bar, y_bar = stats.x_mean.float(), stats.y_mean.float()
    expected = y_bar * (1.0 - 1.0 / shrink) + model((1.0 - shrink) * x_bar + shrink * x) / shrink
    torch.testing.assert_close(RescaledPredictor(model, alpha=0.7, stats=stats)(x), expected)


def test_inverts_the_data_transform():
    # A model that maps every modified input exactly to its modified target is mapped back to the
    # original targets by eq. (22): pred(x_i) = y_i.
    x, y = _classification_data(n=40, d=5)
    targets = torch.randn(40, 2, dtype=torch.float64)
    stats = fit_stats((x.double(), targets))
    x_t, y_t = modified_data(x.double(), targets, alpha=2.0, stats=stats)
    design = torch.cat([x_t, torch.ones(40, 1, dtype=torch.float64)], 1)
    # An affine map with 6 parameters per output interpolates 5 points exactly.
    coef = torch.linalg.lstsq(design[:5], y_t[:5]).solution
    model = nn.Linear(5, 2).double()
    with torch.no_grad():
        model.weight.copy_(coef[:5].T)
        model.bias.copy_(coef[5])
    pred = RescaledPredictor(model, alpha=2.0, stats=stats)(x[:5].double())
    torch.testing.assert_close(pred, targets[:5])


def test_theta_bar_one_is_the_identity():
    model, x, stats = _fitted()
    torch.testing.assert_close(RescaledPredictor(model, theta_bar=1.0, stats=stats)(x), model(x))


def test_balanced_classes_give_temperature_scaling():
    model, x, stats = _fitted()
    balanced = TrainingStats(stats.x_mean, torch.full((3,), 1 / 3, dtype=torch.float64), stats.count)
    predictor = RescaledPredictor(model, alpha=1.0, stats=balanced)
    shifted = (0.75 * x + 0.25 * stats.x_mean.float())
    torch.testing.assert_close(torch.softmax(predictor(x), 1), torch.softmax(model(shifted) / 0.75, 1))


def test_homogeneous_model_on_centred_data_is_unchanged():
    # Sec. 5: with x_bar = y_bar = 0 and f(ux) = u f(x), pred_f = f.
    model = nn.Sequential(nn.Linear(4, 6, bias=False), nn.ReLU(), nn.Linear(6, 2, bias=False))
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(3))
    stats = TrainingStats(torch.zeros(4, dtype=torch.float64), torch.zeros(2, dtype=torch.float64), 10)
    torch.testing.assert_close(RescaledPredictor(model, alpha=0.3, stats=stats)(x), model(x))


def test_probability_space_stays_a_distribution():
    model, x, stats = _fitted()
    predictor = RescaledPredictor(model, alpha=1.0, stats=stats, space="probabilities")
    log_probs = predictor(x)
    assert torch.isfinite(log_probs).all()
    torch.testing.assert_close(log_probs.exp().sum(1), torch.ones(37))
    # Where no entry leaves the simplex it is exactly eq. (22) on the probabilities.
    raw = stats.y_mean.float() * (1 - 1 / 0.75) + torch.softmax(model(0.75 * x + 0.25 * stats.x_mean.float()), 1) / 0.75
    inside = (raw > 0).all(1)
    assert inside.any()
    torch.testing.assert_close(log_probs[inside].exp(), raw[inside])


def test_probability_space_clips_what_leaves_the_simplex():
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([20.0, -20.0]))  # p = (1, ~0): rescaling pushes class 1 below 0
    stats = TrainingStats(torch.zeros(2, dtype=torch.float64), torch.tensor([0.5, 0.5], dtype=torch.float64), 4)
    log_probs = RescaledPredictor(model, alpha=1.0, stats=stats, space="probabilities")(torch.zeros(3, 2))
    assert torch.isfinite(log_probs).all()
    torch.testing.assert_close(log_probs.exp(), torch.tensor([[1.0, 0.0]] * 3))


def test_buffers_follow_to_and_state_dict():
    model, x, stats = _fitted()
    predictor = RescaledPredictor(model, alpha=0.5, stats=stats)
    assert {"x_mean", "y_mean", "theta_bar"} <= set(dict(predictor.named_buffers()))
    buffer = io.BytesIO()
    torch.save(predictor.state_dict(), buffer)
    buffer.seek(0)
    other_model, _, other_stats = _fitted(seed=5)
    restored = RescaledPredictor(other_model, theta_bar=1.0, stats=other_stats)
    restored.load_state_dict(torch.load(buffer))
    torch.testing.assert_close(restored(x), predictor(x))
    assert float(restored.theta_bar) == pytest.approx(theta_bar(0.5))
    as_double = predictor.to(torch.float64)
    assert as_double.x_mean.dtype == torch.float64
    torch.testing.assert_close(as_double(x.double()).float(), restored(x), rtol=1e-5, atol=1e-5)


def test_rejects_bad_configuration():
    model, x, stats = _fitted()
    for alpha in (0.0, -2.0, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"alpha must be a finite number > 0, got"):
            RescaledPredictor(model, alpha=alpha, stats=stats)
    with pytest.raises(ValueError, match="exactly one of alpha"):
        RescaledPredictor(model, alpha=1.0, theta_bar=0.75, stats=stats)
    with pytest.raises(ValueError, match="exactly one of alpha"):
        RescaledPredictor(model, stats=stats)
    with pytest.raises(ValueError, match=r"theta_bar must lie in \[0.5, 1\].*got 0.3"):
        RescaledPredictor(model, theta_bar=0.3, stats=stats)
    with pytest.raises(ValueError, match="space must be one of 'logits', 'probabilities'; got 'probs'"):
        RescaledPredictor(model, alpha=1.0, stats=stats, space="probs")
    regression = TrainingStats(stats.x_mean, torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64), 37)
    with pytest.raises(ValueError, match="needs stats.y_mean to be class frequencies"):
        RescaledPredictor(model, alpha=1.0, stats=regression, space="probabilities")


def test_rejects_outputs_that_do_not_match_the_target_mean():
    model, x, _ = _fitted()
    x, y = _classification_data()
    wrong = fit_stats((x, y), num_classes=5)  # the model has 3 outputs
    predictor = RescaledPredictor(model, alpha=1.0, stats=wrong)
    with pytest.raises(ValueError, match=r"model outputs have per-sample shape \(3,\) but .* y_mean has shape \(5,\)"):
        predictor(x)
    with pytest.raises(ValueError, match=r"x has per-sample shape \(3,\) but .* x_mean has shape \(4,\)"):
        predictor(x[:, :3])
