"""k-Mixup as in the pseudocode of Greenewald et al. 2023, Fig. 5: the baseline vicinal is measured against.

Written from the figure alone: for each block of k samples, ``scipy.spatial.distance_matrix``
between the block of the first loader's batch and the same block of the second loader's batch,
``scipy.optimize.linear_sum_assignment`` on it in a Python loop over blocks, index the second batch
with the matching, draw lambda with numpy and interpolate. Like the figure it uses the unsquared
Euclidean distance; ``squared=True`` uses the squared distance of the paper's :math:`W_2^2` (and of
vicinal), so both match on the same blocks with the same total squared cost.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import scipy.spatial
import torch


def fig5_matching(x1: torch.Tensor, x2: torch.Tensor, k: int, *, squared: bool = False) -> np.ndarray:
    """Index into ``x2`` of each sample's partner, block by block (Fig. 5's ``idx``).

    Parameters
    ----------
    x1, x2 : Tensor (B, ...)
        The two loaders' batches (same shape). Samples past the last full block keep
        ``idx = 0``, as ``numpy.zeros_like`` leaves them in the figure.
    k : int
        Block size (>= 1).
    squared : bool
        Match on squared Euclidean distances instead of the figure's unsquared ones.

    Returns
    -------
    numpy.ndarray of int64, shape (B,)
    """
    if x1.shape != x2.shape:
        raise ValueError(f"the two batches must have the same shape, got {tuple(x1.shape)} and {tuple(x2.shape)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    a = x1.reshape(x1.shape[0], -1).numpy()
    b = x2.reshape(x2.shape[0], -1).numpy()
    idx = np.zeros(x1.shape[0], dtype=np.int64)
    for i in range(x1.shape[0] // k):
        cost = scipy.spatial.distance_matrix(a[i * k:(i + 1) * k], b[i * k:(i + 1) * k])
        if squared:
            cost = cost ** 2
        _, ix = scipy.optimize.linear_sum_assignment(cost)
        idx[i * k:(i + 1) * k] = ix + i * k
    return idx


def fig5_kmixup(x1: torch.Tensor, y1: torch.Tensor, x2: torch.Tensor, y2: torch.Tensor, k: int, alpha: float,
                rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch of Fig. 5's k-mixup: match, index the second batch, mix with one numpy lambda.

    Parameters
    ----------
    x1, x2 : Tensor (B, ...)
        Inputs of the two loaders (CPU tensors).
    y1, y2 : Tensor (B, C)
        One-hot targets, as the figure requires.
    k : int
        Block size.
    alpha : float
        Beta parameter of lambda.
    rng : numpy.random.Generator
        Source of lambda.

    Returns
    -------
    (Tensor, Tensor)
        The mixed inputs and mixed targets.
    """
    idx = torch.from_numpy(fig5_matching(x1, x2, k))
    x2, y2 = x2[idx], y2[idx]
    lam = rng.beta(alpha, alpha)
    return lam * x1 + (1 - lam) * x2, lam * y1 + (1 - lam) * y2
