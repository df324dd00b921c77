"""Choosing the k-Mixup Beta parameter so the RMS perturbation stays constant.

Greenewald et al. 2023 (k-Mixup), Sec. 2 ("k, alpha, and Root Mean Squared
Perturbation Distance") and Sec. 5.1, Algorithm 1.  A mixed point
``lam * x_i + (1 - lam) * x_sigma(i)`` lies ``min(lam, 1 - lam) * ||x_i - x_sigma(i)||``
away from its nearest endpoint, so the mean squared perturbation factorises into

    xi^2 = E[min(lam, 1 - lam)^2]  *  E[ ||x_i - x_sigma(i)||^2 ],

where the second factor is the mean squared distance of random pairs for k = 1 and the
mean squared Wasserstein-2 distance between two random k-samples for k > 1.  Larger k
gives closer partners, so alpha has to grow to keep xi fixed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy import optimize, special

from ._checks import check_choice, check_int, check_positive_float, check_real

__all__ = [
    "AlphaCalibration",
    "calibrate_alpha",
    "expected_min_lam_squared",
    "mean_squared_pair_distance",
    "mean_squared_w2",
    "perturbation_rms",
]

#: sup over alpha of E[min(lam, 1 - lam)^2]: Beta(alpha, alpha) concentrates at 1/2.
MAX_MIN_LAM_SQUARED = 0.25

_METHODS = ("multiplicative", "bisection")


@dataclass(frozen=True)
class AlphaCalibration:
    """Result of :func:`calibrate_alpha` (Greenewald et al. 2023, Algorithm 1).

    Attributes
    ----------
    alpha_k : float
        Beta parameter to use with block size ``k``.
    xi : float
        Target RMS perturbation, the one ``alpha`` gives with k = 1 (paper's xi, as a
        distance, i.e. the square root of Algorithm 1's line 4).
    xi_k : float
        RMS perturbation that ``alpha_k`` gives with block size ``k``.
    reachable : bool
        False when ``xi`` could not be reached before ``max_alpha`` (Algorithm 1's
        threshold gamma).  With k > 1 this happens whenever ``xi**2 >= mean_sq_w2 / 4``,
        because E[min(lam, 1 - lam)^2] < 1/4 for every alpha.
    alpha : float
        Beta parameter given for k = 1.
    k : int
        Block size.
    mean_sq_pair_distance : float
        Empirical mean squared distance of random pairs (Algorithm 1, line 1).
    mean_sq_w2 : float
        Empirical mean squared W2 between random k-samples (Algorithm 1, line 2).
    n_steps : int
        Number of multiplications by ``c`` (multiplicative method) or root-finder
        iterations (bisection method).
    method : str
        ``"multiplicative"`` or ``"bisection"``.
    """

    alpha_k: float
    xi: float
    xi_k: float
    reachable: bool
    alpha: float
    k: int
    mean_sq_pair_distance: float
    mean_sq_w2: float
    n_steps: int
    method: str


def _as_points(x) -> np.ndarray:
    """Return ``x`` as a float64 array of shape (n, d) (features flattened)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()  # numpy has no bfloat16
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"x must be an array or tensor of real numbers, shape (n, ...), got {type(x).__name__}") from None
    if arr.ndim < 1 or arr.shape[0] < 2:
        raise ValueError(f"x must hold at least 2 samples along axis 0, got shape {arr.shape}")
    arr = arr.reshape(arr.shape[0], -1)
    if not np.all(np.isfinite(arr)):
        raise ValueError("x must contain only finite values (found nan or inf)")
    return arr


def _times_power_of_two(value: float, exponent: int) -> float:
    """``value * 2**exponent``; inf, without a numpy warning, when the result is beyond float64 (squared
    distances of data above 1e154)."""
    with np.errstate(over="ignore"):
        return float(np.ldexp(value, exponent))


def _scaled(points: np.ndarray) -> tuple[np.ndarray, int]:
    """``(points / 2**e, e)`` with the largest centred |entry| about 1 (exact: a power of two), so squared
    distances of data around 1e200 or 1e-200 neither overflow nor underflow float64."""
    peak = float(np.max(np.abs(points - points.mean(axis=0))))
    exponent = int(np.clip(np.frexp(peak)[1], -1000, 1000)) if peak > 0 else 0
    return np.ldexp(points, -exponent), exponent


