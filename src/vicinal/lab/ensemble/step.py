"""One training step of all members at once: their batches, mixing, locality weights and losses.

The mixing draws (lambdas and partners, the randomness protocol) come from :mod:`.draws`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vicinal.graphs import Exponential, Threshold
from vicinal.pairing import GraphPairing

from ..config import MIXING_METHODS
from .draws import _Draws
from .layers import StackedModel
from .members import _Member, _training_sources

#: Largest per-epoch copy of the members' shuffled training sets, in bytes (see ``_Step.start_epoch``).
EPOCH_COPY_BUDGET = 256 * 1024 ** 2


class _Step:
    """Mixing and loss of one step for the members that train at it (the batched ``trainer._Step``).

    At step s only the members with more than s steps per epoch train; the others are left out of
    the forward pass altogether, and the batch is padded to the largest batch size among those
    that train. Padded samples have loss weight 0.
    """

    def __init__(self, members: list[_Member], stacked: StackedModel):
        self.members, self.stacked = members, stacked
        configs = [m.config for m in members]
        self.batch_sizes = torch.tensor([m.batch_size for m in members])
        self.one_batch_size = bool((self.batch_sizes == self.batch_sizes[0]).all())
        self.all_valid = torch.ones(len(members), int(self.batch_sizes.max()), dtype=torch.bool)
        self.classification = members[0].dataset.num_classes is not None
        self.inputs, self.targets, self.source = _training_sources(members)
        self.draws = _Draws(members, self.batch_sizes, self.inputs.dtype)
        self.checked_graphs = False
        self.threshold = self._graph_members(Threshold, "eps")
        self.exponential = self._graph_members(Exponential, "decay")
        reduction = [c.reduction if c.method in MIXING_METHODS else "mean" for c in configs]
        self.sum_reduction = _mask([r == "sum" for r in reduction])
        # "normalized" divides by the sum of the locality weights; without a graph they are all 1 (mean).
        self.normalized_reduction = _mask([r == "normalized" and m.mixer.graph is not None
                                           for r, m in zip(reduction, members)])
        self.product_reduction = _mask([r == "mean_times_mean_weight" for r in reduction])

    def _graph_members(self, kind: type, field: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(mask (M, 1), parameter (M, 1)) of members whose uniform-sampling weights are vectorised."""
        chosen = [m.mixer is not None and isinstance(m.mixer.graph, kind) and not m.mixer.graph.needs_full_matrix
                  and not isinstance(m.mixer.pairing, GraphPairing) for m in self.members]
        if not any(chosen):
            return None
        values = [getattr(m.config, field) if c else 0.0 for m, c in zip(self.members, chosen)]
        return torch.tensor(chosen)[:, None], torch.tensor(values, dtype=self.inputs.dtype)[:, None]

    def start_epoch(self, orders: torch.Tensor) -> None:
        """Take the members' epoch orders ``(M, N)``.

        When the copy is small (:data:`EPOCH_COPY_BUDGET`), each member's training set is gathered in
        its epoch order once per epoch, so that a step is a slice; otherwise every step gathers its rows.
        """
        self.orders = orders
        if bool(self.draws.mixes.any()):  # batches of ERM / modified data draw nothing
            self.draws.draw_epoch()
        copy_bytes = orders.numel() * (self.inputs[0, 0].numel() + self.targets[0, 0].numel()) * self.inputs.element_size()
        self.epoch_data = None
        if copy_bytes <= EPOCH_COPY_BUDGET:
            source = self.source[:, None]
            self.epoch_data = self.inputs[source, orders], self.targets[source, orders]

    def batch(self, step: int, active: torch.Tensor, everyone: bool):
        """Member m's slice ``order[step * B_m : (step + 1) * B_m]`` for each active member m, padded."""
        if everyone and self.one_batch_size and self.epoch_data is not None:
            size = int(self.batch_sizes[0])
            part = slice(step * size, (step + 1) * size)
            return self.epoch_data[0][:, part], self.epoch_data[1][:, part], self.all_valid
        sizes = self.batch_sizes[active][:, None]
        position = torch.arange(int(sizes.max()))
        valid = position < sizes
        index = torch.where(valid, step * sizes + position, 0)
        if self.epoch_data is not None:
            return self.epoch_data[0][active[:, None], index], self.epoch_data[1][active[:, None], index], valid
        index = self.orders[active].gather(1, index)
        source = self.source[active][:, None]
        return self.inputs[source, index], self.targets[source, index], valid

    def loss(self, x: torch.Tensor, t: torch.Tensor, valid: torch.Tensor, active: torch.Tensor,
             everyone: bool, step: int) -> torch.Tensor:
        """Training loss (A,) of the active members (indices ``active``); draws their lambdas and partners."""
        if bool(self.draws.mixes[active].any()):
            if not self.checked_graphs:
                self._warn_empty_graphs(x, active)
            lam, partner, weights = self.draws.for_step(x, active, step)
            rows = torch.arange(len(active))[:, None]
            partner_x = x[rows, partner]
            if self.threshold is not None or self.exponential is not None:
                weights = self._graph_weights(x, partner_x, weights, active)
            weights = torch.where(valid, weights, torch.zeros_like(weights))
            mixed_x = torch.lerp(partner_x, x, lam.view(*lam.shape, *([1] * (x.ndim - 2))))
            mixed_t = torch.lerp(t[rows, partner], t, lam.view(*lam.shape, *([1] * (t.ndim - 2))))
        else:  # ERM / modified data only: nothing to draw or mix
            weights, mixed_x, mixed_t = valid.to(x.dtype), x, t
        outputs = self.stacked(mixed_x, None if everyone else active)
        per_sample = self._per_sample_loss(outputs, mixed_t)
        weighted = torch.where(weights > 0, weights * per_sample, torch.zeros_like(per_sample))
        loss = weighted.sum(1) / self._divisor(weights, active)
        if self.product_reduction is not None:  # the Local Mixup authors' mean CE x mean pair weight
            size = self.batch_sizes[active].to(weights.dtype)
            product = (torch.where(valid, per_sample, torch.zeros_like(per_sample)).sum(1) / size
                       * weights.sum(1) / size)
            loss = torch.where(self.product_reduction[active], product, loss)
        return loss

    def _warn_empty_graphs(self, x: torch.Tensor, active: torch.Tensor) -> None:
        """On the first mixing step, each Local Mixup member's graph judges its first batch as ``Mixer`` does:
        a graph that keeps no pair of distinct samples warns (:class:`vicinal.NoPairsKeptWarning`)."""
        self.checked_graphs = True
        for row, index in enumerate(active.tolist()):
            member = self.members[index]
            if member.mixer is not None and member.mixer.graph is not None:
                member.mixer.graph.warn_if_empty(x[row, :member.batch_size], x.new_zeros(0))

    def _graph_weights(self, x: torch.Tensor, partners: torch.Tensor, weights: torch.Tensor,
                       active: torch.Tensor) -> torch.Tensor:
        """Locality weights W[i, p(i)] (Baena et al. 2022, eq. 2) of threshold / exponential members at once."""
        distance = (x - partners).flatten(2).pow(2).sum(-1).sqrt()
        if self.threshold is not None:
            chosen, eps = self.threshold
            weights = torch.where(chosen[active], (distance <= eps[active]).to(weights.dtype), weights)
        if self.exponential is not None:
            chosen, decay = self.exponential
            weights = torch.where(chosen[active], torch.exp(-decay[active] * distance), weights)
        return weights

    def _per_sample_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Soft-target cross-entropy, or squared error averaged over output dims (``vicinal.losses``)."""
        if self.classification:
            return -(targets * F.log_softmax(outputs, dim=-1)).sum(-1)
        if outputs.ndim == targets.ndim + 1 and outputs.shape[-1] == 1:
            outputs = outputs.squeeze(-1)
        return (outputs - targets).pow(2).flatten(2).mean(-1) if outputs.ndim > 2 else (outputs - targets).pow(2)

    def _divisor(self, weights: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """The reduction of ``vicinal.losses.reduce_weighted`` per member: B, sum of weights, or 1."""
        divisor = self.batch_sizes[active].to(weights.dtype)
        if self.sum_reduction is not None:
            divisor = torch.where(self.sum_reduction[active], torch.ones_like(divisor), divisor)
        if self.normalized_reduction is not None:
            total = weights.sum(1).clamp_min(torch.finfo(weights.dtype).tiny)
            divisor = torch.where(self.normalized_reduction[active], total, divisor)
        return divisor


def _mask(flags: list[bool]) -> torch.Tensor | None:
    """A boolean member mask, or None when no member is flagged (the step then skips that case)."""
    return torch.tensor(flags) if any(flags) else None
