"""Tests for vicinal.alpha: k-Mixup Algorithm 1 (Greenewald et al. 2023, Sec. 5.1)."""

import itertools

import numpy as np
import pytest
import torch
from scipy import stats

from vicinal.alpha import (
    MAX_MIN_LAM_SQUARED,
    _squared_w2_between,
    calibrate_alpha,
    expected_min_lam_squared,
    mean_squared_pair_distance,
    mean_squared_w2,
    perturbation_rms,
)


@pytest.fixture(scope="module")
def two_clusters():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(size=(200, 3)), rng.normal(size=(200, 3)) + 8.0])


@pytest.mark.parametrize("alpha", [0.1, 0.5, 1.0, 4.0, 50.0])
def test_min_lam_squared_closed_form_matches_monte_carlo(alpha):
    lam = stats.beta(alpha, alpha).rvs(size=200_000, random_state=np.random.default_rng(1))
    samples = np.minimum(lam, 1 - lam) ** 2
    # 5 standard errors: fails with probability < 1e-6 if the closed form is right.
    tol = 5 * samples.std() / np.sqrt(samples.size)
    assert abs(expected_min_lam_squared(alpha) - samples.mean()) < tol


def test_min_lam_squared_exact_values_and_limits():
    # alpha = 1 is the uniform law: 2 * int_0^{1/2} t^2 dt = 1/12.
    assert expected_min_lam_squared(1.0) == pytest.approx(1 / 12, rel=1e-12)
    grid = np.logspace(-3, 4, 60)
    values = np.array([expected_min_lam_squared(a) for a in grid])
    assert np.all(np.diff(values) > 0)
    assert values[0] < 1e-3
    assert values[-1] < MAX_MIN_LAM_SQUARED
    # Var of Beta(a, a) is 1/(4(2a+1)), so 1/4 - E[min^2] = O(1/sqrt(a)) -> 0.
    assert MAX_MIN_LAM_SQUARED - values[-1] < 0.01


def test_pair_distance_estimates_twice_the_total_variance(two_clusters):
    exact = 2 * two_clusters.var(axis=0).sum()
    rng = np.random.default_rng(2)
    i, j = rng.integers(400, size=(2, 20_000))
    sq = np.sum((two_clusters[i] - two_clusters[j]) ** 2, axis=1)
    tol = 5 * sq.std() / np.sqrt(sq.size)
    assert abs(mean_squared_pair_distance(two_clusters, n_trials=20_000, seed=3) - exact) < tol


def test_squared_w2_matches_brute_force_over_permutations():
    rng = np.random.default_rng(4)
    for _ in range(20):
        a, b = rng.normal(size=(2, 5, 2))
        brute = min(
            np.mean(np.sum((a - b[list(p)]) ** 2, axis=1)) for p in itertools.permutations(range(5))
        )
        assert _squared_w2_between(a, b) == pytest.approx(brute, rel=1e-12)


def test_w2_between_whole_dataset_and_itself_is_zero(two_clusters):
    # k = n: both k-samples are the whole dataset, so the optimal matching is the identity.
    assert mean_squared_w2(two_clusters[:30], k=30, n_trials=90, seed=0) == 0.0


