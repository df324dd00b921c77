"""Lower bound Q(D) on the Lipschitz constant needed to fit a (Local) Mixup training set.

Baena et al. 2022, Sec. V-B and Fig. 4 plot Q(D) against the threshold eps of the
thresholded graph (eps = 0: vanilla, eps large: Mixup) and defer its definition to the
long version.  The definition used here, derived from Sec. V-B's description:

* Virtual samples.  With the thresholded graph W[i, j] = 1{||x_i - x_j|| <= eps}
  (Sec. IV-A), the mixed training set is
  V_eps = {(lam x_i + (1-lam) x_j, lam y_i + (1-lam) y_j) : ||x_i - x_j|| <= eps}.
  Self pairs (distance 0) keep the original samples, so V_0 is the plain training set.
* Bound.  A function f that fits V_eps (f(x~) = y~ on it) and is L-Lipschitz
  (||f(u) - f(v)|| <= L ||u - v||) satisfies, for every two virtual samples,
  ||y~ - y~'|| <= L ||x~ - x~'||.  Hence
  Q(D) = max over pairs in V_eps of ||y~ - y~'|| / ||x~ - x~'|| <= L.
  If two virtual samples share an input but not a target (a Mixup contradiction, e.g.
  two crossing segments of different classes) no function fits: Q(D) = inf.
* Computable version.  lam runs over the grid {0, 1/(G-1), ..., 1} (G = ``n_lambda``).
  This keeps a subset of the constraints, so the result is still a valid lower bound
  on L, and it increases towards the continuous supremum as the grid is refined.
  In low dimension segments of different classes cross or nearly cross, so the
  continuous Q(D) is often infinite and the grid value grows with ``n_lambda``; the
  paper's finite CIFAR-10 values (Fig. 4) reflect high-dimensional data where
  segments rarely meet.
  Norms are Euclidean on inputs and targets (targets as one-hot / soft-label vectors
  or scalars).  V_eps grows with eps, so Q(D) is nondecreasing in eps.

Computation: with P kept pairs and G grid values there are about P (G - 2) + n virtual
samples.  The training points alone give q0 (the vanilla value, a lower bound of the
answer); since virtual targets are convex combinations of training targets, only
virtual pairs closer than max ||y_i - y_j|| / q0 can exceed it, and in input dimension
<= 8 a KD-tree (scipy.spatial) lists just those, so ~1000 2-D points and any eps take
seconds.  Higher dimensions fall back to all pairs in chunked float64 torch blocks
(cost ~ (P G)^2); pass ``max_points`` (a seeded subsample of the training points, the
same for every eps) to keep that tractable.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import spatial

__all__ = ["lipschitz_lower_bound", "lipschitz_lower_bound_curve", "mixed_training_set"]


def _as_2d(name: str, value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim < 1 or arr.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one sample along axis 0, got shape {arr.shape}")
    arr = arr.reshape(arr.shape[0], -1)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values")
    return arr


def _check_inputs(x, y, n_lambda, max_points, seed) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = _as_2d("x", x), _as_2d("y", y)
    if xs.shape[0] != ys.shape[0]:
        raise ValueError(f"x and y must have the same number of samples, got {xs.shape[0]} and {ys.shape[0]}")
    if isinstance(n_lambda, bool) or not isinstance(n_lambda, (int, np.integer)):
        raise TypeError(f"n_lambda must be an int, got {type(n_lambda).__name__} {n_lambda!r}")
    if n_lambda < 2:
        raise ValueError(f"n_lambda must be >= 2 (the grid holds lam = 0 and 1), got {n_lambda}")
    if max_points is not None:
        if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)):
            raise TypeError(f"max_points must be an int or None, got {type(max_points).__name__} {max_points!r}")
        if max_points < 2:
            raise ValueError(f"max_points must be >= 2, got {max_points}")
        if xs.shape[0] > max_points:
            keep = np.sort(np.random.default_rng(seed).choice(xs.shape[0], size=max_points, replace=False))
            xs, ys = xs[keep], ys[keep]
    return xs, ys


def _check_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise TypeError(f"eps must be a real number, got {type(eps).__name__} {eps!r}")
    if np.isnan(eps) or eps < 0:
        raise ValueError(f"eps must be >= 0 (inf allowed for Mixup), got {eps}")
    return float(eps)


def _virtual_samples(xs: np.ndarray, ys: np.ndarray, eps: float, n_lambda: int):
    """Training points plus the interior grid points of every kept segment (i < j)."""
    i, j = np.triu_indices(xs.shape[0], k=1)
    dist = np.linalg.norm(xs[i] - xs[j], axis=1)
    i, j = i[dist <= eps], j[dist <= eps]
    lam = np.linspace(0.0, 1.0, n_lambda)[1:-1]  # endpoints are the training points
    vx = lam[None, :, None] * xs[i, None, :] + (1 - lam[None, :, None]) * xs[j, None, :]
    vy = lam[None, :, None] * ys[i, None, :] + (1 - lam[None, :, None]) * ys[j, None, :]
    return (
        np.concatenate([xs, vx.reshape(-1, xs.shape[1])]),
        np.concatenate([ys, vy.reshape(-1, ys.shape[1])]),
    )


def mixed_training_set(x, y, *, eps: float, n_lambda: int = 5, max_points: int | None = None, seed: int = 0):
    """The virtual samples V_eps that a thresholded Local Mixup graph keeps.

    Baena et al. 2022, Sec. IV-A (thresholded graph, phi(d) = 1{d <= eps}) and
    eq. (2): all lam x_i + (1-lam) x_j, lam y_i + (1-lam) y_j with ||x_i - x_j|| <= eps
    and lam on the grid {0, 1/(n_lambda-1), ..., 1}; see the module docstring.

    Parameters
    ----------
    x : array-like or torch.Tensor, shape (n, ...)
        Inputs (flattened per sample).
    y : array-like or torch.Tensor, shape (n,) or (n, c)
        Targets: scalars, one-hot or soft labels.
    eps : float
        Threshold, >= 0 (``inf`` keeps every pair: Mixup).
    n_lambda : int
        Size of the lam grid, >= 2 (2 means no interior point: vanilla).
    max_points : int, optional
        Keep a random subset of this many training points first.
    seed : int
        Seed of that subset.

    Returns
    -------
    inputs : numpy.ndarray, shape (v, d)
    targets : numpy.ndarray, shape (v, c)
        The first rows are the (kept) training samples.
    """
    xs, ys = _check_inputs(x, y, n_lambda, max_points, seed)
    return _virtual_samples(xs, ys, _check_eps(eps), n_lambda)


def _pair_ratios(vx: np.ndarray, vy: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Largest ||vy_a - vy_b|| / ||vx_a - vx_b|| over the listed pairs, exact distances."""
    if a.size == 0:
        return 0.0
    dx = np.linalg.norm(vx[a] - vx[b], axis=1)
    dy = np.linalg.norm(vy[a] - vy[b], axis=1)
    if np.any((dx == 0) & (dy > 0)):
        return float("inf")
    return float(np.max(np.where(dx > 0, dy / np.where(dx > 0, dx, 1.0), 0.0)))


