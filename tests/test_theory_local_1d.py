"""1-D Local Mixup theory (Baena et al. 2022, Sec. III and IV-B)."""

import numpy as np
import pytest
from scipy import special

from vicinal.theory.local_1d import (
    best_linear_fit,
    bias_variance_periodic,
    iid_variance,
    iid_weights,
    mixup_minimizer_1d,
    mixup_minimizer_numeric_1d,
    periodic_frequency_response,
    periodic_minimizer,
    periodic_minimizer_numeric,
)


@pytest.fixture(scope="module")
def small_set():
    rng = np.random.default_rng(0)
    return np.sort(rng.random(6) * 5), rng.normal(size=6)


# ----------------------------------------------------- Lemma III.1 / Theorem III.2
def test_density_barycenter_is_the_numerical_minimiser(small_set):
    x, y = small_set
    centres, values = mixup_minimizer_numeric_1d(x, y, bins_per_segment=8, n_lambda=4000)
    # Tolerance: lam is discretised into 4000 cells, so a pair of length L drops
    # L / 4000-spaced atoms into bins of width h >= 0.02: relative count error ~ L / (4000 h).
    np.testing.assert_allclose(mixup_minimizer_1d(x, y, centres), values, atol=3e-3)


def test_density_barycenter_for_beta_two_matches_numerical_minimiser(small_set):
    x, y = small_set
    centres, values = mixup_minimizer_numeric_1d(x, y, alpha=2.0, bins_per_segment=24, n_lambda=6000)
    # The Beta(2, 2) density varies inside a bin, so the bin average differs from the
    # centre value by O(h^2) on top of the discretisation error above.
    np.testing.assert_allclose(mixup_minimizer_1d(x, y, centres, alpha=2.0), values, atol=5e-3)


def test_printed_lemma_III_1_is_not_the_criterion_minimiser(small_set):
    # Documented finding: eq. (1) weights every interpolation equally, but under
    # Definition II.1 with lam ~ U(0, 1) a pair's weight is 1 / |x_i - x_j|.
    x, y = small_set
    centres, values = mixup_minimizer_numeric_1d(x, y, bins_per_segment=8, n_lambda=4000)
    count = mixup_minimizer_1d(x, y, centres, weighting="count")
    assert np.max(np.abs(count - values)) > 0.1


def test_three_equispaced_points_by_hand():
    # x = 0, 1, 2; y = 0, 0, 1. At 1/2, pairs (0,1) -> 0 and (0,2) -> 1/4 cover it;
    # their lam-densities are 1 and 1/2: f* = (1/2 * 1/4) / (3/2) = 1/12; eq. (1) gives 1/8.
    x, y = [0.0, 1.0, 2.0], [0.0, 0.0, 1.0]
    assert mixup_minimizer_1d(x, y, [0.5])[0] == pytest.approx(1 / 12, rel=1e-12)
    assert mixup_minimizer_1d(x, y, [0.5], weighting="count")[0] == pytest.approx(1 / 8, rel=1e-12)


@pytest.mark.parametrize("weighting", ["density", "count"])
def test_theorem_III_2_minimiser_is_linear_on_each_segment(small_set, weighting):
    x, y = small_set
    for left, right in zip(x[:-1], x[1:]):
        q = np.linspace(left, right, 7)[1:-1]
        f = mixup_minimizer_1d(x, y, q, weighting=weighting)
        slope, intercept = np.polyfit(q, f, 1)
        np.testing.assert_allclose(f, slope * q + intercept, atol=1e-10)


def test_two_points_give_the_segment_itself():
    q = np.linspace(0.1, 2.9, 9)
    for weighting in ("density", "count"):
        np.testing.assert_allclose(mixup_minimizer_1d([0.0, 3.0], [1.0, -2.0], q, weighting=weighting), 1 - q)


# --------------------------------------------------------- eq. (3)-(4), periodic
def _eq_3_4_literal(y, big_k):
    """Independent transcription of eq. (3)-(4): S_1 = 0, S_{K+1} = S_K + A_{K+1}."""
    n = len(y)
    out = np.empty(n)
    for i in range(n):
        s = 0.0
        for kk in range(2, big_k + 1):
            s += sum((kk - k) * y[(i - k) % n] + k * y[(i + kk - k) % n] for k in range(1, kk)) / kk
        out[i] = (2 * big_k * y[i] + s) / (big_k * (big_k + 3) / 2)
    return out


@pytest.mark.parametrize("n, big_k", [(5, 1), (7, 2), (9, 3), (12, 5), (6, 14)])
def test_eq_3_is_the_numerical_least_squares_minimiser(n, big_k):
    y = np.random.default_rng(n + big_k).normal(size=n)
    numeric = periodic_minimizer_numeric(y, big_k)
    np.testing.assert_allclose(periodic_minimizer(y, big_k), numeric, atol=1e-10)
    np.testing.assert_allclose(_eq_3_4_literal(y, big_k), numeric, atol=1e-10)