def test_w2_decreases_with_k_on_clustered_data(two_clusters):
    values = [mean_squared_w2(two_clusters, k=k, n_trials=4000, seed=5) for k in (1, 4, 16, 64)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_k1_returns_alpha_unchanged_exactly(two_clusters):
    for method in ("multiplicative", "bisection"):
        result = calibrate_alpha(two_clusters, k=1, alpha=0.37, method=method)
        assert result.alpha_k == 0.37
        assert result.xi_k == result.xi
        assert result.reachable and result.n_steps == 0


def test_multiplicative_loop_stops_at_first_step_reaching_target(two_clusters):
    c = 1.2
    result = calibrate_alpha(two_clusters, k=4, alpha=0.3, c=c, n_trials=4000)
    assert result.reachable and result.n_steps > 0
    assert result.alpha_k == pytest.approx(0.3 * c**result.n_steps, rel=1e-12)
    assert result.xi_k >= result.xi
    previous = expected_min_lam_squared(result.alpha_k / c) * result.mean_sq_w2
    assert previous < result.xi**2


def test_bisection_hits_target_and_brackets_paper_loop(two_clusters):
    c = 1.2
    paper = calibrate_alpha(two_clusters, k=4, alpha=0.3, c=c, n_trials=4000)
    exact = calibrate_alpha(two_clusters, k=4, alpha=0.3, n_trials=4000, method="bisection")
    assert exact.reachable
    assert exact.xi_k == pytest.approx(exact.xi, rel=1e-9)
    assert exact.alpha_k <= paper.alpha_k < c * exact.alpha_k


def test_calibrated_alpha_reproduces_xi_through_perturbation_rms(two_clusters):
    result = calibrate_alpha(two_clusters, k=8, alpha=0.2, n_trials=4000, method="bisection", seed=7)
    xi_k = perturbation_rms(two_clusters, k=8, alpha=result.alpha_k, n_trials=4000, seed=7)
    xi_1 = perturbation_rms(two_clusters, k=1, alpha=0.2, n_trials=4000, seed=7)
    assert xi_k == pytest.approx(result.xi_k, rel=1e-12)
    assert xi_1 == pytest.approx(result.xi, rel=1e-12)


def test_unreachable_when_target_exceeds_quarter_of_w2(two_clusters):
    # Large alpha for k = 1 and large k: xi^2 > xi_bar_k / 4, which no alpha_k can give.
    result = calibrate_alpha(two_clusters, k=64, alpha=20.0, n_trials=4000, max_alpha=500.0)
    assert result.xi**2 > result.mean_sq_w2 * MAX_MIN_LAM_SQUARED
    assert not result.reachable
    assert result.alpha_k >= 500.0
    assert result.xi_k < result.xi
    bis = calibrate_alpha(two_clusters, k=64, alpha=20.0, n_trials=4000, max_alpha=500.0, method="bisection")
    assert not bis.reachable and bis.alpha_k == 500.0


def test_perturbation_rms_increases_with_alpha(two_clusters):
    values = [perturbation_rms(two_clusters, k=4, alpha=a, n_trials=800, seed=0) for a in (0.1, 1.0, 10.0)]
    assert values[0] < values[1] < values[2]


def test_seeded_and_accepts_torch(two_clusters):
    a = calibrate_alpha(two_clusters, k=4, alpha=0.5, n_trials=800, seed=11)
    b = calibrate_alpha(torch.from_numpy(two_clusters), k=4, alpha=0.5, n_trials=800, seed=11)
    c = calibrate_alpha(two_clusters, k=4, alpha=0.5, n_trials=800, seed=12)
    assert a == b
    assert a.mean_sq_w2 != c.mean_sq_w2


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"k": 0, "alpha": 1.0}, ValueError, "k must be an integer >= 1, got 0"),
        ({"k": 1000, "alpha": 1.0}, ValueError, "k=1000"),
        ({"k": 2.0, "alpha": 1.0}, TypeError, "k must be an int"),
        ({"k": 2, "alpha": 0.0}, ValueError, "alpha must be a finite number > 0, got 0.0"),
        ({"k": 2, "alpha": float("nan")}, ValueError, "alpha must be"),
        ({"k": 2, "alpha": "1"}, TypeError, "alpha must be a real number"),
        ({"k": 2, "alpha": 1.0, "c": 1.0}, ValueError, "c must be a finite number > 1, got 1.0"),
        ({"k": 2, "alpha": 2.0, "max_alpha": 1.0}, ValueError, "max_alpha must be finite and >= alpha"),
        ({"k": 2, "alpha": 1.0, "method": "newton"}, ValueError, "'newton'"),
        ({"k": 8, "alpha": 1.0, "n_trials": 4}, ValueError, "n_trials=4, k=8"),
    ],
)
def test_bad_arguments_are_named(two_clusters, kwargs, error, match):
    with pytest.raises(error, match=match):
        calibrate_alpha(two_clusters, **kwargs)


def test_bad_data_is_named():
    with pytest.raises(ValueError, match="at least 2 samples"):
        calibrate_alpha(np.zeros((1, 3)), k=1, alpha=1.0)
    with pytest.raises(ValueError, match="finite"):
        perturbation_rms(np.array([[0.0], [np.nan]]), k=1, alpha=1.0)