def _max_ratio_brute_force(vx: np.ndarray, vy: np.ndarray, chunk_size: int) -> float:
    """All-pairs maximum over (chunk_size x chunk_size) torch blocks.

    Distances use the fast matmul form (absolute error ~1e-8 * scale); the pairs it
    puts within 1e-6 * scale are recomputed exactly, so coinciding inputs are caught.
    """
    tx, ty = torch.from_numpy(vx), torch.from_numpy(vy)
    scale = float(np.abs(vx).max()) if vx.size else 0.0
    best = 0.0
    for r0 in range(0, tx.shape[0], chunk_size):
        r1 = min(r0 + chunk_size, tx.shape[0])
        for c0 in range(r0, tx.shape[0], chunk_size):
            c1 = min(c0 + chunk_size, tx.shape[0])
            dx = torch.cdist(tx[r0:r1], tx[c0:c1])
            dy = torch.cdist(ty[r0:r1], ty[c0:c1])
            upper = torch.ones_like(dx, dtype=torch.bool).triu(diagonal=1 + r0 - c0)  # pairs a < b
            close = upper & (dx <= 1e-6 * scale)
            rows, cols = torch.nonzero(close, as_tuple=True)
            best = max(best, _pair_ratios(vx, vy, rows.numpy() + r0, cols.numpy() + c0))
            if best == float("inf"):
                return best
            ratio = torch.where(upper & ~close, dy / dx.clamp_min(torch.finfo(dx.dtype).tiny), 0.0)
            best = max(best, float(ratio.max()))
    return best


def _max_ratio_kd_tree(vx: np.ndarray, vy: np.ndarray, q0: float, dy_max: float, chunk_size: int) -> float:
    """Low-dimensional maximum: only pairs closer than dy_max / q can beat the current q.

    Nearest neighbours (where large ratios live) raise q first, which shrinks the
    search radius before the exhaustive within-radius pass.
    """
    tree = spatial.cKDTree(vx)
    n_near = min(8, vx.shape[0])
    _, near = tree.query(vx, k=n_near)
    a = np.repeat(np.arange(vx.shape[0]), n_near - 1)
    best = max(q0, _pair_ratios(vx, vy, a, near[:, 1:].ravel()))
    if best == float("inf"):
        return best
    radius = dy_max / best * (1 + 1e-9)
    for start in range(0, vx.shape[0], chunk_size):
        stop = min(start + chunk_size, vx.shape[0])
        neighbours = tree.query_ball_point(vx[start:stop], radius)
        counts = np.fromiter((len(nb) for nb in neighbours), dtype=int, count=stop - start)
        if counts.sum() == 0:
            continue
        a = np.repeat(np.arange(start, stop), counts)
        b = np.concatenate([np.asarray(nb, dtype=int) for nb in neighbours if nb])
        keep = b > a  # each pair once
        best = max(best, _pair_ratios(vx, vy, a[keep], b[keep]))
        if best == float("inf"):
            return best
    return best


