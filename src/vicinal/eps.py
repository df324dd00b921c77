r"""An absolute threshold eps for a data set: the distance that keeps a chosen fraction of pairs.

Baena et al. 2022, Sec. V-A chose eps by the quantiles of the pair distances ("the minimum is
reached with eps smaller than the first quantile"). :class:`~vicinal.Threshold` with ``quantile=``
does this per batch; :func:`calibrate_eps` does it once, over a few batches, for users who want one
fixed eps as in the paper (the same family as :func:`vicinal.calibrate_alpha`).
"""

from __future__ import annotations

from typing import Any, Iterator

import torch

from ._checks import check_generator, check_inputs, check_int, check_nonnegative_float
from .graphs import METRICS, Metric, distance_quantile, off_diagonal, pairwise_distances


def calibrate_eps(data: Any, *, kept_fraction: float, batch_size: int = 128, n_batches: int = 10,
                  metric: Metric = "euclidean", generator: torch.Generator | None = None) -> float:
    r"""The eps for which ``Threshold(eps)`` keeps a fraction ``kept_fraction`` of the pairs of distinct samples.

    Baena et al. 2022, eq. (2) and Sec. V-A. The threshold graph of a batch keeps pair (i, j) when
    :math:`d(x_i, x_j) \le \varepsilon`; for batches drawn at random the expected kept fraction of
    off-diagonal pairs is :math:`P(d(X, X') \le \varepsilon)` for two distinct random samples, so eps
    is the ``kept_fraction``-quantile of the pair distances pooled over ``n_batches`` batches (the
    batch size only sets how many pairs are measured). Self pairs are always kept and not counted.

    Parameters
    ----------
    data : Tensor (N, ...), (x, y) pair of tensors, torch Dataset, DataLoader, or iterable of batches
        Tensors and Datasets are sampled: ``n_batches`` batches of ``batch_size`` distinct random
        samples drawn with ``generator``. A DataLoader / iterable gives its first ``n_batches``
        batches as they come (x, or the first element of an (x, y, ...) batch).
    kept_fraction : float in (0, 1]
    batch_size, n_batches : int
    metric : "euclidean" | "sqeuclidean" | callable
        As the graph's (the same distances, :func:`~vicinal.graphs.pairwise_distances`).
    generator : torch.Generator, optional

    Returns
    -------
    float
        The smallest pair distance with at least ``kept_fraction`` of the measured pairs at or below it.
    """
    kept_fraction = check_nonnegative_float("kept_fraction", kept_fraction)
    if not 0 < kept_fraction <= 1:
        raise ValueError(f"kept_fraction must be in (0, 1], got {kept_fraction!r}")
    batch_size = check_int("batch_size", batch_size, minimum=2)
    n_batches = check_int("n_batches", n_batches, minimum=1)
    if not callable(metric) and metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS} or a callable, got {metric!r}")
    generator = check_generator(generator)
    distances = []
    for index, x in enumerate(_input_batches(data, batch_size, n_batches, generator)):
        x = check_inputs(x, name=f"data (batch {index})")
        distances.append(off_diagonal(pairwise_distances(x.detach(), metric=metric), same_set=True).double().cpu())
    pooled = torch.cat(distances) if distances else torch.empty(0, dtype=torch.float64)
    if pooled.numel() == 0:
        raise ValueError("calibrate_eps found no pair of distinct samples: the data needs batches of at least 2 samples")
    return float(distance_quantile(pooled, kept_fraction, same_set=False))


def _input_batches(data: Any, batch_size: int, n_batches: int, generator: torch.Generator | None) -> Iterator:
    """Input batches from a tensor, an (x, y) pair, a Dataset (random batches) or an iterable (first batches)."""
    if isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data):
        data = data[0]
    if isinstance(data, torch.Tensor):
        yield from _random_batches(len(data), batch_size, n_batches, generator, lambda index: data[index])
        return
    if isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):
        def gather(index):
            samples = [data[int(i)] for i in index]
            return torch.stack([s[0] if isinstance(s, (tuple, list)) else s for s in samples])
        yield from _random_batches(len(data), batch_size, n_batches, generator, gather)
        return
    try:
        batches = iter(data)
    except TypeError:
        raise TypeError(
            f"data must be a tensor, an (x, y) pair of tensors, a torch Dataset, a DataLoader or an iterable of "
            f"batches; got {type(data).__name__}"
        ) from None
    for _, batch in zip(range(n_batches), batches):
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


def _random_batches(n: int, batch_size: int, n_batches: int, generator, gather) -> Iterator:
    if n < 2:
        raise ValueError(f"calibrate_eps needs at least 2 samples in data, got {n}")
    size = min(batch_size, n)
    for _ in range(n_batches):
        yield gather(torch.randperm(n, generator=generator)[:size])
