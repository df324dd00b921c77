r"""Locality graphs of Local Mixup: the weight of a mixed pair from the distance of its endpoints.

Baena et al. 2022, Sec. IV-A: a symmetric matrix :math:`W` built from pairwise input distances
(K-nearest neighbours, a threshold :math:`\varepsilon`, or a decreasing exponential) weights each
virtual sample in the loss, eq. (2):
:math:`L = \sum_{i,j} W[i, j]\, \mathcal{L}(f(\tilde x_{ij}), \tilde y_{ij})`.
The graph is computed per batch on the flattened inputs, as the paper does for cost reasons.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, Union

import torch

from ._checks import all_finite, check_bool, check_int, check_nonnegative_float

Metric = Union[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]
METRICS = ("euclidean", "sqeuclidean")


def distance_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """The dtype distances are accumulated in: float64 when any input is float64, else float32.

    Half-precision inputs (float16 / bfloat16) are upcast: their squared norms overflow float16 at
    a few hundred dimensions, and bfloat16 keeps only 8 bits of mantissa.
    """
    return torch.float64 if torch.float64 in dtypes else torch.float32


def pairwise_distances(a: torch.Tensor, b: torch.Tensor | None = None, *, metric: Metric = "euclidean") -> torch.Tensor:
    """Distances between the rows of ``a`` (n, d) and of ``b`` (m, d), shape (n, m).

    Baena et al. 2022, Sec. IV-A ("D is the pairwise distance matrix"). Inputs of any shape are
    flattened per sample. ``metric`` is "euclidean" (default, as in the paper), "sqeuclidean" or a
    callable ``metric(a, b) -> (n, m)``. The diagonal of ``pairwise_distances(a)`` is exactly 0.
    The result is float32 (float64 for float64 inputs, or when a distance is outside float32's range)
    whatever the input dtype; see :func:`squared_distances` for why it survives offsets, half
    precision and values from 1e-38 to 1e38. ``a`` and ``b`` must be finite and on one device.
    """
    if b is not None:
        for name, x in (("a", a), ("b", b)):
            if not isinstance(x, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor of shape (n, ...), got {type(x).__name__}")
        if b.device != a.device:
            raise ValueError(f"b is on {b.device} but a is on {a.device}; move both to one device")
        if b.ndim == 0 or b.shape[1:] != a.shape[1:]:
            raise ValueError(f"b has samples of shape {tuple(b.shape[1:])}, expected {tuple(a.shape[1:])} as a")
        b = _check_points("b", b)
    a = _check_points("a", a)
    check_metric(metric)
    return batch_distances(a, b, metric=metric)


def _check_points(name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (n, ...), got {type(x).__name__}")
    if x.ndim == 0:
        raise ValueError(f"{name} must have a sample dimension, got a 0-d tensor")
    if x.is_complex() or not all_finite(x.to(torch.float64) if not x.is_floating_point() else x):
        raise ValueError(f"{name} contains NaN or Inf values (or is complex): distances would be NaN")
    return x


def check_metric(metric: Metric) -> Metric:
    """Accept "euclidean", "sqeuclidean" or a callable."""
    if not callable(metric) and metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS} or a callable, got {metric!r}")
    return metric


def batch_distances(a: torch.Tensor, b: torch.Tensor | None = None, *, metric: Metric = "euclidean") -> torch.Tensor:
    """:func:`pairwise_distances` without the argument checks, for inputs a mixer has already checked."""
    same = b is None
    a = a.reshape(a.shape[0], -1)
    b = a if same else b.reshape(b.shape[0], -1)
    if callable(metric):
        dist = metric(a, b)
        if not isinstance(dist, torch.Tensor) or dist.shape != (a.shape[0], b.shape[0]):
            got = tuple(dist.shape) if isinstance(dist, torch.Tensor) else type(dist).__name__
            raise ValueError(f"metric callable returned {got}, expected a tensor of shape {(a.shape[0], b.shape[0])}")
        if bool(dist.isnan().any()):
            raise ValueError("metric callable returned NaN distances; a locality graph needs a distance for every pair")
        return dist
    sq, exponent = scaled_squared_distances(a, None if same else b)
    if same:
        sq.fill_diagonal_(0.0)  # exact zeros despite floating-point cancellation
    if metric == "sqeuclidean":
        return times_power_of_two(sq, exponent, power=2)
    return times_power_of_two(sq.sqrt_(), exponent, power=1)


def squared_distances(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """Squared Euclidean distances between rows, batched over leading dims: (..., n, d), (..., m, d) -> (..., n, m).

    Expanded as |a|^2 + |b|^2 - 2 a.b (one matrix product, no (n, m, d) intermediate), clamped at 0,
    after three steps that keep the expansion accurate on real data:

    * both sets are shifted by their common mean (distances do not change), so an offset shared by
      the data (raw pixel values, unnormalised tables) does not cancel away the digits of the spread:
      float32 data offset by 1e4 with unit spread gives distances within 1e-6 (relative) of exact
      float64 differences, where the plain expansion got whole threshold and kNN decisions wrong;
    * the arithmetic runs in :func:`distance_dtype` (at least float32), so float16 / bfloat16
      batches neither overflow nor lose the graph;
    * the centred rows are scaled by a power of two (exact) so that their largest entry is about 1:
      squares of 1e30 no longer overflow float32 (inf - inf = NaN weights, scipy refusing the cost
      matrix) and squares of 1e-30 no longer underflow to 0 (every pair at distance 0).

    ``b = None`` means ``b = a`` (one centring, one set of norms). The result is float32 (float64 for
    float64 inputs), or float64 when a squared distance is outside float32's normal range.
    """
    sq, exponent = scaled_squared_distances(a, b)
    return times_power_of_two(sq, exponent, power=2)


def scaled_squared_distances(a: torch.Tensor, b: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(s, e)`` with squared distances ``s * 4**e`` (see :func:`squared_distances`); ``e`` is an integer
    tensor broadcastable to ``s``. The costs of an optimal-transport matching need only ``s``."""
    if b is None:
        a, exponent = normalized_rows(a)
        return expanded_squared_distances(a, a), exponent
    dtype = distance_dtype(a.dtype, b.dtype)
    a, b = a.to(dtype), b.to(dtype)
    center = (a.sum(dim=-2, keepdim=True) + b.sum(dim=-2, keepdim=True)) / (a.shape[-2] + b.shape[-2])
    a, b = a - center, b - center
    exponent = torch.maximum(_peak_exponent(a), _peak_exponent(b))
    return expanded_squared_distances(_divide_by_power_of_two(a, exponent), _divide_by_power_of_two(b, exponent)), \
        exponent


def normalized_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ``x`` (..., n, d) in :func:`distance_dtype`, minus their mean row and divided by ``2**e`` (exact),
    ``e`` per leading index such that the largest entry is about 1. Returns ``(rows, e)``, ``e`` of shape (..., 1, 1).

    Distances between the rows are the distances of ``x`` divided by ``2**e``: the same ordering and
    matchings, computed without overflow or underflow.
    """
    x = x.to(distance_dtype(x.dtype))
    x = x - x.mean(dim=-2, keepdim=True)
    exponent = _peak_exponent(x)
    return _divide_by_power_of_two(x, exponent), exponent


def _peak_exponent(x: torch.Tensor) -> torch.Tensor:
    """Integer e per leading index with max |x| / 2**e in [1/2, 1), clamped so that 2**e and 2**-e are normal."""
    if x.numel() == 0:
        return torch.zeros(x.shape[:-2] + (1, 1), dtype=torch.int32, device=x.device)
    limit = math.frexp(torch.finfo(x.dtype).max)[1] - 2
    return torch.frexp(x.abs().amax(dim=(-2, -1), keepdim=True)).exponent.clamp_(-limit, limit)


def _divide_by_power_of_two(x: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    return x * torch.exp2(-exponent.to(x.dtype))  # exact: a power of two within the normal range


def times_power_of_two(values: torch.Tensor, exponent: torch.Tensor, *, power: int) -> torch.Tensor:
    """``values`` (>= 0) times ``2**(power * exponent)``, in float64 when the result leaves float32's normal
    range (squared distances of data around 1e30 or 1e-30, distances beyond 3e38 or below 1e-38)."""
    scale = torch.exp2(exponent.to(values.dtype))
    result = values
    for _ in range(power):  # one factor at a time: 2**(2e) itself can overflow where the product does not
        result = result * scale
    if result.dtype != torch.float64:
        tiny = torch.finfo(result.dtype).tiny  # only what the scaling pushed out of range counts as lost
        lost = (result == torch.inf) | ((result < tiny) & (values >= tiny))
        if bool(lost.any()):
            return times_power_of_two(values.double(), exponent, power=power)
    return result


def expanded_squared_distances(a: torch.Tensor, b: torch.Tensor, a_sq: torch.Tensor | None = None,
                               b_sq: torch.Tensor | None = None) -> torch.Tensor:
    """|a|^2 + |b|^2 - 2 a.b clamped at 0, as is: callers centre, scale and upcast first (:func:`squared_distances`).

    ``a_sq`` / ``b_sq`` are the squared row norms when the caller already has them.
    """
    a_sq = (a * a).sum(-1) if a_sq is None else a_sq
    b_sq = (b * b).sum(-1) if b_sq is None else b_sq
    return (a_sq.unsqueeze(-1) + b_sq.unsqueeze(-2) - 2.0 * (a @ b.transpose(-1, -2))).clamp_min_(0.0)


def paired_distances(a: torch.Tensor, b: torch.Tensor, *, metric: Metric = "euclidean") -> torch.Tensor:
    """Distance between row i of ``a`` and row i of ``b`` (shape (n,)), in O(n d) instead of O(n^2 d).

    Direct differences (no cancellation), accumulated in :func:`distance_dtype`, each row scaled by a
    power of two before squaring (no overflow for 1e30, no underflow for 1e-30).
    """
    a = a.reshape(a.shape[0], -1)
    b = b.reshape(b.shape[0], -1)
    if callable(metric):
        return torch.diagonal(metric(a, b))  # a callable only gives full matrices
    check_metric(metric)
    dtype = distance_dtype(a.dtype, b.dtype)
    diff = (a.to(dtype) - b.to(dtype)).unsqueeze(-2)  # (n, 1, d): one scale per row
    exponent = _peak_exponent(diff)
    sq = _divide_by_power_of_two(diff, exponent).pow(2).sum(-1)  # (n, 1)
    exponent = exponent.squeeze(-1)
    dist = times_power_of_two(sq, exponent, power=2) if metric == "sqeuclidean" else \
        times_power_of_two(sq.sqrt(), exponent, power=1)
    return dist.squeeze(-1)


class NoPairsKeptWarning(UserWarning):
    """A locality graph kept no pair but self pairs in a batch: Local Mixup mixed nothing there."""


def off_diagonal(dist: torch.Tensor, *, same_set: bool) -> torch.Tensor:
    """The distances between distinct samples, flattened: all entries of a cross-set matrix, the
    off-diagonal ones of a matrix of a set with itself."""
    if not same_set:
        return dist.reshape(-1)
    n = dist.shape[0]
    return dist.reshape(-1)[1:].view(n - 1, n + 1)[:, :-1].reshape(-1) if n > 1 else dist.new_empty(0)


def distance_quantile(dist: torch.Tensor, q: float, *, same_set: bool) -> torch.Tensor:
    """The q-quantile of the off-diagonal distances: the smallest distance d with at least a fraction q
    of the pairs at distance <= d (the ``ceil(q n)``-th smallest; no interpolation, so a threshold at
    it keeps at least that fraction). 0 when there is no off-diagonal pair (batch of one)."""
    values = off_diagonal(dist, same_set=same_set)
    if values.numel() == 0:
        return dist.new_zeros(())
    rank = min(max(math.ceil(q * values.numel()), 1), values.numel())
    return values.kthvalue(rank).values


class LocalityGraph:
    """Base class: maps distances to weights. Subclasses implement :meth:`weights_from_distances`.

    Baena et al. 2022, Sec. IV-A. Self pairs (distance 0) always get weight 1, so a graph with no
    other edge reduces Local Mixup to plain training (the paper's vanilla extreme).
    """

    #: True when a pair's weight depends on other pairs (kNN ranks, batch quantiles), so the full matrix is needed.
    needs_full_matrix = False

    def __init__(self, *, metric: Metric = "euclidean"):
        self.metric = check_metric(metric)
        self._warned_empty = False

    def weights_from_distances(self, dist: torch.Tensor, *, same_set: bool) -> torch.Tensor:
        raise NotImplementedError

    def matrix(self, x: torch.Tensor, partner_x: torch.Tensor | None = None) -> torch.Tensor:
        """The weight matrix W (B, B') between the samples of ``x`` and those of ``partner_x`` (default ``x``)."""
        dist = batch_distances(x, partner_x, metric=self.metric)
        return self.weights_from_distances(dist, same_set=partner_x is None)

    def pair_weights(self, x: torch.Tensor, partner_x: torch.Tensor | None, partner: torch.Tensor) -> torch.Tensor:
        """W[i, partner[i]] for each i: the loss weight of the virtual sample mixing i with its partner."""
        if self.needs_full_matrix:
            return self.matrix(x, partner_x).gather(1, partner[:, None]).squeeze(1)
        source = x if partner_x is None else partner_x
        dist = paired_distances(x, source.index_select(0, partner), metric=self.metric)
        return self.weights_from_distances(dist, same_set=False)

    #: Below this weight a pair counts as dropped for the empty-graph warning (exponential weights never reach 0).
    NEGLIGIBLE_WEIGHT = 1e-6

    def intends_plain_training(self) -> bool:
        """True for the settings that ask for plain training on purpose (eps = 0, n_neighbors = 0)."""
        return False

    def warn_if_empty(self, x: torch.Tensor, off_diagonal_weights: torch.Tensor) -> None:
        """Warn once (:class:`NoPairsKeptWarning`) when a batch of more than one sample keeps no pair
        between distinct samples: Local Mixup then mixes nothing, silently, which is almost always a
        distance scale the graph's parameter was not chosen for (image distances are ~80, not ~1).

        ``off_diagonal_weights`` are weights of pairs of distinct samples already at hand (the sampled
        pairs, or the whole matrix); only when none of them is kept is the full matrix computed, to
        judge the batch and to name its distance quantiles.
        """
        if self._warned_empty or x.shape[0] < 2 or self.intends_plain_training():
            return
        if bool((off_diagonal_weights > self.NEGLIGIBLE_WEIGHT).any()):
            return
        dist = batch_distances(x.detach(), metric=self.metric)
        kept = off_diagonal(self.weights_from_distances(dist, same_set=True), same_set=True)
        if bool((kept > self.NEGLIGIBLE_WEIGHT).any()):
            return
        values = off_diagonal(dist, same_set=True)
        levels = (0.01, 0.1, 0.5, 0.9)
        quantiles = ", ".join(f"{q:.0%}: {float(distance_quantile(dist, q, same_set=True)):.4g}" for q in levels)
        self._warned_empty = True
        warnings.warn(
            f"{self!r} kept no pair of distinct samples in a batch of {x.shape[0]} (pair distances "
            f"{float(values.min()):.4g} to {float(values.max()):.4g}, quantiles {quantiles}), so Local Mixup mixes "
            f"nothing there. {self._suggestion(dist)} (shown once per graph)",
            NoPairsKeptWarning, stacklevel=3,
        )

    def _suggestion(self, dist: torch.Tensor) -> str:
        return "Choose the graph's parameter from the batch's distance quantiles above."


class Threshold(LocalityGraph):
    r"""Thresholded graph :math:`W[i, j] = \mathbb{1}[d(x_i, x_j) \le \varepsilon]`.

    Baena et al. 2022, Sec. IV-A and V-A (two spirals, Fig. 3). Give exactly one of

    * ``eps``: an absolute distance, as in the paper. ``eps = 0`` keeps only self pairs (and exact
      duplicates): plain training; ``eps`` above every distance keeps all pairs: Mixup.
    * ``quantile`` in (0, 1]: a scale-free threshold, the q-quantile of the batch's distances between
      distinct samples (see :func:`distance_quantile`), so about a fraction q of those pairs is kept
      in every batch whatever the units of the data; ``quantile = 1`` keeps every pair. The paper
      itself chose eps by quantiles of the pair distances (Sec. V-A); use
      :func:`vicinal.calibrate_eps` to turn a fraction into a fixed eps for a data set instead.
      The graph of ``c * x`` equals the graph of ``x`` for any c > 0.
    """

    def __init__(self, eps: float | None = None, *, quantile: float | None = None, metric: Metric = "euclidean"):
        super().__init__(metric=metric)
        if (eps is None) == (quantile is None):
            raise ValueError(
                f"Threshold needs exactly one of eps (an absolute distance) or quantile (a fraction of the "
                f"batch's pairs to keep, in (0, 1]); got eps={eps!r}, quantile={quantile!r}"
            )
        self.eps = None if eps is None else check_nonnegative_float("eps", eps)
        self.quantile = None
        if quantile is not None:
            quantile = check_nonnegative_float("quantile", quantile)
            if not 0 < quantile <= 1:
                raise ValueError(
                    f"quantile must be in (0, 1], got {quantile!r}; for plain training use Threshold(eps=0)"
                )
            self.quantile = quantile
            self.needs_full_matrix = True  # the quantile is a property of the whole batch

    def weights_from_distances(self, dist: torch.Tensor, *, same_set: bool) -> torch.Tensor:
        eps = self.eps if self.quantile is None else distance_quantile(dist, self.quantile, same_set=same_set)
        return (dist <= eps).to(dist.dtype)

    def intends_plain_training(self) -> bool:
        return self.eps == 0

    def _suggestion(self, dist: torch.Tensor) -> str:
        eps = float(distance_quantile(dist, 0.1, same_set=True))
        return f"Threshold(eps={eps:.4g}) or Threshold(quantile=0.1) would keep about 10 % of the pairs."

    def __repr__(self) -> str:
        return f"Threshold(eps={self.eps})" if self.quantile is None else f"Threshold(quantile={self.quantile})"


class Exponential(LocalityGraph):
    r"""Exponentially decreasing graph :math:`W[i, j] = \exp(-\mathrm{decay}\cdot d(x_i, x_j) / s)`.

    Baena et al. 2022, Sec. IV-A (used for Fashion-MNIST / CIFAR). The distance is not squared, as in
    the authors' script (rate 5e-4 on inputs scaled to [-1, 1]). ``s = 1`` (absolute distances, as in
    the paper) unless ``relative=True``, where ``s`` is the batch's median distance between distinct
    samples, so the graph of ``c * x`` equals the graph of ``x`` and ``decay = 1`` gives weight
    :math:`e^{-1}` to a median pair (as torch-uncertainty's warping mixup normalises by the batch's
    mean distance). ``decay = 0`` gives all weights 1 (Mixup); a large decay keeps only self pairs.
    """

    def __init__(self, decay: float, *, relative: bool = False, metric: Metric = "euclidean"):
        super().__init__(metric=metric)
        self.decay = check_nonnegative_float("decay", decay)
        if math.isinf(self.decay):
            raise ValueError("decay must be finite, got inf; for plain training use Threshold(eps=0)")
        self.relative = check_bool("relative", relative)
        self.needs_full_matrix = relative  # the median is a property of the whole batch

    def weights_from_distances(self, dist: torch.Tensor, *, same_set: bool) -> torch.Tensor:
        if self.decay == 0:
            return torch.ones_like(dist)  # exp(-0 * inf) would be NaN
        if self.relative:
            scale = distance_quantile(dist, 0.5, same_set=same_set)
            # A batch of duplicates has median 0: distance 0 stays 0, any other is infinitely far.
            dist = dist / scale if bool(scale > 0) else torch.where(dist > 0, torch.inf, 0.0).to(dist.dtype)
        return torch.exp(-self.decay * dist)

    def _suggestion(self, dist: torch.Tensor) -> str:
        d10 = float(distance_quantile(dist, 0.1, same_set=True))
        return (f"Exponential(decay={math.log(2) / d10:.4g}) gives weight 1/2 to a pair at the 10 % distance quantile; "
                f"Exponential(decay=1.0, relative=True) scales with the data.")

    def __repr__(self) -> str:
        return f"Exponential(decay={self.decay}" + (", relative=True)" if self.relative else ")")


class KNN(LocalityGraph):
    r"""K-nearest-neighbour graph, symmetrised: :math:`W[i, j] = 1` if j is among the ``n_neighbors``
    nearest other samples of i or i among those of j, plus the self loop :math:`W[i, i] = 1`.

    Baena et al. 2022, Sec. IV-A/IV-B: ``n_neighbors = 0`` is plain training, ``n_neighbors >= B - 1``
    (any value >= B in particular) is Mixup. The paper asks for a symmetric W while describing kNN
    per source vertex; we symmetrise with "or" so W is symmetric, as in the 1-D analysis where K
    neighbours lie on each side. Ties in distance are broken by sample index (stable sort).
    Against a separate partner batch the graph is directed: each row keeps its ``n_neighbors``
    nearest partners. Scale-free by construction (ranks only).
    """

    needs_full_matrix = True

    def __init__(self, n_neighbors: int, *, metric: Metric = "euclidean"):
        super().__init__(metric=metric)
        self.n_neighbors = check_int("n_neighbors", n_neighbors, minimum=0)

    def weights_from_distances(self, dist: torch.Tensor, *, same_set: bool) -> torch.Tensor:
        n, m = dist.shape
        if same_set:
            dist = dist.clone()
            dist.fill_diagonal_(float("inf"))  # rank only the others; the self loop is added below
        kept = min(self.n_neighbors, m - 1 if same_set else m)
        order = torch.argsort(dist, dim=1, stable=True)[:, :kept]
        adjacency = torch.zeros_like(dist, dtype=torch.bool).scatter_(1, order, True)
        if same_set:
            adjacency |= adjacency.T.clone()
            adjacency.fill_diagonal_(True)
        return adjacency.to(dist.dtype)

    def intends_plain_training(self) -> bool:
        return self.n_neighbors == 0

    def __repr__(self) -> str:
        return f"KNN(n_neighbors={self.n_neighbors})"