def _max_ratio(vx: np.ndarray, vy: np.ndarray, n_data: int, chunk_size: int) -> float:
    """max_{a < b} ||vy_a - vy_b|| / ||vx_a - vx_b|| (inf if an input repeats with a new target).

    The first ``n_data`` rows are training points.  Their own maximum q0 is a lower
    bound of the answer, and virtual targets are convex combinations of training
    targets, so no pair farther apart than max ||y_i - y_j|| / q0 can beat q0.  In
    input dimension <= 8 a KD-tree lists only such pairs.
    """
    q0 = _max_ratio_brute_force(vx[:n_data], vy[:n_data], chunk_size)
    if q0 == float("inf") or vx.shape[0] == n_data:
        return q0
    dy_max = float(torch.cdist(torch.from_numpy(vy[:n_data]), torch.from_numpy(vy[:n_data])).max())
    if dy_max == 0.0:
        return 0.0
    if q0 > 0 and vx.shape[1] <= 8:
        return _max_ratio_kd_tree(vx, vy, q0, dy_max, chunk_size)
    return max(q0, _max_ratio_brute_force(vx, vy, chunk_size))


def lipschitz_lower_bound(
    x,
    y,
    *,
    eps: float,
    n_lambda: int = 5,
    max_points: int | None = None,
    seed: int = 0,
    chunk_size: int = 1024,
) -> float:
    """Q(D): lower bound on the Lipschitz constant of any f fitting V_eps.

    Baena et al. 2022, Sec. V-B / Fig. 4, with the definition derived in the module
    docstring: the largest ||y~ - y~'|| / ||x~ - x~'|| over pairs of kept virtual
    samples (lam on a grid of ``n_lambda`` values); ``inf`` when two kept virtual
    samples share an input but not a target.  eps below the smallest pair distance
    gives the vanilla value (pairs of training points only); eps at or above the
    diameter gives Mixup's.

    Parameters
    ----------
    x : array-like or torch.Tensor, shape (n, ...)
        Inputs.
    y : array-like or torch.Tensor, shape (n,) or (n, c)
        Targets (scalars, one-hot or soft labels).
    eps : float
        Threshold of the graph, >= 0; ``inf`` for Mixup.
    n_lambda : int
        Size of the lam grid {0, ..., 1}, >= 2.
    max_points : int, optional
        Seeded subsample of the training points, for large n.
    seed : int
        Seed of the subsample.
    chunk_size : int
        Rows of the pairwise-distance blocks (memory ~ chunk_size * v * 16 bytes).

    Returns
    -------
    float
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an int >= 1, got {chunk_size!r}")
    xs, ys = _check_inputs(x, y, n_lambda, max_points, seed)
    vx, vy = _virtual_samples(xs, ys, _check_eps(eps), n_lambda)
    return _max_ratio(vx, vy, xs.shape[0], int(chunk_size))


def lipschitz_lower_bound_curve(
    x,
    y,
    eps_values,
    *,
    n_lambda: int = 5,
    max_points: int | None = None,
    seed: int = 0,
    chunk_size: int = 1024,
) -> np.ndarray:
    """Q(D) for each eps (the curve of Baena et al. 2022, Fig. 4).

    Same definition and arguments as :func:`lipschitz_lower_bound`; the subsample
    (if any) is drawn once, so the curve is nondecreasing in eps.

    Parameters
    ----------
    x, y : see :func:`lipschitz_lower_bound`.
    eps_values : iterable of float
        Thresholds, each >= 0.
    n_lambda, max_points, seed, chunk_size : see :func:`lipschitz_lower_bound`.

    Returns
    -------
    numpy.ndarray, shape (len(eps_values),)
    """
    eps_list = [_check_eps(e) for e in eps_values]
    if not eps_list:
        raise ValueError("eps_values must contain at least one threshold")
    xs, ys = _check_inputs(x, y, n_lambda, max_points, seed)
    return np.array(
        [lipschitz_lower_bound(xs, ys, eps=e, n_lambda=n_lambda, chunk_size=chunk_size) for e in eps_list]
    )