def _check_k(k, n: int) -> int:
    k = check_int("k", k, minimum=1)
    if k > n:
        raise ValueError(f"k must be <= the number of samples {n}, got k={k}")
    return k


def expected_min_lam_squared(alpha: float) -> float:
    """E[min(lam, 1 - lam)^2] for lam ~ Beta(alpha, alpha), in closed form.

    Greenewald et al. 2023, Algorithm 1, lines 3 and 8 (the paper estimates this by
    Monte Carlo; here it is exact).  By symmetry of Beta(alpha, alpha),

        E[min(lam, 1-lam)^2] = 2 E[lam^2 1{lam < 1/2}]
                             = 2 B(alpha+2, alpha) / B(alpha, alpha) * I_{1/2}(alpha+2, alpha)
                             = (alpha + 1) / (2 alpha + 1) * I_{1/2}(alpha+2, alpha),

    with ``I`` the regularised incomplete Beta function (``scipy.special.betainc``).
    It increases from 0 (alpha -> 0) to 1/4 (alpha -> inf); alpha = 1 gives 1/12.

    Parameters
    ----------
    alpha : float
        Beta parameter, > 0.

    Returns
    -------
    float
    """
    alpha = check_positive_float("alpha", alpha)
    return float((alpha + 1.0) / (2.0 * alpha + 1.0) * special.betainc(alpha + 2.0, alpha, 0.5))


def mean_squared_pair_distance(x, *, n_trials: int = 10_000, seed: int = 0) -> float:
    """Empirical mean squared Euclidean distance between two random samples.

    Greenewald et al. 2023, Algorithm 1, line 1 (xi_bar_1).  The two indices are drawn
    independently and uniformly with repetition, as in the mixup criterion
    (i, j ~ U{1..N}, Sec. 2), so the exact value it estimates is
    ``2 * mean ||x - mean(x)||^2``.

    Parameters
    ----------
    x : array-like or torch.Tensor, shape (n, ...)
        Dataset; trailing dimensions are flattened.
    n_trials : int
        Number of random pairs (the paper's N).
    seed : int
        Seed of the numpy Generator drawing the pairs.

    Returns
    -------
    float
    """
    points, exponent = _scaled(_as_points(x))
    return _times_power_of_two(_mean_squared_pair_distance(points, n_trials, seed), 2 * exponent)


def _mean_squared_pair_distance(points: np.ndarray, n_trials, seed) -> float:
    n_trials = check_int("n_trials", n_trials, minimum=1)
    rng = np.random.default_rng(_check_seed(seed))
    i = rng.integers(points.shape[0], size=n_trials)
    j = rng.integers(points.shape[0], size=n_trials)
    return float(np.mean(np.sum((points[i] - points[j]) ** 2, axis=1)))


def _check_seed(seed) -> int:
    return check_int("seed", seed, minimum=0)


def _squared_w2_between(a: np.ndarray, b: np.ndarray) -> float:
    """W2^2 between two uniform k-point measures: optimal assignment on squared cost."""
    cost = np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)
    rows, cols = optimize.linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def mean_squared_w2(x, *, k: int, n_trials: int = 10_000, seed: int = 0) -> float:
    """Empirical mean squared Wasserstein-2 distance between two random k-samples.

    Greenewald et al. 2023, Algorithm 1, line 2 (xi_bar_k), with W2^2 as defined in
    Sec. 2: ``(1/k) sum_i ||x^gamma_i - x^zeta_sigma(i)||^2`` for the permutation sigma
    minimising it, found by ``scipy.optimize.linear_sum_assignment`` on the SQUARED
    Euclidean cost.  Each k-sample is a uniformly random subset (no repeats inside a
    subset); the two subsets are independent.  ``n_trials // k`` pairs of subsets are
    drawn, as in the paper (N/k trials).

    Differs from the authors' script: it matches on unsquared distances; the paper's
    W2 uses squared distances, which can give a different permutation.

    Parameters
    ----------
    x : array-like or torch.Tensor, shape (n, ...)
        Dataset; trailing dimensions are flattened.
    k : int
        Block size, 1 <= k <= n.
    n_trials : int
        The paper's N; must be >= k so that at least one pair of k-samples is drawn.
    seed : int
        Seed of the numpy Generator drawing the subsets.

    Returns
    -------
    float
    """
    points, exponent = _scaled(_as_points(x))
    return _times_power_of_two(_mean_squared_w2(points, k, n_trials, seed), 2 * exponent)


