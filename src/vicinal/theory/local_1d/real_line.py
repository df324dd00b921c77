"""Mixup and Local Mixup minimisers for a training set at arbitrary real inputs in dimension 1.

Baena et al. 2022 (Local Mixup), Sec. III (Lemma III.1, Theorem III.2) and Theorem IV.3
(the best linear model under Mixup and under Local Mixup with any graph W).  Every
closed form here has a numerical counterpart (an explicit weighted least-squares fit
over enumerated virtual samples) so the tests can check one against the other.  The
argument checks and the least-squares solver are shared with
:mod:`vicinal.theory.local_1d.integer_line`.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse, special, stats
from scipy.sparse import linalg as sparse_linalg

from ..._checks import check_int, check_positive_float

__all__ = [
    "best_linear_fit",
    "mixup_minimizer_1d",
    "mixup_minimizer_numeric_1d",
]

_WEIGHTINGS_1D = ("density", "count")


# ----------------------------------------------------------------------------- checks
def _check_vector(name: str, value, min_size: int = 1) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 1 or arr.size < min_size:
        raise ValueError(f"{name} must be a 1-D array with at least {min_size} entries, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values")
    return arr


def _check_training_set(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = _check_vector("x", x, 2)
    y = _check_vector("y", y, 2)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    order = np.argsort(x, kind="stable")  # the paper orders inputs: x_i <= x_{i+1}
    return x[order], y[order]


def _weighted_least_squares_pointwise(cells, targets, weights, n_cells: int) -> np.ndarray:
    """Minimise sum_r w_r (f[cell_r] - target_r)^2 over f by sparse LSQR.

    A generic solver on purpose: the closed forms are checked against this fit, not
    against a hand-derived weighted mean.  Cells without any sample are nan.
    """
    sqrt_w = np.sqrt(weights)
    design = sparse.csr_matrix((sqrt_w, (np.arange(cells.size), cells)), shape=(cells.size, n_cells))
    solution = sparse_linalg.lsqr(design, sqrt_w * targets, atol=1e-14, btol=1e-14)[0]
    covered = np.bincount(cells, minlength=n_cells) > 0
    return np.where(covered, solution, np.nan)


# ------------------------------------------------------------- Sec. III: Mixup in 1-D
def mixup_minimizer_1d(x, y, query, *, alpha: float = 1.0, weighting: str = "density") -> np.ndarray:
    """Mixup minimiser f*(x~) as a barycenter of interpolations (Lemma III.1, Thm III.2).

    Baena et al. 2022, Sec. III, Lemma III.1 / eq. (1) and Theorem III.2.  For x~ in an
    open segment between training inputs, f*(x~) averages y~ = lam y_i + (1-lam) y_j
    over the pairs whose segment contains x~, at lam_ij = (x~ - x_j) / (x_i - x_j).

    ``weighting="count"`` is eq. (1) as printed: every such interpolation has weight
    1 / card(E(x~)).  ``weighting="density"`` (default) is the minimiser of the Mixup
    criterion of Definition II.1 with lam ~ Beta(alpha, alpha): a pair puts probability
    density p_Beta(lam_ij) / |x_i - x_j| at x~ (change of variables), so the pointwise
    least-squares minimiser weights each interpolation by that density.  The two agree
    only when all covering pairs have equal weight; the numerical minimiser of the
    criterion (:func:`mixup_minimizer_numeric_1d`) agrees with ``"density"``, not with
    eq. (1) (with lam ~ U(0, 1) the weight is 1 / |x_i - x_j|, not 1).  Either way the
    covering pairs are fixed on each segment [x_m, x_{m+1}] and each y~ is affine in
    x~, so f* is linear on every open segment (Theorem III.2 holds for both readings).
    At training inputs the self pair (i, i) puts an atom and f*(x_i) = y_i, but f* may
    jump there; query points must therefore avoid training inputs.

    Parameters
    ----------
    x, y : array-like, shape (n,)
        Training inputs and outputs (any order; sorted internally), n >= 2.
    query : array-like, shape (q,)
        Points strictly inside (min x, max x), none equal to a training input.
    alpha : float
        Beta(alpha, alpha) parameter (used by ``"density"`` only).
    weighting : {"density", "count"}
        See above.

    Returns
    -------
    numpy.ndarray, shape (q,)
    """
    x, y = _check_training_set(x, y)
    q = _check_vector("query", query)
    alpha = check_positive_float("alpha", alpha)
    if weighting not in _WEIGHTINGS_1D:
        raise ValueError(f"weighting must be one of {_WEIGHTINGS_1D}, got {weighting!r}")
    outside = (q <= x[0]) | (q >= x[-1]) | np.isin(q, x)
    if np.any(outside):
        raise ValueError(
            f"query points must lie strictly inside ({x[0]}, {x[-1]}) and differ from training inputs, "
            f"got {q[outside][:5].tolist()}"
        )
    i, j = np.triu_indices(x.size, k=1)
    keep = x[i] != x[j]
    i, j = i[keep], j[keep]
    lam = (q[:, None] - x[j]) / (x[i] - x[j])  # weight of x_i; (q, pairs)
    covers = (lam > 0) & (lam < 1)
    targets = lam * y[i] + (1 - lam) * y[j]
    if weighting == "count":
        w = covers.astype(np.float64)
    else:
        density = stats.beta.pdf(np.clip(lam, 1e-300, 1 - 1e-16), alpha, alpha) / np.abs(x[i] - x[j])
        w = np.where(covers, density, 0.0)
    return np.sum(w * targets, axis=1) / np.sum(w, axis=1)


def mixup_minimizer_numeric_1d(
    x, y, *, alpha: float = 1.0, bins_per_segment: int = 8, n_lambda: int = 4000
) -> tuple[np.ndarray, np.ndarray]:
    """Numerically minimised Mixup criterion on a fine grid (check of Lemma III.1).

    Baena et al. 2022, Definition II.1 restricted to f piecewise constant on a grid:
    each segment [x_m, x_{m+1}] is cut into ``bins_per_segment`` equal bins, lam ~
    Beta(alpha, alpha) is replaced by ``n_lambda`` equal cells carrying their exact
    Beta mass at the cell midpoints, every ordered pair (i, j), i != j, is enumerated
    (self pairs only add atoms at the training inputs, which are bin edges), and the
    weighted least-squares problem is solved with sparse LSQR.  The result converges
    to the bin averages of f*; since f* is linear on each segment with a density that
    is constant per pair for alpha = 1, the bin average is f* at the bin centre.

    Parameters
    ----------
    x, y : array-like, shape (n,)
        Training set, n >= 2, distinct inputs.
    alpha : float
        Beta(alpha, alpha) parameter.
    bins_per_segment : int
        Bins per training segment.
    n_lambda : int
        Number of lam cells.

    Returns
    -------
    centres : numpy.ndarray, shape (bins,)
        Bin centres.
    values : numpy.ndarray, shape (bins,)
        Minimising value on each bin.
    """
    x, y = _check_training_set(x, y)
    alpha = check_positive_float("alpha", alpha)
    bins_per_segment = check_int("bins_per_segment", bins_per_segment, minimum=1)
    n_lambda = check_int("n_lambda", n_lambda, minimum=2)
    if np.any(np.diff(x) == 0):
        raise ValueError("x must have distinct inputs for the binned minimiser")
    fractions = np.linspace(0.0, 1.0, bins_per_segment + 1)
    edges = np.concatenate([x[:-1, None] + np.diff(x)[:, None] * fractions[None, :-1], [[x[-1]]]], axis=None)
    cell_edges = np.linspace(0.0, 1.0, n_lambda + 1)
    lam = 0.5 * (cell_edges[1:] + cell_edges[:-1])
    mass = np.diff(special.betainc(alpha, alpha, cell_edges))
    i, j = np.nonzero(~np.eye(x.size, dtype=bool))
    virtual_x = lam[None, :] * x[i, None] + (1 - lam[None, :]) * x[j, None]
    virtual_y = lam[None, :] * y[i, None] + (1 - lam[None, :]) * y[j, None]
    weights = np.broadcast_to(mass, virtual_x.shape)
    cells = np.clip(np.searchsorted(edges, virtual_x.ravel(), side="right") - 1, 0, edges.size - 2)
    values = _weighted_least_squares_pointwise(cells, virtual_y.ravel(), weights.ravel(), edges.size - 1)
    return 0.5 * (edges[1:] + edges[:-1]), values


# ------------------------------------------------------ Theorem IV.3: linear models
def best_linear_fit(x, y, weights=None, *, alpha: float = 1.0) -> tuple[float, float]:
    """Best linear model f(x) = a x + b under the (Local) Mixup criterion (Theorem IV.3).

    Baena et al. 2022, eq. (2) with squared loss and a linear model.  With residuals
    r_i = y_i - a x_i - b, the mixed residual is lam r_i + (1 - lam) r_j, so the
    criterion is exactly r^T M r with
    M = E[lam^2] (D_out + D_in) + E[lam (1 - lam)] (W + W^T),
    D_out / D_in the diagonal row / column sums of W; (a, b) solves the weighted normal
    equations.  ``weights=None`` is Mixup (W = all ones).

    Theorem IV.3 says Mixup and Local Mixup give the same (a, b).  Mixup's optimum is
    ordinary least squares (OLS minimises sum r_i^2 and has sum r_i = 0, the two terms
    of r^T M r for W = 11^T).  A graph W gives the same answer iff
    X^T M r_OLS = 0 with X = [x, 1].  Since X^T r_OLS = 0, this holds when y is exactly
    affine, and when all row and column sums of W are equal and W + W^T maps affine
    functions of x to affine functions ((W + W^T) X = X B for some B): e.g. complete
    graphs with or without self loops, or the radius-K graph on the whole integer line.
    It does NOT hold in general: for finite data and a kNN graph the two fits differ
    (see the tests), so the theorem needs such a condition.

    Parameters
    ----------
    x, y : array-like, shape (n,)
        Training set (1-D inputs), n >= 2 and x not constant.
    weights : array-like, shape (n, n), optional
        Nonnegative graph weights W[i, j] (the paper's W); None means all ones.
    alpha : float
        Beta(alpha, alpha) parameter of lam.

    Returns
    -------
    a, b : float
    """
    x = _check_vector("x", x, 2)
    y = _check_vector("y", y, 2)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    alpha = check_positive_float("alpha", alpha)
    n = x.size
    w = np.ones((n, n)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n, n) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"weights must be a nonnegative finite ({n}, {n}) array, got shape {w.shape}")
    second_moment = alpha * (alpha + 1) / (2 * alpha * (2 * alpha + 1))  # E[lam^2], lam ~ Beta(a, a)
    cross_moment = 0.5 - second_moment  # E[lam (1 - lam)]
    m = second_moment * np.diag(w.sum(axis=1) + w.sum(axis=0)) + cross_moment * (w + w.T)
    design = np.column_stack([x, np.ones(n)])
    gram = design.T @ m @ design
    if np.linalg.matrix_rank(gram) < 2:
        raise ValueError("the weighted criterion does not determine (a, b): x is constant on the weighted pairs")
    a, b = np.linalg.solve(gram, design.T @ m @ y)
    return float(a), float(b)
