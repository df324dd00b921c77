r"""Pairing: who mixes with whom. Each pairing returns one partner index per sample.

* :class:`OptimalTransportPairing` (k-Mixup, Greenewald et al. 2023, Sec. 2): random k-samples are
  matched by exact optimal transport (Hungarian algorithm on the squared Euclidean cost, i.e. the
  :math:`W_2^2` coupling of two uniform empirical measures) and interpolated pair by pair.
* :class:`RandomPairing` (Mixup, Zhang et al. 2018): the k = 1 case of the same construction, so
  ``KMixup(k=1)`` and ``Mixup`` produce identical batches under the same generator.
* :class:`GraphPairing` (Local Mixup, Baena et al. 2022, eq. 2): partner j drawn with probability
  proportional to the locality weight :math:`W[i, j]` (self included).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ._checks import check_int
from .graphs import LocalityGraph, expanded_squared_distances, normalized_rows, scaled_squared_distances
from .lam import draw_uniforms


def _solve_assignments(cost: torch.Tensor) -> torch.Tensor:
    """Optimal permutation of each (k, k) cost block: (m, k, k) -> (m, k) column index per row.

    One exact Hungarian solve per block (scipy's Jonker-Volgenant ``linear_sum_assignment``);
    the loop runs over blocks, never over samples.
    """
    blocks = cost.detach().to("cpu", torch.float64).numpy()
    if not np.isfinite(blocks).all():  # the costs are on the host already: no extra synchronisation
        raise ValueError("optimal-transport costs are not finite: the inputs contain NaN or Inf values (a mixer with "
                         "check_finite=False does not check them); clean the batch or keep check_finite=True")
    columns = np.empty(blocks.shape[:2], dtype=np.int64)
    for b, block in enumerate(blocks):
        columns[b] = linear_sum_assignment(block)[1]
    return torch.from_numpy(columns)


def _rows(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows of ``values`` (n, d) at ``index`` of any shape (...) -> (..., d).

    ``index_select`` on the flat index: the same copy as ``values[index]``, several times faster on
    the CPU than advanced indexing.
    """
    flat = values.index_select(0, index.reshape(-1).to(values.device))
    return flat.view(*index.shape, values.shape[1])


def _costs_to_next_block(blocks: torch.Tensor) -> torch.Tensor:
    """Squared distances of block t of (..., m, k, d) to block t + 1 mod m, as :func:`expanded_squared_distances`
    on ``(blocks, blocks.roll(-1, -3))`` but with the squared norms computed once for both sides (the next
    block's are the current ones rolled): one (..., m, k, d) temporary less. Callers centre first.
    """
    norms = (blocks * blocks).sum(-1)
    return expanded_squared_distances(blocks, blocks.roll(-1, -3), norms, norms.roll(-1, -2))


def check_block_batch(n: int, k: int) -> None:
    """Raise ValueError unless a batch of ``n`` holds two disjoint blocks of ``k`` (or ``k = 1``).

    With fewer than 2k samples a block would be matched with itself (or an overlapping set): the
    identity, i.e. no mixing at all, so k-Mixup refuses instead of silently not mixing.
    """
    if k > 1 and n // k < 2:
        raise ValueError(
            f"k-Mixup with k={k} needs at least 2k={2 * k} samples in the batch to match two "
            f"disjoint blocks, got a batch of {n}. Use k <= {max(n // 2, 1)}, drop the short last "
            f"batch (DataLoader(drop_last=True)), or pass an independent partner batch."
        )


def match_next_blocks(x: torch.Tensor, orders: torch.Tensor, k: int) -> torch.Tensor:
    r"""k-Mixup partners within each of M batches at once: (M, B, ...) inputs and (M, B) random orders -> (M, B).

    Greenewald et al. 2023, Sec. 2, with the block rule of :class:`OptimalTransportPairing`: batch
    m's order is cut into :math:`\lfloor B / k \rfloor` blocks, block t is matched to block t + 1 (mod
    m) by the Hungarian algorithm on squared Euclidean cost, and the B mod k samples left over are
    matched to the head of block 0. :meth:`OptimalTransportPairing.pair_in_order` is the M = 1 case,
    and the batched trainer calls it with all its k-Mixup members of one batch size: the costs of
    all blocks come from one batched product and one loop of scipy solves covers every block.
    """
    members, n = orders.shape
    check_block_batch(n, k)
    n_blocks, remainder = divmod(n, k)
    # Centred and scaled by a power of two per member, in at least float32 (see graphs.squared_distances):
    # offsets, half precision, 1e30 and 1e-30 all leave the matching exact.
    flat = normalized_rows(x.reshape(members, n, -1))[0].reshape(members * n, -1)
    offset = (torch.arange(members) * n)[:, None]
    orders = orders.cpu()
    partner = torch.empty(members, n, dtype=torch.long)
    cut = n_blocks * k
    src = orders[:, :cut].reshape(members, n_blocks, k)
    dst = src.roll(-1, 1)
    cost = _costs_to_next_block(_rows(flat, (src + offset[:, :, None]).to(x.device)))
    columns = _solve_assignments(cost.reshape(members * n_blocks, k, k)).view(members, n_blocks, k)
    partner.scatter_(1, src.reshape(members, cut), dst.gather(2, columns).reshape(members, cut))
    if remainder:
        src, dst = orders[:, cut:], orders[:, :remainder]
        cost = scaled_squared_distances(_rows(flat, (src + offset).to(x.device)),
                                        _rows(flat, (dst + offset).to(x.device)))[0]
        partner.scatter_(1, src, dst.gather(1, _solve_assignments(cost)))
    return partner


def order_from_uniforms(u: torch.Tensor) -> torch.Tensor:
    """The permutation that sorts ``u`` along its last axis (stable): uniform i.i.d. keys give a uniformly
    random order. Positions padded with ``inf`` sort last, so rows of different lengths share one call."""
    return torch.argsort(u.detach().cpu(), dim=-1, stable=True)


def random_order(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A uniformly random permutation of ``range(n)`` (CPU), from exactly ``n`` float64 uniforms of ``generator``.

    Every pairing draws its randomness this way (a fixed count per call, in a fixed order), so a batched
    trainer can draw a whole epoch of uniforms per member in one call and get the same partners.
    """
    return order_from_uniforms(draw_uniforms(n, generator))


class OptimalTransportPairing:
    r"""k-Mixup pairing: optimal-transport matching of disjoint random blocks of ``k`` samples.

    Greenewald et al. 2023, Sec. 2 (k-mixup, :math:`W_2^2` cost, displacement interpolation) and
    Fig. 5. The batch is put in a random order and cut into :math:`m = \lfloor B / k \rfloor`
    blocks of k samples. Each block t is matched to the next block :math:`t + 1 \bmod m` -- a
    different, disjoint k-sample -- by the permutation :math:`\sigma` minimising
    :math:`\sum_i \lVert x_i - x_{\sigma(i)} \rVert_2^2`. Every block serves once as source and once as
    target, so each sample gets exactly one partner and no sample is its own partner.

    Remainder: when B is not a multiple of k, the :math:`r = B \bmod k` samples left over form one
    short block matched, as an r-sample, with the first r samples of block 0 (a random r-subset,
    since blocks are cut from a random order). This is exact r-mixup for those samples, like the
    authors' script, which matches a short last block on its own.

    With an independent ``partner_x`` batch (the paper's two-loader form, Fig. 5), the blocks of the
    batch are matched to the blocks of the partner batch, same sizes, same remainder rule.

    Differs from the authors' script: the cost is the squared Euclidean distance of the paper's
    :math:`W_2^2`, not the unsquared distance (the two can give different matchings).

    Parameters
    ----------
    k : int
        Block size (>= 1). ``k = 1`` is random pairing (Mixup). Within one batch, k >= 2 needs
        B >= 2k; otherwise pass an independent ``partner_x`` batch.

    Raises
    ------
    ValueError
        When ``k >= 2`` and the batch holds fewer than ``2k`` samples and no partner batch is given:
        a block matched with itself (or with an overlapping set) is the identity, i.e. no mixing.
    """

    def __init__(self, k: int):
        self.k = check_int("k", k, minimum=1)

    def __call__(self, x: torch.Tensor, partner_x: torch.Tensor | None = None, *,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Partner index (B,) into ``partner_x`` (or into ``x`` itself when no partner batch is given).

        Draws :func:`random_order` of the batch (B uniforms), then, with a partner batch, a random
        order of the partner batch (B more); :meth:`pair_in_order` does the rest.
        """
        n = x.shape[0]
        self._check_sizes(n, partner_x)
        order = random_order(n, generator)
        partner_order = None if partner_x is None else random_order(n, generator)
        return self.pair_in_order(x, order, partner_x, partner_order)

    def _check_sizes(self, n: int, partner_x: torch.Tensor | None) -> None:
        if partner_x is None:
            check_block_batch(n, self.k)
        elif partner_x.shape[0] != n:
            raise ValueError(f"partner_x must have as many samples as x ({n}), got {partner_x.shape[0]}")

    def pair_in_order(self, x: torch.Tensor, order: torch.Tensor, partner_x: torch.Tensor | None = None,
                      partner_order: torch.Tensor | None = None) -> torch.Tensor:
        """Partners (B,) given the random order of the batch (and of the partner batch, when one is given).

        The deterministic part of :meth:`__call__`: blocks are cut from ``order``; block t is
        matched to block t + 1 (mod m), or to block t of ``partner_order`` in the partner batch.
        """
        n, k = x.shape[0], self.k
        self._check_sizes(n, partner_x)
        order = order.cpu()
        n_blocks, remainder = divmod(n, k)
        if partner_x is None:
            full = order[: n_blocks * k]
            # Block t is matched to block t + 1 (mod m); the remainder to the head of block 0.
            targets = torch.cat([full.roll(-k), order[:remainder]])
        else:
            targets = partner_order.cpu()
        if k == 1:
            partner = torch.empty_like(order)
            partner[order] = targets
            return partner.to(x.device)
        if partner_x is None:
            return match_next_blocks(x.unsqueeze(0), order.unsqueeze(0), k)[0].to(x.device)
        return self._match(x, partner_x, order, targets, n_blocks).to(x.device)

    def _match(self, x: torch.Tensor, partner_x: torch.Tensor, sources: torch.Tensor,
               targets: torch.Tensor, n_blocks: int) -> torch.Tensor:
        """Solve the OT matching between ``sources`` and ``targets`` (indexing ``partner_x``), block by block."""
        k, n = self.k, x.shape[0]
        x_flat, pool_flat = x.reshape(n, -1), partner_x.reshape(partner_x.shape[0], -1)
        partner = torch.empty(n, dtype=torch.long)
        cut = n_blocks * k
        if n_blocks:
            src = sources[:cut].view(n_blocks, k)
            dst = targets[:cut].view(n_blocks, k)
            cost = scaled_squared_distances(_rows(x_flat, src), _rows(pool_flat, dst))[0]  # per-block scale
            partner[src] = dst.gather(1, _solve_assignments(cost))
        if cut < n:
            src, dst = sources[cut:], targets[cut:]
            cost = scaled_squared_distances(_rows(x_flat, src), _rows(pool_flat, dst))[0]
            partner[src] = dst[_solve_assignments(cost[None])[0]]
        return partner

    def __repr__(self) -> str:
        return f"OptimalTransportPairing(k={self.k})"


class RandomPairing(OptimalTransportPairing):
    r"""Mixup's random pairing, defined as the k = 1 case of :class:`OptimalTransportPairing`.

    Zhang et al. 2018; Baena et al. 2022 ("uniform" sampling); Greenewald et al. 2023, Sec. 2 (k = 1).
    The samples are put in a uniformly random order and each is paired with the next one in a
    cycle, so each partner is uniform over the *other* samples and nobody mixes with itself
    (B = 1 pairs the sample with itself: nothing else exists).

    Differs from the authors' scripts: ``torch.randperm`` partners leave about one sample per batch
    paired with itself, a wasted no-op mix; the cycle removes it and makes Mixup exactly the k = 1
    case of k-Mixup.
    """

    def __init__(self):
        super().__init__(k=1)

    def __repr__(self) -> str:
        return "RandomPairing()"


def uniform_partners(u: torch.Tensor, n: int) -> torch.Tensor:
    """Partners uniform over ``range(n)``, self included: ``floor(u * n)`` per float64 uniform ``u`` (any shape).

    The same index as the inverse-CDF draw of :meth:`GraphPairing.from_uniforms` on a row of equal
    weights, so weighted and uniform Local Mixup give the same batch when every pair is kept.
    """
    return (u.detach().cpu().to(torch.float64) * n).floor_().to(torch.long).clamp_(max=n - 1)


class UniformPairing:
    r"""Local Mixup "uniform" sampling: each sample's partner drawn uniformly over the whole batch, itself included.

    Baena et al. 2022, eq. (2) with Definition II.1: the objective sums :math:`W[i, j]\,\mathcal{L}_{ij}`
    over every pair *including* :math:`i = j`, whose term is the plain-training loss of sample i (which
    is why eps = 0 is vanilla training). A partner uniform over all B samples, weighted by
    :math:`W[i, p(i)]`, makes :math:`\frac{1}{B}\sum_i W[i, p(i)]\,\mathcal{L}_{i p(i)}` an unbiased estimate
    of :math:`\frac{1}{B^2}\sum_{i,j} W[i, j]\,\mathcal{L}_{ij}`, diagonal included. :class:`RandomPairing`
    (a random cycle, never self) would drop the diagonal: biased, and with eps = 0 no sample at all
    would count.

    Draws exactly B float64 uniforms (:func:`uniform_partners`). With a partner batch the partner is
    uniform over the partner batch.
    """

    def __call__(self, x: torch.Tensor, partner_x: torch.Tensor | None = None, *,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        n = x.shape[0]
        if partner_x is not None and partner_x.shape[0] != n:
            raise ValueError(f"partner_x must have as many samples as x ({n}), got {partner_x.shape[0]}")
        return uniform_partners(draw_uniforms(n, generator), n).to(x.device)

    def __repr__(self) -> str:
        return "UniformPairing()"


class GraphPairing:
    r"""Local Mixup "weighted" sampling: partner j drawn with probability :math:`W[i, j] / \sum_l W[i, l]`.

    Baena et al. 2022, eq. (2). Sampling partners in proportion to the locality weights (self
    included) and weighting sample i by its mean row weight :math:`\frac{1}{B}\sum_j W[i, j]`
    estimates the same objective as uniform sampling with weight :math:`W[i, j]` (both have
    expectation :math:`\frac{1}{B}\sum_j W[i, j]\,\mathcal{L}_{ij}` per sample) with lower variance:
    no draw is wasted on a pair of weight 0. The mixer sets those loss weights.

    Draws happen on the CPU (or the generator's device) so results do not depend on the input device.
    """

    def __call__(self, weights: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Partner index (B,) drawn row-wise from the weight matrix (B, B) (self loop must be > 0).

        Draws exactly B float64 uniforms from ``generator``; :meth:`from_uniforms` maps them to partners.
        """
        if not isinstance(weights, torch.Tensor) or weights.ndim != 2 or weights.shape[0] != weights.shape[1]:
            got = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
            raise ValueError(f"weights must be a square locality matrix (B, B), got {got}")
        return self.from_uniforms(weights, draw_uniforms(weights.shape[0], generator)).to(weights.device)

    @staticmethod
    def from_uniforms(weights: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        r"""Inverse-CDF draw of row i's partner with uniform ``u[i]``; batches of matrices (..., B, B) too.

        Partner of row i: the first j with :math:`\sum_{l \le j} W[i, l] > u_i \sum_l W[i, l]`, so j is
        chosen with probability :math:`W[i, j] / \sum_l W[i, l]` and never when :math:`W[i, j] = 0`.
        """
        rows = weights.detach().to("cpu", torch.float64)
        cdf = rows.cumsum(-1)
        total = cdf[..., -1:]
        if not bool(((rows >= 0) & (rows < torch.inf)).all()):
            raise ValueError("weights of the locality graph must be finite and >= 0 to draw partners in proportion "
                             "to them (Baena et al. 2022, eq. 2)")
        if bool((total <= 0).any()):
            raise ValueError("every row of the locality graph weights needs a positive weight (the self loop) to draw a partner")
        partner = torch.searchsorted(cdf, u.cpu().unsqueeze(-1) * total, right=True).squeeze(-1)
        # u * total can round up to total itself (u within 1e-16 of 1): take the last positive column.
        last = rows.shape[-1] - 1 - (rows.flip(-1) > 0).to(torch.int8).argmax(-1)
        return torch.minimum(partner, last)

    def __repr__(self) -> str:
        return "GraphPairing()"


def check_pairing(pairing: object, graph: LocalityGraph | None) -> object:
    """Validate a pairing object for a mixer (used by :class:`vicinal.Mixer`)."""
    if isinstance(pairing, GraphPairing):
        if graph is None:
            raise ValueError("GraphPairing draws partners from a locality graph: pass graph=KNN/Threshold/Exponential")
    elif not isinstance(pairing, (OptimalTransportPairing, UniformPairing)):
        raise TypeError(
            f"pairing must be RandomPairing(), UniformPairing(), OptimalTransportPairing(k) or GraphPairing(), "
            f"got {type(pairing).__name__}"
        )
    return pairing