def _mean_squared_w2(points: np.ndarray, k, n_trials, seed) -> float:
    n = points.shape[0]
    k = _check_k(k, n)
    n_trials = check_int("n_trials", n_trials, minimum=1)
    if n_trials < k:
        raise ValueError(f"n_trials must be >= k so that n_trials // k >= 1, got n_trials={n_trials}, k={k}")
    rng = np.random.default_rng(_check_seed(seed))
    total = 0.0
    n_blocks = n_trials // k
    for _ in range(n_blocks):
        gamma = rng.choice(n, size=k, replace=False)
        zeta = rng.choice(n, size=k, replace=False)
        total += _squared_w2_between(points[gamma], points[zeta])
    return total / n_blocks


def perturbation_rms(x, *, k: int, alpha: float, n_trials: int = 10_000, seed: int = 0) -> float:
    """RMS perturbation distance xi of k-Mixup with block size ``k`` and Beta(alpha, alpha).

    Greenewald et al. 2023, Sec. 2 and Algorithm 1:
    ``xi = sqrt(E[min(lam, 1-lam)^2] * xi_bar_k)``, with xi_bar_k from
    :func:`mean_squared_pair_distance` when k = 1 and :func:`mean_squared_w2` when k > 1,
    and the lambda factor exact (:func:`expected_min_lam_squared`).

    Parameters
    ----------
    x : array-like or torch.Tensor, shape (n, ...)
        Dataset.
    k : int
        Block size, 1 <= k <= n.
    alpha : float
        Beta parameter, > 0.
    n_trials : int
        The paper's N (Monte Carlo size of the distance estimates).
    seed : int
        Seed of the distance estimates.

    Returns
    -------
    float
    """
    points, exponent = _scaled(_as_points(x))
    k = _check_k(k, points.shape[0])
    lam_factor = expected_min_lam_squared(alpha)
    if k == 1:
        dist = _mean_squared_pair_distance(points, n_trials, seed)
    else:
        dist = _mean_squared_w2(points, k, n_trials, seed)
    return float(np.ldexp(np.sqrt(lam_factor * dist), exponent))


