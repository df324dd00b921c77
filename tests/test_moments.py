"""Moments of Beta_[1/2,1](alpha, alpha) (Carratino et al. 2020, Theorem 1 and Lemma 1)."""

import math

import mpmath as mp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import betaln

from vicinal.alpha import expected_min_lam_squared
from vicinal.lam import sample_lam
from vicinal.moments import theta_bar, truncated_beta_variance

ALPHAS = [1e-3, 3e-3, 0.01, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0, 1e3]


def _reference_moments(alpha: float) -> tuple[float, float]:
    """Mean and variance of Beta_[1/2,1](alpha, alpha) by 40-digit quadrature of the density."""
    with mp.workdps(40):
        a = mp.mpf(alpha)
        if alpha < 1:
            # u = 1 - t = exp(-v) removes the (1 - t)^(alpha - 1) singularity at t = 1.
            def moment(k):
                t = lambda v: 1 - mp.exp(-v)
                return mp.quad(lambda v: mp.exp(-a * v) * t(v) ** (a - 1 + k),
                               [mp.log(2), 1, 3, 10, 100, 1000, 10000, mp.inf])
        else:
            # The density peaks at t = 1/2 with width ~ 1 / (2 sqrt(2 alpha + 1)): break there.
            sd = 1 / (2 * mp.sqrt(2 * a + 1))
            points = sorted({mp.mpf(0.5) + c * sd for c in (0, 1, 2, 4, 8, 16, 32) if c * sd < 0.5} | {mp.mpf(1)})

            def moment(k):
                return mp.quad(lambda t: t ** k * (4 * t * (1 - t)) ** (a - 1), points)
        z = moment(0)
        mean = moment(1) / z
        return float(mean), float(moment(2) / z - mean ** 2)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_matches_high_precision_quadrature(alpha):
    mean, variance = _reference_moments(alpha)
    assert theta_bar(alpha) == pytest.approx(mean, rel=1e-13)
    assert truncated_beta_variance(alpha) == pytest.approx(variance, rel=1e-11)


def test_alpha_one_is_three_quarters_exactly():
    # Beta(1, 1) is uniform: theta is uniform on [1/2, 1], mean 3/4, variance 1/48.
    assert abs(theta_bar(1.0) - 0.75) <= np.finfo(float).eps
    assert truncated_beta_variance(1.0) == pytest.approx(1 / 48, rel=1e-14)


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=1e-3, max_value=1e3))
def test_mean_has_the_integration_by_parts_closed_form(alpha):
    # (t - 1/2) t^(a-1) (1-t)^(a-1) = -d/dt[t^a (1-t)^a] / (2a), so
    # theta_bar = 1/2 + 1 / (a 4^a B(a, a)), an independent closed form.
    closed = 0.5 + math.exp(-alpha * math.log(4.0) - math.log(alpha) - betaln(alpha, alpha))
    assert theta_bar(alpha) == pytest.approx(closed, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=1e-3, max_value=1e3), st.floats(min_value=1.01, max_value=10.0))
def test_mean_decreases_in_alpha_and_stays_in_half_one(alpha, factor):
    low, high = theta_bar(alpha), theta_bar(alpha * factor)
    assert 0.5 < high < low < 1.0
    assert 0.0 < truncated_beta_variance(alpha) < 1 / 16


def test_limit_small_alpha():
    # As alpha -> 0 mass piles at theta = 1: 1 - theta_bar ~ alpha ln 2, sigma^2 ~ alpha (ln 2 - 1/2).
    alphas = [1e-4, 1e-6, 1e-8]
    gaps = [(1 - theta_bar(a)) / a for a in alphas]
    variances = [truncated_beta_variance(a) / a for a in alphas]
    assert abs(gaps[-1] - math.log(2)) < abs(gaps[0] - math.log(2)) < 1e-3
    assert gaps[-1] == pytest.approx(math.log(2), rel=1e-6)
    assert variances[-1] == pytest.approx(math.log(2) - 0.5, rel=1e-6)


def test_limit_large_alpha():
    # As alpha -> inf theta is a half-normal about 1/2 with scale 1 / (2 sqrt(2 alpha + 1)):
    # theta_bar - 1/2 ~ 1 / (2 sqrt(pi alpha)), sigma^2 ~ (1 - 2/pi) / (4 (2 alpha + 1)).
    for alpha, tol in [(1e4, 1e-4), (1e8, 1e-8)]:
        assert (theta_bar(alpha) - 0.5) * 2 * math.sqrt(math.pi * alpha) == pytest.approx(1.0, abs=tol)
        scaled = truncated_beta_variance(alpha) * 4 * (2 * alpha + 1) / (1 - 2 / math.pi)
        assert scaled == pytest.approx(1.0, abs=tol)


@pytest.mark.parametrize("alpha", [0.2, 1.0, 5.0])
def test_agrees_with_truncated_lambda_draws(alpha):
    # theta = max(lambda, 1 - lambda) with lambda ~ Beta(alpha, alpha) (Carratino et al., proof of Thm 1).
    draws = sample_lam(200_000, alpha, lam_mode="sample", truncate=True,
                       generator=torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    sigma2 = truncated_beta_variance(alpha)
    assert abs(draws.mean() - theta_bar(alpha)) < 5 * math.sqrt(sigma2 / draws.size)
    assert draws.var() == pytest.approx(sigma2, rel=0.02)


@pytest.mark.parametrize("function", [theta_bar, truncated_beta_variance])
@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan"), float("inf"), -float("inf")])
def test_rejects_bad_alpha(function, alpha):
    with pytest.raises(ValueError, match=r"alpha must be a finite number > 0, got"):
        function(alpha)


@pytest.mark.parametrize("function", [theta_bar, truncated_beta_variance])
def test_rejects_non_numbers(function):
    with pytest.raises(TypeError, match="alpha must be a real number"):
        function("1.0")


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=1e-3, max_value=1e3))
def test_gamma_squared_matches_the_k_mixup_closed_form(alpha):
    # Lemma 1's gamma^2 = sigma^2 + (1 - theta_bar)^2 = E[(1 - theta)^2] = E[min(lambda, 1 - lambda)^2],
    # which vicinal.alpha computes independently for k-Mixup's Algorithm 1.
    gamma2 = truncated_beta_variance(alpha) + (1 - theta_bar(alpha)) ** 2
    assert gamma2 == pytest.approx(expected_min_lam_squared(alpha), rel=1e-10)