@pytest.mark.parametrize("n, big_k", [(7, 2), (12, 5), (6, 14)])
def test_pair_weighting_closed_form_and_it_differs_from_eq_3(n, big_k):
    y = np.random.default_rng(3).normal(size=n)
    pair = periodic_minimizer(y, big_k, weighting="pair")
    np.testing.assert_allclose(pair, periodic_minimizer_numeric(y, big_k, weighting="pair"), atol=1e-10)
    assert np.max(np.abs(pair - periodic_minimizer(y, big_k))) > 1e-3


def test_k1_is_vanilla_and_mean_is_kept_exactly():
    y = np.random.default_rng(4).normal(size=10)
    for weighting in ("count", "pair"):
        np.testing.assert_allclose(periodic_minimizer(y, 1, weighting=weighting), y, atol=1e-15)
        for big_k in (2, 7, 33):
            assert periodic_minimizer(y, big_k, weighting=weighting).mean() == pytest.approx(y.mean(), abs=1e-13)


# ------------------------------------------------------------------- Theorem IV.1
@pytest.mark.parametrize("weighting", ["count", "pair"])
def test_theorem_IV_1_limits_and_monotone_variance(weighting):
    for seed in range(3):
        y = np.random.default_rng(seed).normal(size=11)
        table = bias_variance_periodic(y, range(1, 151), weighting=weighting)
        # "eventually nonincreasing": here nonincreasing from K = 1 on.
        assert np.all(np.diff(table.variance) <= 1e-14)
        far = bias_variance_periodic(y, [1, 100, 400, 1600], weighting=weighting)
        # Convergence is slow (about 1/K for "count", slower for "pair"), hence the
        # loose thresholds at K = 1600 and the check that the gaps keep shrinking.
        # eq. (5): f_K* -> mean(y).
        assert np.all(np.diff(far.max_deviation) < 0)
        assert far.max_deviation[-1] < 0.01 * far.max_deviation[0]
        # eq. (6): Bias^2 -> Var(y).
        gap = np.abs(far.bias2 - far.limit_bias2)
        assert np.all(np.diff(gap) < 0) and gap[-1] < 0.02 * far.limit_bias2
        # eq. (7): Var(f_K*) -> 0.
        assert far.variance[-1] < 1e-4 * far.variance[0]


def test_frequency_response_gives_variance_and_is_monotone_for_every_signal():
    n = 11
    y = np.random.default_rng(5).normal(size=n)
    spectrum = np.abs(np.fft.fft(y)) ** 2
    omega_n = 2 * np.pi * np.arange(n) / n
    for big_k in (1, 4, 30):
        h = periodic_frequency_response(big_k, omega_n)
        assert h[0] == pytest.approx(1.0, abs=1e-14)
        variance = np.sum(h[1:] ** 2 * spectrum[1:]) / n**2
        assert variance == pytest.approx(bias_variance_periodic(y, [big_k]).variance[0], rel=1e-10)
    omega = np.linspace(1e-3, np.pi, 500)
    for weighting in ("count", "pair"):
        responses = np.abs([periodic_frequency_response(k, omega, weighting=weighting) for k in range(1, 151)])
        # Var(f_K*) = sum_j H_K(omega_j)^2 |y_hat_j|^2 / n^2 is nonincreasing in K for every
        # signal iff every |H_K(omega)| is.
        assert np.all(np.diff(responses, axis=0) <= 1e-12)


# ------------------------------------------------------------------- Theorem IV.2
def test_iid_weights_are_eq_3_on_a_window():
    for big_k in (1, 3, 6):
        size = 2 * big_k + 1
        response = np.array([periodic_minimizer(np.eye(size)[d], big_k)[0] for d in range(size)])
        np.testing.assert_allclose(iid_weights(big_k), np.roll(response, big_k), atol=1e-15)
        assert iid_weights(big_k).sum() == pytest.approx(1.0)


@pytest.mark.parametrize("big_k", [2, 8, 40])
def test_iid_variance_simulation_matches_exact(big_k):
    result = iid_variance(big_k, sigma=2.0, n_draws=20_000, seed=big_k)
    # Relative sd of a Gaussian sample variance is sqrt(2 / (n - 1)) = 1 %: 5 sd band.
    assert result.simulated == pytest.approx(result.exact, rel=0.05)


def test_theorem_IV_2_bounds_and_where_they_hold():
    results = [iid_variance(k, n_draws=2) for k in range(1, 301)]
    assert all(r.exact <= r.upper_bound for r in results)
    below = [r.n_neighbors for r in results if r.exact < r.lower_bound]
    assert below == list(range(1, 12))  # the lower bound holds only from K = 12 on
    assert results[-1].exact / results[-1].lower_bound > 10  # and is loose by O(K)
    # Asymptotic constant derived in iid_variance's docstring: Var / (8 sigma^2 / K) -> 7/54.
    far = iid_variance(2048, n_draws=2)
    assert far.exact / far.upper_bound == pytest.approx(7 / 54, abs=2e-3)


