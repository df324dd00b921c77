"""One training step of all members at once: their batches, mixing draws, locality weights and losses.

Randomness protocol: the one of :mod:`vicinal.lab.trainer` (protocol 2), member by member, each
member with its own streams (:mod:`.members`). A mixer call consumes a fixed number of uniforms, and consecutive ``torch.rand`` calls continue one stream, so at the start
of each epoch member m draws all its uniforms for the epoch in one call; lambdas (Beta quantiles),
random orders (argsort) and weighted-sampling partners (inverse CDF) then come from them for all
members at once; k-Mixup members of one k and batch size get their optimal-transport costs from one
batched product and share one loop of Hungarian solves. Only the kNN / weighted-sampling graph
matrices run member by member. So member m ends with the parameters and metrics ``trainer.train(config_m)``
gives, up to floating-point rounding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vicinal.graphs import Exponential, Threshold
from vicinal.lam import lam_from_uniforms
from vicinal.pairing import GraphPairing, match_next_blocks, order_from_uniforms

from ..config import MIXING_METHODS
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
        self.mixes = torch.tensor([c.method in MIXING_METHODS for c in configs])
        self.per_sample = torch.tensor([m.mixer is not None and m.mixer.lam_mode == "sample" for m in members])
        self.cycles = torch.tensor([m.mixer is not None and _is_random_pairing(m.mixer) for m in members])
        self.transport = torch.tensor([m.mixer is not None and not _is_random_pairing(m.mixer)
                                       and not isinstance(m.mixer.pairing, GraphPairing) for m in members])
        # Members whose partners or weights need their own graph matrix: weighted sampling, kNN weights.
        self.own_pairing = torch.tensor([m.mixer is not None and (isinstance(m.mixer.pairing, GraphPairing) or (
            m.mixer.graph is not None and m.mixer.graph.needs_full_matrix)) for m in members])
        self.threshold = self._graph_members(Threshold, "eps")
        self.exponential = self._graph_members(Exponential, "decay")
        reduction = [c.reduction if c.method in MIXING_METHODS else "mean" for c in configs]
        self.sum_reduction = _mask([r == "sum" for r in reduction])
        # "normalized" divides by the sum of the locality weights; without a graph they are all 1 (mean).
        self.normalized_reduction = _mask([r == "normalized" and m.mixer.graph is not None
                                           for r, m in zip(reduction, members)])
        self.alpha = torch.tensor([c.alpha for c in configs], dtype=torch.float64)
        self.truncate = torch.tensor([c.truncate for c in configs])

    def _graph_members(self, kind: type, field: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(mask (M, 1), parameter (M, 1)) of members whose uniform-sampling weights are vectorised."""
        chosen = [m.mixer is not None and isinstance(m.mixer.graph, kind)
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
        if bool(self.mixes.any()):  # batches of ERM / modified data draw nothing
            self._draw_epoch_uniforms()
        copy_bytes = orders.numel() * (self.inputs[0, 0].numel() + self.targets[0, 0].numel()) * self.inputs.element_size()
        self.epoch_data = None
        if copy_bytes <= EPOCH_COPY_BUDGET:
            source = self.source[:, None]
            self.epoch_data = self.inputs[source, orders], self.targets[source, orders]

    def _draw_epoch_uniforms(self) -> None:
        """Every mixing member's uniforms for the whole epoch, one ``torch.rand`` call per member.

        ``trainer.train`` calls the mixer once per step, which draws first the lambda uniforms (1, or
        B per sample) then the B uniforms of the random order (:func:`vicinal.lam.sample_lam`,
        :func:`vicinal.pairing.random_order`): the same numbers, because consecutive ``torch.rand``
        calls on a CPU generator continue one stream (pinned by ``tests/test_ensemble.py``).
        """
        members = self.members
        steps = max(m.steps_per_epoch for m in members)
        lam_width = max(int(m.batch_size if self.per_sample[i] else 1) for i, m in enumerate(members))
        lam_u = torch.zeros(len(members), steps, lam_width, dtype=torch.float64)
        pair_u = torch.full((len(members), steps, int(self.batch_sizes.max())), math.inf, dtype=torch.float64)
        for i, member in enumerate(members):
            if not self.mixes[i]:
                continue
            size, n_lam = member.batch_size, member.batch_size if self.per_sample[i] else 1
            u = torch.rand(member.steps_per_epoch * (n_lam + size), dtype=torch.float64,
                           generator=member.mix_generator).view(member.steps_per_epoch, n_lam + size)
            lam_u[i, :member.steps_per_epoch, :n_lam] = u[:, :n_lam]
            pair_u[i, :member.steps_per_epoch, :size] = u[:, n_lam:]
        width = pair_u.shape[2]
        lam = lam_from_uniforms(lam_u, self.alpha[:, None, None], self.truncate[:, None, None]).to(self.inputs.dtype)
        if lam_width < width:  # padding (sample-mode members are never wider than lam_width)
            lam = torch.cat([lam, lam.new_ones(len(members), steps, width - lam_width)], dim=2)
        lam = torch.where(self.per_sample[:, None, None], lam, lam[:, :, :1])
        self.epoch_lam = torch.where(self.mixes[:, None, None], lam, torch.ones_like(lam))
        # Random orders (pads sort last) and, for random pairing, each sample's successor in the cycle.
        self.epoch_order = order_from_uniforms(pair_u)
        sizes = self.batch_sizes[:, None, None]
        position = torch.arange(width)
        following = torch.where(position < sizes - 1, position + 1, torch.where(position == sizes - 1, 0, position))
        following = following.expand(len(members), steps, width)
        cycle = torch.empty_like(self.epoch_order).scatter_(2, self.epoch_order, self.epoch_order.gather(2, following))
        self.epoch_partner = torch.where(self.cycles[:, None, None], cycle, position.expand_as(cycle))
        self.epoch_pair_u = pair_u

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
        if bool(self.mixes[active].any()):
            lam, partner, weights = self._draw(x, active, step)
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
        return weighted.sum(1) / self._divisor(weights, active)

    def _draw(self, x: torch.Tensor, active: torch.Tensor, step: int):
        """Lambdas, partners and full-matrix weights of the active members at ``step``, from the epoch's uniforms.

        Lambdas (Beta quantiles, :func:`vicinal.lam.lam_from_uniforms`), random orders
        (:func:`vicinal.pairing.order_from_uniforms`) and random-pairing partners (Mixup, Local Mixup
        "uniform", k = 1: the next sample in each order's cycle) come from ``start_epoch`` for all
        members and steps at once; k-Mixup members of one k and batch size are matched together
        (:func:`vicinal.pairing.match_next_blocks`). Only weighted sampling and kNN weights, which
        need each member's own graph matrix, run member by member.
        """
        rows, width = len(active), x.shape[1]
        if rows == len(self.members):  # everyone trains: views, no gathers
            lam, order = self.epoch_lam[:, step, :width], self.epoch_order[:, step, :width]
            partner = self.epoch_partner[:, step, :width].clone()
        else:
            lam, order = self.epoch_lam[active, step, :width], self.epoch_order[active, step, :width]
            partner = self.epoch_partner[active, step, :width]
        groups: dict[tuple[int, int], list[int]] = {}  # k-Mixup rows by (k, batch size): matched together
        for row in torch.nonzero(self.transport[active]).flatten().tolist():
            member = self.members[int(active[row])]
            groups.setdefault((member.mixer.pairing.k, member.batch_size), []).append(row)
        for (k, size), chosen in groups.items():
            chosen = torch.tensor(chosen)
            partner[chosen, :size] = match_next_blocks(x[chosen, :size], order[chosen, :size], k)
        weights = torch.ones(rows, width, dtype=x.dtype)
        for row in torch.nonzero(self.own_pairing[active]).flatten().tolist():
            member = self.members[int(active[row])]
            size = member.batch_size
            partner[row, :size], weights[row, :size] = _pair_member(
                member, x[row, :size], partner[row, :size], self.epoch_pair_u[int(active[row]), step, :size])
        return lam, partner, weights

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


def _is_random_pairing(mixer) -> bool:
    """Random partners (Mixup, Local Mixup "uniform", k-Mixup with k = 1): one ``randperm`` per batch."""
    return not isinstance(mixer.pairing, GraphPairing) and mixer.pairing.k == 1


def _pair_member(member: _Member, features: torch.Tensor, partner: torch.Tensor,
                 uniforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Member m's partners and loss weights when they need its own graph matrix: the step of ``Mixer.__call__``.

    Weighted sampling on the member's graph matrix with its ``uniforms`` (Baena et al. 2022, eq. 2;
    the loss weights are the mean graph row), or kNN pair weights of the ``partner`` already chosen
    (random cycle or optimal transport). Threshold / exponential pair weights of uniform sampling are
    vectorised afterwards.
    """
    mixer = member.mixer
    if isinstance(mixer.pairing, GraphPairing):
        graph_weights = mixer.graph.matrix(features)
        return GraphPairing.from_uniforms(graph_weights, uniforms), graph_weights.mean(dim=1)
    return partner, mixer.graph.pair_weights(features, None, partner)