def calibrate_alpha(
    x,
    *,
    k: int,
    alpha: float,
    n_trials: int = 10_000,
    c: float = 1.1,
    max_alpha: float = 1000.0,
    method: str = "multiplicative",
    seed: int = 0,
) -> AlphaCalibration:
    """Beta parameter alpha_k giving block size ``k`` the RMS perturbation ``alpha`` gives k = 1.

    Greenewald et al. 2023, Sec. 5.1, Algorithm 1.  Squared quantities are compared
    throughout: the loop runs while ``lam_bar_k * xi_bar_k < lam_bar_1 * xi_bar_1`` with
    xi_bar the mean SQUARED (pair / W2) distances.
    Differs from the authors' script: it averages unsquared distances.
    The lambda factor E[min(lam, 1-lam)^2] is exact (:func:`expected_min_lam_squared`)
    instead of the paper's Monte Carlo, so only the distance terms are random.

    ``method="multiplicative"`` (default) is the paper's loop: start at ``alpha`` and
    multiply by ``c`` until the target is met or ``alpha_k`` reaches ``max_alpha``; the answer
    overshoots the exact root by a factor below ``c`` and never exceeds ``max_alpha`` (the last
    step is cut at it). When the target is not reached at ``max_alpha`` the result says so
    (``reachable=False``) and a warning names the bound. The data is scaled by a power of two
    before measuring (exact; alpha_k does not depend on the scale), so inputs around 1e200 or
    1e-200 give the same alpha_k.  ``method="bisection"`` solves
    ``E[min(lam,1-lam)^2](alpha_k) * xi_bar_k = xi^2`` with Brent's method on
    log(alpha_k) in [alpha, max_alpha]; this is possible because the lambda factor is
    exact and increasing in alpha, and it gives the same distance estimates a more
    precise alpha_k.  Neither method decreases alpha: if ``xi_bar_k >= xi_bar_1`` (k = 1,
    or Monte Carlo noise) ``alpha`` is returned unchanged.  For k = 1 the line-2
    estimate IS the line-1 estimate (a 1-sample W2 is a pair distance), so alpha is
    returned exactly.

    Parameters
    ----------
    x : array-like or torch.Tensor, shape (n, ...)
        Dataset the perturbations are measured on (the same inputs k-Mixup matches).
    k : int
        Block size, 1 <= k <= n.
    alpha : float
        Beta parameter used with k = 1 (the paper's alpha_1), > 0.
    n_trials : int
        The paper's N: random pairs for xi_bar_1, N // k pairs of k-samples for xi_bar_k.
        Must be >= k.
    c : float
        Multiplicative step (> 1) of the paper's loop; ignored by ``"bisection"``.
    max_alpha : float
        The paper's threshold gamma (>= alpha): largest alpha_k tried.
    method : {"multiplicative", "bisection"}
        Search strategy, see above.
    seed : int
        Seed of the distance estimates (both use ``seed``).

    Returns
    -------
    AlphaCalibration
    """
    points, exponent = _scaled(_as_points(x))
    k = _check_k(k, points.shape[0])
    alpha = check_positive_float("alpha", alpha)
    c = check_real("c", c)
    if not (np.isfinite(c) and c > 1):
        raise ValueError(f"c must be a finite number > 1, got {c!r}")
    max_alpha = check_real("max_alpha", max_alpha)
    if not (np.isfinite(max_alpha) and max_alpha >= alpha):
        raise ValueError(f"max_alpha must be finite and >= alpha={alpha}, got {max_alpha}")
    check_choice("method", method, _METHODS)
    n_trials = check_int("n_trials", n_trials, minimum=1)
    seed = _check_seed(seed)

    # Squared distances of the scaled points: the same alpha_k, reported at the data's scale below.
    xi_bar_1 = _mean_squared_pair_distance(points, n_trials, seed)
    xi_bar_k = xi_bar_1 if k == 1 else _mean_squared_w2(points, k, n_trials, seed)
    target = expected_min_lam_squared(alpha) * xi_bar_1  # xi^2, Algorithm 1 line 4

    def achieved(a: float) -> float:
        return expected_min_lam_squared(a) * xi_bar_k

    alpha_k, n_steps = alpha, 0
    if achieved(alpha) < target:
        if method == "multiplicative":
            while achieved(alpha_k) < target and alpha_k < max_alpha:  # Algorithm 1, lines 6-9
                alpha_k = min(alpha_k * c, max_alpha)  # the threshold gamma bounds the answer
                n_steps += 1
        elif achieved(max_alpha) < target:
            alpha_k = float(max_alpha)
        else:
            root, info = optimize.brentq(
                lambda log_a: achieved(float(np.exp(log_a))) - target,
                np.log(alpha),
                np.log(max_alpha),
                xtol=1e-12,
                full_output=True,
            )
            alpha_k, n_steps = float(np.exp(root)), info.iterations
    xi_k_sq = achieved(alpha_k)
    # Bisection lands on the root up to round-off, hence the relative tolerance there.
    reachable = xi_k_sq >= target * (1 - 1e-9 if method == "bisection" else 1.0)
    if not reachable:
        warnings.warn(
            f"calibrate_alpha stopped at max_alpha={max_alpha:g}: with k={k} the RMS perturbation reaches only "
            f"{np.sqrt(xi_k_sq / target):.3g} of the target xi; raise max_alpha or use a smaller k "
            f"(see AlphaCalibration.reachable)", RuntimeWarning, stacklevel=2)
    return AlphaCalibration(
        alpha_k=float(alpha_k),
        xi=float(np.ldexp(np.sqrt(target), exponent)),
        xi_k=float(np.ldexp(np.sqrt(xi_k_sq), exponent)),
        reachable=bool(reachable),
        alpha=alpha,
        k=k,
        mean_sq_pair_distance=_times_power_of_two(xi_bar_1, 2 * exponent),
        mean_sq_w2=_times_power_of_two(xi_bar_k, 2 * exponent),
        n_steps=int(n_steps),
        method=method,
    )