# ------------------------------------------------------------------- Theorem IV.3
def _brute_force_linear_fit(x, y, w, alpha, n_lambda=400):
    edges = np.linspace(0, 1, n_lambda + 1)
    lam = 0.5 * (edges[1:] + edges[:-1])
    mass = np.diff(special.betainc(alpha, alpha, edges))
    i, j = np.nonzero(w)
    vx = (lam[None] * x[i, None] + (1 - lam[None]) * x[j, None]).ravel()
    vy = (lam[None] * y[i, None] + (1 - lam[None]) * y[j, None]).ravel()
    sw = np.sqrt((w[i, j][:, None] * mass[None]).ravel())
    design = np.column_stack([vx, np.ones_like(vx)]) * sw[:, None]
    return np.linalg.lstsq(design, vy * sw, rcond=None)[0]


def _knn(x, n_neighbors):
    d = np.abs(x[:, None] - x[None])
    w = np.zeros_like(d)
    for i in range(x.size):
        w[i, np.argsort(d[i], kind="stable")[1 : n_neighbors + 1]] = 1.0
    return w


@pytest.fixture(scope="module")
def linear_set():
    rng = np.random.default_rng(6)
    return np.sort(rng.random(12)), rng.normal(size=12)


def test_linear_fit_closed_form_matches_brute_force(linear_set):
    x, y = linear_set
    for alpha, w in ((1.0, _knn(x, 3)), (0.4, np.ones((12, 12))), (3.0, _knn(x, 5))):
        # Midpoint lam cells: the moments E[lam^2] are exact to O(1/n_lambda^2).
        np.testing.assert_allclose(best_linear_fit(x, y, w, alpha=alpha), _brute_force_linear_fit(x, y, w, alpha), atol=1e-4)


def test_mixup_and_complete_graphs_give_ordinary_least_squares(linear_set):
    x, y = linear_set
    ols = np.polyfit(x, y, 1)
    np.testing.assert_allclose(best_linear_fit(x, y), ols, atol=1e-12)
    np.testing.assert_allclose(best_linear_fit(x, y, np.ones((12, 12)) - np.eye(12), alpha=0.3), ols, atol=1e-12)


def test_theorem_IV_3_fails_for_knn_graph_on_generic_finite_data(linear_set):
    # Documented finding: the theorem needs a condition (see best_linear_fit).
    x, y = linear_set
    a_local, _ = best_linear_fit(x, y, _knn(x, 3))
    a_mixup, _ = best_linear_fit(x, y)
    assert abs(a_local - a_mixup) > 0.02


def test_theorem_IV_3_holds_under_the_stated_conditions(linear_set):
    x, y = linear_set
    # Exactly affine outputs: every criterion is zero at the true line.
    np.testing.assert_allclose(best_linear_fit(x, 2 * x - 1, _knn(x, 3)), [2.0, -1.0], atol=1e-12)
    # Constant degree and W maps affine functions of x to affine functions: equispaced x
    # with the identity plus the reflection i <-> n - 1 - i (W x = x + (n - 1) - x).
    n = 12
    xs = np.arange(n, dtype=float)
    w = np.eye(n) + np.eye(n)[::-1]
    np.testing.assert_allclose(best_linear_fit(xs, y, w), np.polyfit(xs, y, 1), atol=1e-12)


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: mixup_minimizer_1d([0, 1, 2], [0, 1, 0], [1.0]), ValueError, r"\[1.0\]"),
        (lambda: mixup_minimizer_1d([0, 1, 2], [0, 1, 0], [2.5]), ValueError, "strictly inside"),
        (lambda: mixup_minimizer_1d([0, 1], [0, 1, 0], [0.5]), ValueError, "same length"),
        (lambda: mixup_minimizer_1d([0, 1], [0, 1], [0.5], weighting="x"), ValueError, "'x'"),
        (lambda: mixup_minimizer_1d([0, 1], [0, 1], [0.5], alpha=-1.0), ValueError, "got -1.0"),
        (lambda: periodic_minimizer([1.0, 2.0], 0), ValueError, "n_neighbors must be an integer >= 1, got 0"),
        (lambda: periodic_minimizer([1.0, 2.0], 2.0), TypeError, "n_neighbors must be an int"),
        (lambda: periodic_minimizer_numeric([1.0, np.nan], 2), ValueError, "finite"),
        (lambda: iid_variance(3, sigma=0.0), ValueError, "sigma must be a finite number > 0, got 0.0"),
        (lambda: best_linear_fit([0, 1, 2], [0, 1, 2], np.ones((2, 2))), ValueError, r"\(3, 3\)"),
        (lambda: best_linear_fit([1, 1, 1], [0, 1, 2]), ValueError, "constant"),
        (lambda: bias_variance_periodic([1.0, 2.0], []), ValueError, "at least one K"),
    ],
)
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()
