"""Property-based invariants of every mixer: convex combinations, soft targets on the simplex,
inputs untouched, determinism under a seed."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import vicinal as v


def make_mixer(kind, alpha, k, eps, n_neighbors, lam_mode, truncate, classes):
    common = dict(alpha=alpha, num_classes=classes, lam_mode=lam_mode, truncate=truncate)
    if kind == "mixup":
        return v.Mixup(**common)
    if kind == "kmixup":
        return v.KMixup(k=k, **common)
    if kind == "local_threshold":
        return v.LocalMixup(graph=v.Threshold(eps=eps), **common)
    if kind == "local_knn_weighted":
        return v.LocalMixup(graph=v.KNN(n_neighbors=n_neighbors), sampling="weighted", **common)
    if kind == "local_exp_weighted":
        return v.LocalMixup(graph=v.Exponential(decay=eps), sampling="weighted", **common)
    return v.Mixer(pairing=v.OptimalTransportPairing(k), graph=v.Threshold(eps=eps), **common)


mixer_args = dict(
    kind=st.sampled_from(["mixup", "kmixup", "local_threshold", "local_knn_weighted", "local_exp_weighted", "ot_local"]),
    alpha=st.floats(0.01, 50.0),
    k=st.integers(1, 4),
    eps=st.floats(0.0, 5.0),
    n_neighbors=st.integers(0, 10),
    lam_mode=st.sampled_from(["batch", "sample"]),
    truncate=st.booleans(),
    n=st.integers(8, 24),
    seed=st.integers(0, 2**31 - 1),
)


@settings(max_examples=60, deadline=None)
@given(**mixer_args)
def test_mixed_batch_is_convex_and_soft_targets_sum_to_one(kind, alpha, k, eps, n_neighbors, lam_mode, truncate, n, seed):
    classes = 3
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, classes, (n,), generator=g)
    x_before = x.clone()
    mixer = make_mixer(kind, alpha, k, eps, n_neighbors, lam_mode, truncate, classes)
    batch = mixer(x, y, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(x, x_before), "inputs must never be modified in place"
    assert batch.inputs.shape == x.shape and batch.targets.shape == (n, classes)
    assert bool(((batch.lam >= 0) & (batch.lam <= 1)).all())
    if truncate:
        assert bool((batch.lam >= 0.5).all())
    if lam_mode == "batch":
        assert bool((batch.lam == batch.lam[0]).all())
    lam = batch.lam[:, None, None]
    torch.testing.assert_close(batch.inputs, lam * x + (1 - lam) * x[batch.partner])
    # each coordinate lies between the two endpoints
    lo, hi = torch.minimum(x, x[batch.partner]), torch.maximum(x, x[batch.partner])
    assert bool(((batch.inputs >= lo - 1e-12) & (batch.inputs <= hi + 1e-12)).all())
    torch.testing.assert_close(batch.targets.sum(1), torch.ones(n, dtype=x.dtype))
    assert bool((batch.targets >= 0).all())
    if batch.weights is not None:
        assert batch.weights.shape == (n,)
        assert bool(((batch.weights >= 0) & (batch.weights <= 1)).all())


@pytest.mark.filterwarnings("ignore::vicinal.NoPairsKeptWarning")  # arbitrary eps: an empty graph is expected
@settings(max_examples=25, deadline=None)
@given(**mixer_args)
def test_same_seed_same_batch(kind, alpha, k, eps, n_neighbors, lam_mode, truncate, n, seed):
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed))
    y = torch.randint(0, 3, (n,), generator=torch.Generator().manual_seed(seed + 1))
    mixer = make_mixer(kind, alpha, k, eps, n_neighbors, lam_mode, truncate, 3)
    a = mixer(x, y, generator=torch.Generator().manual_seed(seed))
    b = mixer(x, y, generator=torch.Generator().manual_seed(seed))
    for name in ("inputs", "targets", "lam", "partner"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert (a.weights is None and b.weights is None) or torch.equal(a.weights, b.weights)


@pytest.mark.parametrize("labels", [
    torch.tensor([[0.2, 0.8], [1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]),       # soft targets
    torch.tensor([[0, 1], [1, 0], [1, 0], [0, 1]]),                       # integer one-hot
])
def test_dense_labels_mix_linearly(labels):
    x = torch.randn(4, 3)
    batch = v.Mixup(alpha=1.0)(x, labels, generator=torch.Generator().manual_seed(0))
    lam = batch.lam[:, None]
    torch.testing.assert_close(batch.targets, lam * labels.float() + (1 - lam) * labels.float()[batch.partner])


@pytest.mark.parametrize("shape", [(6,), (6, 3)])
def test_regression_targets_mix_linearly(shape):
    x = torch.randn(6, 2)
    y = torch.randn(shape)
    batch = v.KMixup(alpha=1.0, k=3)(x, y, generator=torch.Generator().manual_seed(0))
    lam = batch.lam.reshape((-1,) + (1,) * (y.ndim - 1))
    torch.testing.assert_close(batch.targets, lam * y + (1 - lam) * y[batch.partner])
    out = torch.randn(shape, requires_grad=True)
    loss = v.mixup_loss(out, batch, loss="squared_error")
    torch.testing.assert_close(loss, torch.nn.functional.mse_loss(out, batch.targets))


def test_mix_applies_same_plan_to_hidden_features():
    x, y = torch.randn(8, 5), torch.randint(0, 2, (8,))
    batch = v.KMixup(alpha=1.0, k=2, num_classes=2)(x, y, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(batch.mix(x), batch.inputs)
    h = torch.randn(8, 7)
    lam = batch.lam[:, None]
    torch.testing.assert_close(batch.mix(h), lam * h + (1 - lam) * h[batch.partner])


def test_lambda_distribution_matches_beta():
    from scipy import stats
    lam = v.sample_lam(20000, 0.3, lam_mode="sample", generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert stats.kstest(lam.numpy(), stats.beta(0.3, 0.3).cdf).pvalue > 1e-3


@pytest.mark.parametrize("alpha", [1e-3, 0.05, 1.0, 1e3])
def test_lambda_stays_finite_for_extreme_alpha(alpha):
    lam = v.sample_lam(5000, alpha, lam_mode="sample", generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert bool(torch.isfinite(lam).all()) and bool(((lam >= 0) & (lam <= 1)).all())
    torch.testing.assert_close(lam.mean(), torch.tensor(0.5, dtype=torch.float64), atol=0.03, rtol=0)


def test_truncated_lambda_mean_is_theta_bar_of_alpha_one():
    lam = v.sample_lam(200000, 1.0, lam_mode="sample", truncate=True, generator=torch.Generator().manual_seed(0),
                       dtype=torch.float64)
    assert abs(float(lam.mean()) - 0.75) < 0.003  # Carratino et al.: theta_bar(1) = 3/4


@pytest.mark.parametrize("alpha", [1e-3, 0.05, 0.4, 2.0])
def test_lambda_quantile_keeps_relative_precision_in_both_tails(alpha):
    """lam_from_uniforms inverts the Beta CDF: I_lam(a, a) = u near 0, and 1 - lam likewise near 1 (symmetry)."""
    from scipy import special
    u = torch.tensor([2.0 ** -40, 2.0 ** -20, 2.0 ** -7, 0.25, 0.5], dtype=torch.float64)  # 1 - u is exact
    low = v.lam.lam_from_uniforms(u, alpha)
    high = v.lam.lam_from_uniforms(1.0 - u, alpha)
    # alpha = 1e-3 puts the smaller quantiles below float64's normal range; scipy returns its smallest normal there.
    inside = low > 2.3e-308
    assert int(inside.sum()) >= 2
    np.testing.assert_allclose(special.betainc(alpha, alpha, low[inside].numpy()), u[inside].numpy(), rtol=1e-8)
    assert torch.equal(high[:-1], 1.0 - low[:-1])  # the upper tail mirrors the lower one (u = 1/2 maps to itself)
    truncated = v.lam.lam_from_uniforms(torch.cat([u, 1.0 - u]), alpha, truncate=True)
    torch.testing.assert_close(truncated, torch.cat([1.0 - low, 1.0 - low]), rtol=0, atol=0)


@pytest.mark.parametrize("alpha", [2.0, 20.0])  # small alpha is covered by the quantile test (float64 atoms at 1)
def test_lambda_distribution_matches_beta_for_large_alpha(alpha):
    from scipy import stats
    lam = v.sample_lam(20000, alpha, lam_mode="sample", generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert stats.kstest(lam.numpy(), stats.beta(alpha, alpha).cdf).pvalue > 1e-3
