"""Local Mixup with a kNN graph on the integer line in dimension 1: periodic and i.i.d. outputs.

Baena et al. 2022 (Local Mixup), Sec. IV-B (eq. (3)-(4), Theorems IV.1, IV.2).  Every
closed form here has a numerical counterpart (an explicit weighted least-squares fit
over enumerated virtual samples, or exact linear algebra next to Monte Carlo) so the
tests can check one against the other.

Notation: the paper's K (kNN size) is ``n_neighbors``; on the integer line it is a
radius: i and j are neighbours iff 1 <= |i - j| <= K (each point has 2K neighbours,
the reading under which eq. (3) counts 2K terms ``y_i``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._checks import check_int
from .real_line import _check_vector, _weighted_least_squares_pointwise

__all__ = [
    "BiasVariance",
    "IidVariance",
    "bias_variance_periodic",
    "iid_variance",
    "iid_weights",
    "periodic_frequency_response",
    "periodic_minimizer",
    "periodic_minimizer_numeric",
]

_WEIGHTINGS_PERIODIC = ("count", "pair")


# ------------------------------------------------- Sec. IV-B: periodic kNN setting
def periodic_minimizer(y, n_neighbors: int, *, weighting: str = "count") -> np.ndarray:
    """Closed form f_K* of Local Mixup with a kNN graph on Z/nZ (eq. (3)-(4)).

    Baena et al. 2022, Sec. IV-B, eq. (3)-(4): inputs are the integers with n-periodic
    outputs y_{i+n} = y_i, i and j are linked iff 1 <= |i - j| <= K (K =
    ``n_neighbors``; any K >= 1, segments longer than n simply wrap), and the model is
    only evaluated at integers, so a segment of length m contributes its m + 1
    interpolations at the integers it covers.  Writing A_m(x_i) for the sum of the
    m - 1 interpolations of length-m segments that strictly straddle x_i (the paper's
    A_m; its 1/m is part of each interpolation) and 2 y_i for the two length-m
    segments ending at x_i,

        f_K*(x_i) = sum_m w_m (2 y_i + A_m(x_i)) / sum_m w_m (m + 1),   m = 1..K.

    ``weighting="count"`` (w_m = 1) counts every interpolation once, the reading of
    Lemma III.1 and Fig. 2; then sum_m (m + 1) = K(K+3)/2 and S_K = sum_{m=2}^K A_m,
    which is eq. (3)-(4) exactly: the printed formula checks out against the numerical
    minimiser (:func:`periodic_minimizer_numeric`), no typo found.
    ``weighting="pair"`` (w_m = 1/(m+1)) gives each pair unit mass, as an expectation
    over lam uniform on the pair's grid {0, 1/m, ..., 1} would; it is offered because
    eq. (3) does NOT describe that criterion.

    Parameters
    ----------
    y : array-like, shape (n,)
        Outputs on one period, n >= 1.
    n_neighbors : int
        The paper's K, >= 1.
    weighting : {"count", "pair"}
        See above.

    Returns
    -------
    numpy.ndarray, shape (n,)
        f_K*(x_i) for i = 0..n-1.
    """
    y = _check_vector("y", y)
    c = _segment_weights(check_int("n_neighbors", n_neighbors, minimum=1), weighting)
    n, big_k = y.size, (c.size - 1) // 2
    folded = np.zeros(n)  # offsets d = -K..K folded onto one period
    np.add.at(folded, np.arange(-big_k, big_k + 1) % n, c)
    offsets = (np.arange(n)[:, None] + np.arange(n)[None, :]) % n
    return y[offsets] @ folded


def _segment_weights(n_neighbors: int, weighting: str) -> np.ndarray:
    """Weights c_d (d = -K..K) with f_K*(x_i) = sum_d c_d y_{i+d}; see periodic_minimizer."""
    if weighting not in _WEIGHTINGS_PERIODIC:
        raise ValueError(f"weighting must be one of {_WEIGHTINGS_PERIODIC}, got {weighting!r}")
    big_k = n_neighbors
    c = np.zeros(2 * big_k + 1)  # c[big_k + d] is c_d
    denominator = 0.0
    for m in range(1, big_k + 1):
        w_m = 1.0 if weighting == "count" else 1.0 / (m + 1)
        c[big_k] += 2 * w_m  # the two length-m segments ending at x_i
        k = np.arange(1, m)  # segment [x_{i-k}, x_{i+m-k}] straddles x_i at distance k
        c[big_k - k] += w_m * (m - k) / m
        c[big_k + m - k] += w_m * k / m
        denominator += w_m * (m + 1)
    return c / denominator


def periodic_minimizer_numeric(y, n_neighbors: int, *, weighting: str = "count") -> np.ndarray:
    """Direct least-squares minimiser of the periodic Local Mixup criterion.

    Baena et al. 2022, eq. (2) on the periodic kNN setting of Sec. IV-B: every segment
    [j, j + m] (j one period, 1 <= m <= K) is enumerated with its m + 1 integer
    interpolations (position (j + t) mod n, target ((m - t) y_j + t y_{j+m}) / m), each
    weighted 1 (``"count"``) or 1 / (m + 1) (``"pair"``), and the weighted least
    squares over f: Z/nZ -> R is solved with sparse LSQR.  Ground truth for
    :func:`periodic_minimizer`.

    Parameters
    ----------
    y : array-like, shape (n,)
        Outputs on one period.
    n_neighbors : int
        The paper's K, >= 1.
    weighting : {"count", "pair"}
        Weight of one interpolation, see :func:`periodic_minimizer`.

    Returns
    -------
    numpy.ndarray, shape (n,)
    """
    y = _check_vector("y", y)
    n_neighbors = check_int("n_neighbors", n_neighbors, minimum=1)
    if weighting not in _WEIGHTINGS_PERIODIC:
        raise ValueError(f"weighting must be one of {_WEIGHTINGS_PERIODIC}, got {weighting!r}")
    n = y.size
    cells, targets, weights = [], [], []
    for m in range(1, n_neighbors + 1):
        t = np.arange(m + 1)
        start = np.arange(n)[:, None]
        cells.append(((start + t) % n).ravel())
        targets.append((((m - t) * y[:, None] + t * y[(start + m) % n]) / m).ravel())
        weights.append(np.full((n * (m + 1),), 1.0 if weighting == "count" else 1.0 / (m + 1)))
    return _weighted_least_squares_pointwise(
        np.concatenate(cells), np.concatenate(targets), np.concatenate(weights), n
    )


def periodic_frequency_response(n_neighbors: int, omega, *, weighting: str = "count") -> np.ndarray:
    """Fourier multiplier of y -> f_K* in the periodic kNN setting (for Theorem IV.1).

    Baena et al. 2022, eq. (3)-(4) are a symmetric convolution f_K* = c * y
    (c_{-d} = c_d, see :func:`periodic_minimizer`), so on Z/nZ the Fourier mode
    exp(i omega x), omega = 2 pi j / n, is multiplied by the real number
    H_K(omega) = c_0 + 2 sum_{d>=1} c_d cos(omega d).  Hence
    Var(f_K*) = sum_{j != 0} H_K(omega_j)^2 |y_hat_j|^2 / n^2 and Bias^2 follows from
    (1 - H_K)^2.  H_K(0) = 1 (the mean is kept exactly) and H_K(omega) -> 0 for
    omega != 0 mod 2 pi, which gives eq. (5)-(7).  The paper's "eventually
    nonincreasing" variance holds for every signal as soon as |H_K(omega)| is
    nonincreasing in K at each omega: numerically it is, from K = 1, for both
    weightings (checked on a fine omega grid for K <= 200 in the tests).

    Parameters
    ----------
    n_neighbors : int
        The paper's K, >= 1.
    omega : array-like
        Angular frequencies.
    weighting : {"count", "pair"}
        See :func:`periodic_minimizer`.

    Returns
    -------
    numpy.ndarray
        H_K(omega), same shape as ``omega``.
    """
    c = _segment_weights(check_int("n_neighbors", n_neighbors, minimum=1), weighting)
    big_k = (c.size - 1) // 2
    omega = np.asarray(omega, dtype=np.float64)
    d = np.arange(1, big_k + 1)
    return c[big_k] + 2.0 * np.cos(omega[..., None] * d) @ c[big_k + 1 :]


@dataclass(frozen=True)
class BiasVariance:
    """Bias^2 and variance of f_K* per K (Baena et al. 2022, Def. IV.1, Thm IV.1).

    Attributes
    ----------
    n_neighbors : numpy.ndarray of int, shape (r,)
        The K values.
    bias2 : numpy.ndarray, shape (r,)
        mean_i (f_K*(x_i) - y_i)^2.
    variance : numpy.ndarray, shape (r,)
        mean_i (f_K*(x_i) - mean_j f_K*(x_j))^2.
    max_deviation : numpy.ndarray, shape (r,)
        max_i |f_K*(x_i) - mean(y)| (eq. (5): tends to 0).
    limit_bias2 : float
        mean_i (y_i - mean(y))^2, the limit of bias2 (eq. (6)).
    """

    n_neighbors: np.ndarray
    bias2: np.ndarray
    variance: np.ndarray
    max_deviation: np.ndarray
    limit_bias2: float


def bias_variance_periodic(y, n_neighbors_values, *, weighting: str = "count") -> BiasVariance:
    """Bias^2 / variance trade-off of f_K* as K grows (Theorem IV.1).

    Baena et al. 2022, Definition IV.1 and Theorem IV.1, eq. (5)-(7), evaluated with
    :func:`periodic_minimizer`.  Bias and variance are averages over the n training
    points of one period.  f_K* preserves the mean exactly (sum_i A_m(x_i) =
    (m - 1) sum_i y_i), so eq. (5) means max_deviation -> 0.

    Parameters
    ----------
    y : array-like, shape (n,)
        Outputs on one period.
    n_neighbors_values : iterable of int
        K values, each >= 1.
    weighting : {"count", "pair"}
        Passed to :func:`periodic_minimizer`.

    Returns
    -------
    BiasVariance
    """
    y = _check_vector("y", y)
    ks = np.array([check_int("n_neighbors", k, minimum=1) for k in n_neighbors_values], dtype=int)
    if ks.size == 0:
        raise ValueError("n_neighbors_values must contain at least one K")
    fits = np.array([periodic_minimizer(y, int(k), weighting=weighting) for k in ks])
    return BiasVariance(
        n_neighbors=ks,
        bias2=np.mean((fits - y) ** 2, axis=1),
        variance=np.var(fits, axis=1),
        max_deviation=np.max(np.abs(fits - y.mean()), axis=1),
        limit_bias2=float(np.var(y)),
    )


def iid_weights(n_neighbors: int) -> np.ndarray:
    """Coefficients c with f_K*(x_0) = sum_{d=-K}^{K} c_d y_d on the integer line.

    Baena et al. 2022, Sec. IV-B, i.i.d. setting, eq. (3)-(4) with inputs Z (count
    weighting): y_i has weight 2K / D and, for every segment of length m <= K
    straddling x_i at distance k from its left end, y_{i-k} gains (m - k) / (m D) and
    y_{i+m-k} gains k / (m D), with D = K(K+3)/2.  Only |d| <= K - 1 is reached; c is
    returned on -K..K.

    Parameters
    ----------
    n_neighbors : int
        The paper's K, >= 1.

    Returns
    -------
    numpy.ndarray, shape (2K + 1,)
        c_d for d = -K..K.
    """
    return _segment_weights(check_int("n_neighbors", n_neighbors, minimum=1), "count")


@dataclass(frozen=True)
class IidVariance:
    """Var f_K*(x_i) for i.i.d. outputs and the bounds of Theorem IV.2 (eq. (8)).

    Attributes
    ----------
    n_neighbors : int
        The paper's K.
    exact : float
        sigma^2 sum_d c_d^2 (:func:`iid_weights`).
    simulated : float
        Sample variance of f_K*(x_0) over seeded draws of the outputs.
    lower_bound : float
        Eq. (8) as printed: 4^2 sigma^2 / K^2.
    upper_bound : float
        Eq. (8): 8 sigma^2 / K.
    """

    n_neighbors: int
    exact: float
    simulated: float
    lower_bound: float
    upper_bound: float


def iid_variance(n_neighbors: int, *, sigma: float = 1.0, n_draws: int = 20_000, seed: int = 0) -> IidVariance:
    """Variance of f_K*(x_i) with i.i.d. outputs, exact and simulated (Theorem IV.2).

    Baena et al. 2022, Theorem IV.2, eq. (8): 16 sigma^2 / K^2 <= Var f_K*(x_i) <=
    8 sigma^2 / K "eventually".  f_K*(x_i) is linear in the outputs, so its variance is
    exactly sigma^2 ||c||^2; a Monte Carlo estimate (Gaussian outputs, numpy Generator
    seeded by ``seed``) is returned next to it.  The coefficient of y_i alone is
    4 / (K + 3), so the lower bound is the y_i term up to O(1/K^3).

    Numerically (count weighting): the upper bound holds for every K >= 1, the lower
    bound only from K = 12 on (K = 1 gives Var = sigma^2 < 16 sigma^2).  With
    c_{+-k} ~ (2/K) g(k/K), g(u) = 1 - u + u ln u, one gets
    K Var / sigma^2 -> 8 int_0^1 g^2 = 28/27, i.e. Var / (8 sigma^2 / K) -> 7/54; the
    upper bound has the right order, the lower bound is loose by a factor of order K.

    Parameters
    ----------
    n_neighbors : int
        The paper's K, >= 1.
    sigma : float
        Standard deviation of the outputs, > 0.
    n_draws : int
        Number of simulated output windows.
    seed : int
        Seed of the simulation.

    Returns
    -------
    IidVariance
    """
    n_neighbors = check_int("n_neighbors", n_neighbors, minimum=1)
    n_draws = check_int("n_draws", n_draws, minimum=2)
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma}")
    c = iid_weights(n_neighbors)
    rng = np.random.default_rng(seed)
    draws = rng.normal(scale=sigma, size=(n_draws, c.size)) @ c
    return IidVariance(
        n_neighbors=n_neighbors,
        exact=float(sigma**2 * np.sum(c**2)),
        simulated=float(np.var(draws, ddof=1)),
        lower_bound=16.0 * sigma**2 / n_neighbors**2,
        upper_bound=8.0 * sigma**2 / n_neighbors,
    )
