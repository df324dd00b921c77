"""Train many small models at once: a stacked ensemble that reproduces ``trainer.train`` member by member.

Local Mixup (Baena et al. 2022, Fig. 3) averages 1000 trainings per eps and k-Mixup (Greenewald et
al. 2023, Sec. 5) 20 trials per table cell. Small networks (the spirals MLP, random-feature logistic
regression of Carratino et al. 2020, App. B.3, LeNet on 8x8 digits) spend their time in Python and
kernel-launch overhead, so :func:`train_batched` trains M of them as one stacked ensemble: every
parameter gets a leading member axis, layers run as batched matrix products (``torch.baddbmm``) or
grouped convolutions, one backward pass serves all members (their parameters are disjoint, so each
gets exactly its own gradient) and torch's fused SGD / Adam kernels update all members at once.

Randomness protocol: the one of :mod:`vicinal.lab.trainer` (protocol 2), member by member. Member m
has its own initial weights (``derive_seed(seed, "init")``), data (``effective_data_seed``), epoch
orders (its ``"data"`` generator) and mixing draws (its ``"mix"`` generator). A mixer call consumes a
fixed number of uniforms, and consecutive ``torch.rand`` calls continue one stream, so at the start
of each epoch member m draws all its uniforms for the epoch in one call; lambdas (Beta quantiles),
random orders (argsort) and weighted-sampling partners (inverse CDF) then come from them for all
members at once; k-Mixup members of one k and batch size get their optimal-transport costs from one
batched product and share one loop of Hungarian solves. Only the kNN / weighted-sampling graph
matrices run member by member. So member m ends with the parameters and metrics ``trainer.train(config_m)``
gives, up to floating-point rounding.

Rounding: the fused Adam kernel rounds differently from torch's default Adam in the last bit.
Training amplifies such differences now and then: over 100 spirals runs of 160 Adam steps, the
median test-NLL gap to ``trainer.train`` was 3e-9 and the largest 2e-3 (seed 42), and that run
equals ``trainer.train`` with ``torch.optim.Adam(fused=True)`` bit for bit.

What may differ inside one batch: ``seed``, ``data_seed``, ``method`` (erm, mixup, local_mixup,
kmixup, modified_data), ``alpha``, ``graph``, ``eps``, ``n_neighbors``, ``decay``, ``sampling``,
``k``, ``lam_mode``, ``truncate``, ``reduction``, ``lr``, ``momentum``, ``weight_decay``, the
schedule settings, ``batch_size`` / ``kept_pairs`` and the evaluation settings. What must be equal
(:data:`SHARED_SETTINGS`): data set, model and their parameters, optimizer and number of epochs.
Members with different batch sizes are padded to the largest one; padded samples get loss weight
0, and a member with fewer steps per epoch sits out the last steps: its parameters, optimizer state
and random streams are left exactly as they are.

Not batched (:func:`run_batch` trains them one at a time with ``trainer.train`` and logs why):
``approx_mixup``, manifold mixing (``mix_layers`` other than ``[0]``), and models with layers that
have no stacked form, BatchNorm above all (:class:`UnsupportedModelError`).
"""

from __future__ import annotations

import json
import logging
import math
import sys
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

import vicinal as v
from vicinal.graphs import Exponential, Threshold
from vicinal.lam import lam_from_uniforms
from vicinal.pairing import GraphPairing, check_block_batch, match_next_blocks, order_from_uniforms
from vicinal.rescale import fit_stats, modified_data
from vicinal.targets import dense_targets

from . import trainer
from .config import MIXING_METHODS, RunConfig, derive_seed, make_mixer, make_optimizer, make_schedule
from .datasets import Dataset, load_dataset
from .models import StagedModel, _FourierFeatures, build_model

__all__ = [
    "BATCHED_METHODS",
    "SHARED_SETTINGS",
    "StackedAdam",
    "StackedModel",
    "StackedSGD",
    "UnsupportedModelError",
    "batch_group_key",
    "check_batchable",
    "fit_batched",
    "member_bytes",
    "run_batch",
    "sequential_reason",
    "train_batched",
]

logger = logging.getLogger(__name__)

#: Methods :func:`train_batched` trains; any mix of them may share one batch.
BATCHED_METHODS = ("erm", "mixup", "local_mixup", "kmixup", "modified_data")
#: Settings every member of one batch must share (they fix the tensor shapes and the update rule).
SHARED_SETTINGS = ("dataset", "dataset_params", "model", "model_params", "optimizer", "epochs")
#: Default memory budget of one chunk of members, in bytes (see :func:`member_bytes`).
MEMORY_BUDGET = 2 * 1024 ** 3
#: Largest per-epoch copy of the members' shuffled training sets, in bytes (see ``_Step.start_epoch``).
EPOCH_COPY_BUDGET = 256 * 1024 ** 2

_ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults, which config.make_optimizer uses
_ADAM_EPS = 1e-8


class UnsupportedModelError(ValueError):
    """A model that cannot be trained as a stacked ensemble.

    Attributes
    ----------
    model : str
        The model's registry name.
    reason : str
        Which layer stops it and why.
    """

    def __init__(self, model: str, reason: str):
        self.model, self.reason = model, reason
        super().__init__(f"model {model!r} cannot be trained as a batched ensemble: {reason}")


# --------------------------------------------------------------------------- stacked model

_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.GELU, nn.Sigmoid, nn.ELU, nn.Identity)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d)
_LAYERS = (nn.Linear, nn.Conv2d, nn.Flatten, _FourierFeatures)


def _is_container(module: nn.Module) -> bool:
    """Modules whose forward applies their children in order (and nothing else)."""
    if isinstance(module, StagedModel):
        return type(module).forward is StagedModel.forward
    return type(module) in (nn.Sequential, nn.ModuleList)


def _unsupported_reason(path: str, module: nn.Module) -> str | None:
    where = path or "the model itself"
    if isinstance(module, nn.modules.batchnorm._NormBase):
        return (f"layer {where} is a {type(module).__name__}: it normalises with each member's own batch "
                f"statistics and updates running buffers, which the stacked forward does not reproduce")
    if _is_container(module) or isinstance(module, _ELEMENTWISE + _POOLS + (nn.Linear, _FourierFeatures)):
        return None
    if isinstance(module, nn.Flatten):
        if (module.start_dim, module.end_dim) != (1, -1):
            return f"layer {where} flattens other dims than 1..-1"
        return None
    if isinstance(module, nn.Conv2d):
        if module.groups != 1 or module.padding_mode != "zeros":
            return f"layer {where} is a grouped or non-zero-padded Conv2d"
        return None
    return f"layer {where} is a {type(module).__name__}, which has no stacked implementation"


def check_batchable(model: nn.Module, name: str) -> None:
    """Raise :class:`UnsupportedModelError` naming ``name`` and the first layer that cannot be stacked.

    Supported: :class:`~vicinal.lab.models.StagedModel` built from Sequential, Linear, Conv2d
    (groups 1, zero padding), Flatten, ReLU/Tanh/GELU/Sigmoid/ELU, max/average pooling and random
    Fourier features, i.e. the ``mlp``, ``rff`` and ``lenet`` models. BatchNorm is reported first,
    wherever it sits.
    """
    modules = list(model.named_modules())
    ordered = sorted(modules, key=lambda item: not isinstance(item[1], nn.modules.batchnorm._NormBase))
    for path, module in ordered:
        reason = _unsupported_reason(path, module)
        if reason is not None:
            raise UnsupportedModelError(name, reason)


class StackedModel:
    """M models of one architecture, their parameters stacked on a leading member axis.

    ``stacked(x)`` maps inputs ``(M, B, ...)`` to outputs ``(M, B, ...)``: member m's slice is
    ``models[m](x[m])`` up to rounding. Linear layers are ``torch.baddbmm``, convolutions one grouped
    ``conv2d`` with ``groups = M`` (measured faster on CPU than ``torch.func.functional_call`` under
    ``torch.vmap``; see ``benchmarks/ensemble_speed.py``).

    Parameters
    ----------
    models : sequence of StagedModel
        Same architecture (checked by parameter and buffer names and shapes).
    name : str
        Registry name, for error messages.

    Attributes
    ----------
    params : dict of str to Tensor
        Leaf tensors ``(M, *shape)`` that require grad, keyed by the models' parameter names.
    buffers : dict of str to Tensor
        Stacked buffers (e.g. the fixed random features of ``rff``).
    """

    def __init__(self, models: Sequence[nn.Module], name: str):
        if not models:
            raise ValueError("StackedModel needs at least one model, got none")
        self.template, self.name = models[0], name
        check_batchable(self.template, name)
        self.params = {key: torch.stack(values).requires_grad_(True)
                       for key, values in _collect(models, "named_parameters", name).items()}
        self.buffers = {key: torch.stack(values) for key, values in _collect(models, "named_buffers", name).items()}

    def __len__(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def __call__(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs ``(M, B, ...)`` of inputs ``(M, B, ...)``; with ``members`` (indices, A of them), only
        those members run, on inputs ``(A, B, ...)``."""
        tensors = {**self.params, **self.buffers}
        if members is not None:
            tensors = {key: value.index_select(0, members) for key, value in tensors.items()}
        return self._apply(self.template, "", x, tensors)

    def load_member(self, member: int, model: nn.Module) -> nn.Module:
        """Copy member ``member``'s parameters into ``model`` (built like the members) and return it."""
        with torch.no_grad():
            for key, param in model.named_parameters():
                param.copy_(self.params[key][member])
        return model

    def _apply(self, module: nn.Module, prefix: str, h: torch.Tensor, tensors: dict) -> torch.Tensor:
        if _is_container(module):
            for child_name, child in module.named_children():
                h = self._apply(child, f"{prefix}{child_name}.", h, tensors)
            return h
        if isinstance(module, nn.Linear):
            return _StackedLinear.apply(h, tensors[prefix + "weight"], tensors.get(prefix + "bias"))
        if isinstance(module, nn.Flatten):
            return h.flatten(2)
        if isinstance(module, nn.Conv2d):
            return _conv(module, tensors[prefix + "weight"], tensors.get(prefix + "bias"), h)
        if isinstance(module, _FourierFeatures):
            projection, offset = tensors[prefix + "projection"], tensors[prefix + "offset"]
            return torch.cos(torch.baddbmm(offset.unsqueeze(1), h.flatten(2), projection.transpose(1, 2))) \
                / math.sqrt(offset.shape[1])
        if isinstance(module, _POOLS):
            return module(h.flatten(0, 1)).unflatten(0, h.shape[:2])
        return module(h)  # element-wise activation


class _StackedLinear(torch.autograd.Function):
    """``h @ weight[m].T + bias[m]`` per member, with a backward that writes the weight gradient in place.

    With autograd's own backward of ``baddbmm(bias, h, weight.transpose(1, 2))`` the weight gradient
    comes out transposed and is copied into the parameter's layout at every step; here it is computed
    in the orientation whose result is contiguous (or, for a layer wider at its output, in the faster
    orientation and then transposed, a small copy). Measured on 100 spirals MLPs, one thread: forward
    + backward 6.2 -> 3.9 ms (``benchmarks/ensemble_speed.py`` times the whole step).
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(h, weight)
        ctx.has_bias = bias is not None
        if bias is None:
            return torch.bmm(h, weight.transpose(1, 2))
        return torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        h, weight = ctx.saved_tensors
        grad_h = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        grad_weight = None
        if ctx.needs_input_grad[1]:
            if weight.shape[1] > weight.shape[2]:  # out > in: a narrow gemm output is slow, so transpose after
                grad_weight = torch.bmm(h.transpose(1, 2), grad).transpose(1, 2).contiguous()
            else:
                grad_weight = torch.bmm(grad.transpose(1, 2), h)
        grad_bias = grad.sum(1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_h, grad_weight, grad_bias


def _conv(module: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
    """Stacked convolution as one grouped ``conv2d``: member m's channels form group m."""
    members, batch = h.shape[:2]
    grouped = h.transpose(0, 1).reshape(batch, members * h.shape[2], *h.shape[3:])
    out = F.conv2d(grouped, weight.flatten(0, 1), None if bias is None else bias.flatten(),
                   module.stride, module.padding, module.dilation, groups=members)
    return out.reshape(batch, members, weight.shape[1], *out.shape[2:]).transpose(0, 1)


def _collect(models: Sequence[nn.Module], method: str, name: str) -> dict[str, list[torch.Tensor]]:
    first = [(key, tuple(t.shape)) for key, t in getattr(models[0], method)()]
    out: dict[str, list[torch.Tensor]] = {key: [] for key, _ in first}
    for i, model in enumerate(models):
        tensors = list(getattr(model, method)())
        if [(key, tuple(t.shape)) for key, t in tensors] != first:
            raise ValueError(f"models[{i}] of {name!r} has other {method[6:]} than models[0]; "
                             f"members of one batch need one architecture")
        for key, tensor in tensors:
            out[key].append(tensor.detach())
    return out


# --------------------------------------------------------------------------- optimisers


def _runs(members: list[int]) -> list[tuple[int, int]]:
    """Maximal ranges ``[start, stop)`` of consecutive member indices in sorted ``members``."""
    runs: list[tuple[int, int]] = []
    for m in members:
        if runs and runs[-1][1] == m:
            runs[-1] = (runs[-1][0], m + 1)
        else:
            runs.append((m, m + 1))
    return runs


class _StackedOptimizer:
    """Groups the active members by hyper-parameters; each group's fused update runs on slices of the stacks.

    Members with equal hyper-parameters (and, for Adam, equal step counts) that sit next to each other
    on the member axis form one range, and a range is updated through the slices ``t[start:stop]`` of
    the stacked tensors: one fused call on a few large tensors rather than on one view per member and
    parameter (measured: the per-member form made Adam's step 2.5 ms instead of 0.4 ms for 100 MLPs).
    :func:`fit_batched` orders each chunk's members so that equal settings lie together. The ranges
    depend only on the settings and the active members, so the last plan is cached.
    """

    def __init__(self, params: dict[str, torch.Tensor], settings: list[Sequence[float]]):
        self.params = list(params.values())
        self.settings = settings
        self._key, self._plan = None, []

    def plan(self, lr: Sequence[float], active: Sequence[int], *extra: Sequence[float]) -> list[tuple[tuple, int, int]]:
        """``(hyper-parameters, start, stop)`` for each range of active members updated together."""
        key = (tuple(lr), tuple(active), *(tuple(e) for e in extra))
        if key != self._key:
            groups: dict[tuple, list[int]] = {}
            for m in active:
                values = (float(lr[m]), *(float(s[m]) for s in self.settings), *(float(e[m]) for e in extra))
                groups.setdefault(values, []).append(m)
            self._key = key
            self._plan = [(values, start, stop) for values, members in groups.items()
                          for start, stop in _runs(sorted(members))]
        return self._plan


class StackedSGD(_StackedOptimizer):
    """``torch.optim.SGD`` (L2 weight decay, momentum, dampening 0, no Nesterov) for stacked members.

    The optimiser of k-Mixup (Greenewald et al. 2023, Sec. 5) and mixup (Zhang et al. 2018), with a
    learning rate, momentum and weight decay per member. Each step runs torch's fused CPU kernel
    (``torch._fused_sgd_``, what ``torch.optim.SGD(fused=True)`` calls) once per range of members
    with equal hyper-parameters, on slices of the stacks; members not in ``active`` are not passed to
    it, so their parameters and momentum stay exactly as they were. Momentum buffers start at 0, so
    the first step sets them to the gradient, as torch does.
    """

    def __init__(self, params: dict[str, torch.Tensor], *, momentum: Sequence[float], weight_decay: Sequence[float]):
        self.buffers = [torch.zeros_like(p) for p in params.values()]
        super().__init__(params, [list(weight_decay), list(momentum)])

    @torch.no_grad()
    def step(self, lr: Sequence[float], active: Sequence[int]) -> None:
        """One update of the members in ``active`` with their learning rates ``lr[m]``."""
        for (rate, decay, momentum), a, b in self.plan(lr, active):
            torch._fused_sgd_([p[a:b] for p in self.params], [p.grad[a:b] for p in self.params],
                              [buffer[a:b] for buffer in self.buffers] if momentum else [],
                              weight_decay=decay, momentum=momentum, lr=rate, dampening=0.0, nesterov=False,
                              maximize=False, is_first_step=False)


class StackedAdam(_StackedOptimizer):
    """``torch.optim.Adam`` (betas 0.9 / 0.999, eps 1e-8, L2 weight decay) for stacked members.

    The optimiser of Local Mixup's spirals runs (Baena et al. 2022, Sec. V-A), with a learning rate
    and weight decay per member. Each step runs torch's fused CPU kernel (``torch._fused_adam_``,
    what ``torch.optim.Adam(fused=True)`` calls) once per range of members with equal
    hyper-parameters and equal step counts (the bias correction reads one count per tensor). Every
    member keeps its own step count; members not in ``active`` are not passed to the kernel, so their
    parameters, moments and step count stay exactly as they were.
    """

    def __init__(self, params: dict[str, torch.Tensor], *, weight_decay: Sequence[float]):
        self.exp_avg = [torch.zeros_like(p) for p in params.values()]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params.values()]
        self.counts = torch.zeros(len(weight_decay))  # steps taken, per member
        super().__init__(params, [list(weight_decay)])

    @torch.no_grad()
    def step(self, lr: Sequence[float], active: Sequence[int]) -> None:
        """One update of the members in ``active`` with their learning rates ``lr[m]``."""
        self.counts[torch.as_tensor(active)] += 1.0  # the kernel reads the count; torch.optim increments it first
        lag = (self.counts - self.counts.max()).tolist()  # groups equal counts; constant while all step
        for (rate, decay, _), a, b in self.plan(lr, active, lag):
            count = self.counts[a:a + 1].reshape(())  # 0-d view: equal for every member of the range
            torch._fused_adam_([p[a:b] for p in self.params], [p.grad[a:b] for p in self.params],
                               [t[a:b] for t in self.exp_avg], [t[a:b] for t in self.exp_avg_sq], [],
                               [count] * len(self.params), lr=rate, beta1=_ADAM_BETAS[0], beta2=_ADAM_BETAS[1],
                               weight_decay=decay, eps=_ADAM_EPS, amsgrad=False, maximize=False)


def _make_optimizer(stacked: StackedModel, configs: list[RunConfig]):
    weight_decay = [c.weight_decay for c in configs]
    if configs[0].optimizer == "sgd":
        return StackedSGD(stacked.params, momentum=[c.momentum for c in configs], weight_decay=weight_decay)
    return StackedAdam(stacked.params, weight_decay=weight_decay)


class _Schedules:
    """Each member's learning rate per epoch, from the very schedule ``config.make_schedule`` builds."""

    def __init__(self, configs: list[RunConfig]):
        self.optimizers = []
        self.schedules = []
        for config in configs:
            optimizer = make_optimizer([torch.zeros(1, requires_grad=True)], config)
            self.schedules.append(make_schedule(optimizer, config))
            optimizer.step()  # no gradient: a no-op that tells the schedule the optimiser has stepped
            self.optimizers.append(optimizer)

    def lr(self) -> list[float]:
        return [o.param_groups[0]["lr"] for o in self.optimizers]

    def step(self) -> None:
        for schedule in self.schedules:
            schedule.step()


# --------------------------------------------------------------------------- members and data


@dataclass
class _Member:
    """One run of the ensemble: its config, data, batch size and random streams."""

    config: RunConfig
    dataset: Dataset
    stats: Any
    batch_size: int
    steps_per_epoch: int
    mixer: Any
    data_generator: torch.Generator
    mix_generator: torch.Generator


def _needs_stats(config: RunConfig, dataset: Dataset) -> bool:
    return config.method == "modified_data" or trainer.rescaled_applies(config, dataset)


def _make_member(config: RunConfig, dataset: Dataset, stats_cache: dict) -> _Member:
    stats = None
    if _needs_stats(config, dataset):
        if id(dataset) not in stats_cache:
            stats_cache[id(dataset)] = fit_stats((dataset.x_train, dataset.y_train), num_classes=dataset.num_classes)
        stats = stats_cache[id(dataset)]
    batch_size = trainer.effective_batch_size(dataset, config)
    mixer = make_mixer(config, dataset.num_classes)
    if mixer is not None and not isinstance(mixer.pairing, GraphPairing):
        check_block_batch(batch_size, mixer.pairing.k)  # refuse before training, as the first step would
    return _Member(
        config=config, dataset=dataset, stats=stats, batch_size=batch_size,
        steps_per_epoch=dataset.x_train.shape[0] // batch_size,
        mixer=mixer,
        data_generator=torch.Generator().manual_seed(derive_seed(config.seed, "data")),
        mix_generator=torch.Generator().manual_seed(derive_seed(config.seed, "mix")),
    )


def _training_sources(members: list[_Member]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stacked distinct training sets ``(S, N, ...)``, dense targets ``(S, N, ...)`` and each member's source.

    ERM on modified data (Carratino et al. 2020, eq. 20) shrinks every sample on its own, so the
    whole modified training set is computed once per member instead of once per batch.
    """
    inputs, targets, source_of, index = [], [], [], {}
    for member in members:
        data, config = member.dataset, member.config
        key = (id(data), config.alpha) if config.method == "modified_data" else (id(data), None)
        if key not in index:
            index[key] = len(inputs)
            if config.method == "modified_data":
                x, t = modified_data(data.x_train, data.y_train, stats=member.stats, alpha=config.alpha)
            else:
                x = data.x_train
                t = dense_targets(data.y_train, x.shape[0], num_classes=data.num_classes, dtype=x.dtype)
            inputs.append(x)
            targets.append(t)
        source_of.append(index[key])
    return torch.stack(inputs), torch.stack(targets), torch.tensor(source_of)


# --------------------------------------------------------------------------- one step


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


# --------------------------------------------------------------------------- training


def _train_chunk(members: list[_Member], *, progress: bool) -> list[tuple[nn.Module, dict[str, Any]]]:
    """Train one chunk of members together; each trained model with its ``trainer.evaluate_run`` metrics."""
    configs = [m.config for m in members]
    models = [_build(m.config, m.dataset) for m in members]
    stacked = StackedModel(models, configs[0].model)
    step = _Step(members, stacked)
    optimizer, schedules = _make_optimizer(stacked, configs), _Schedules(configs)
    steps = torch.tensor([m.steps_per_epoch for m in members])
    n_train = members[0].dataset.x_train.shape[0]
    history = [{"train_loss": [], "test_error_curve": []} for _ in members]

    epochs = range(configs[0].epochs)
    if progress:
        from tqdm.auto import tqdm
        epochs = tqdm(epochs, desc=f"ensemble of {len(members)}", unit="epoch", leave=False)
    for epoch in epochs:
        step.start_epoch(torch.stack([torch.randperm(n_train, generator=m.data_generator) for m in members]))
        totals = torch.zeros(len(members), dtype=torch.float64)
        lr = schedules.lr()
        for s in range(int(steps.max())):
            active = torch.nonzero(s < steps).flatten()
            everyone = len(active) == len(members)
            x, t, valid = step.batch(s, active, everyone)
            losses = step.loss(x, t, valid, active, everyone, s)
            for p in stacked.params.values():
                p.grad = None
            losses.sum().backward()
            optimizer.step(lr, active.tolist())
            totals[active] += losses.detach().to(torch.float64)
        schedules.step()
        for m, member in enumerate(members):
            history[m]["train_loss"].append(float(totals[m]) / max(member.steps_per_epoch, 1))
        _record_test_errors(stacked, members, history, epoch)
        if progress:
            epochs.set_postfix(loss=f"{float(totals.sum()) / float(steps.sum()):.4f}")

    trained = [stacked.load_member(i, model) for i, model in enumerate(models)]
    rows = 4 * int(step.batch_sizes.max())  # a training batch fits with its gradients: 4x fits without
    test_outputs = _stacked_predict(stacked, torch.stack([m.dataset.x_test for m in members]), rows)
    train_outputs = _stacked_predict(stacked, torch.stack([m.dataset.x_train for m in members]), rows)
    return [(model, _finish(model, member, history[i], test_outputs[i], train_outputs[i]))
            for i, (model, member) in enumerate(zip(trained, members))]


@torch.no_grad()
def _stacked_predict(stacked: StackedModel, x: torch.Tensor, rows: int) -> torch.Tensor:
    """Outputs ``(M, N, ...)`` of member m on ``x[m]`` for inputs ``(M, N, ...)``, ``rows`` samples at a time."""
    return torch.cat([stacked(chunk) for chunk in x.split(rows, dim=1)], dim=1)


def _build(config: RunConfig, dataset: Dataset) -> nn.Module:
    """The member's model as ``trainer.train`` builds it (seeded by ``derive_seed(seed, "init")``)."""
    return build_model(config.model, input_shape=dataset.input_shape, num_outputs=_num_outputs(dataset),
                       seed=derive_seed(config.seed, "init"), **config.model_params)


def _num_outputs(dataset: Dataset) -> int:
    if dataset.num_classes is not None:
        return dataset.num_classes
    return 1 if dataset.y_train.ndim == 1 else dataset.y_train.shape[1]


@torch.no_grad()
def _record_test_errors(stacked: StackedModel, members: list[_Member], history: list[dict], epoch: int) -> None:
    """The test-error curve of ``trainer.train`` (every ``eval_every`` epochs), all members in one forward."""
    due = [i for i, m in enumerate(members) if m.config.eval_every and m.dataset.num_classes is not None
           and (epoch + 1) % m.config.eval_every == 0]
    if not due:
        return
    logits = stacked(torch.stack([m.dataset.x_test for m in members]))
    for i in due:
        history[i]["test_error_curve"].append(
            v.metrics.error_rate(logits[i], members[i].dataset.y_test, from_logits=True))


def _finish(model: nn.Module, member: _Member, history: dict, test_outputs: torch.Tensor,
            train_outputs: torch.Tensor) -> dict[str, Any]:
    model.train()  # trainer.train evaluates a model left in training mode
    results = trainer.evaluate_run(model, member.dataset, member.config, member.stats,
                                   test_outputs=test_outputs, train_outputs=train_outputs)
    results.update(history)
    results.update(batch_size=member.batch_size, steps=member.steps_per_epoch * member.config.epochs)
    return results


# --------------------------------------------------------------------------- public API


def sequential_reason(config: RunConfig) -> str | None:
    """Why ``config`` cannot join a batch (method or manifold mixing), or None when it can."""
    if config.method not in BATCHED_METHODS:
        return f"method {config.method!r} is not batched (batched methods: {', '.join(BATCHED_METHODS)})"
    if config.method in MIXING_METHODS and tuple(config.mix_layers) != (0,):
        return f"manifold mixing (mix_layers={list(config.mix_layers)}) is not batched; only input mixing [0] is"
    return None


def _as_configs(configs: Any) -> list[RunConfig]:
    if isinstance(configs, (dict, RunConfig, str, bytes)) or not isinstance(configs, Sequence):
        raise TypeError(f"configs must be a list of config dicts or RunConfigs, got {type(configs).__name__}")
    if not configs:
        raise ValueError("configs is empty: train_batched needs at least one config")
    out = []
    for i, config in enumerate(configs):
        if isinstance(config, dict):
            config = RunConfig.from_dict(config)
        elif not isinstance(config, RunConfig):
            raise TypeError(f"configs[{i}] must be a dict or RunConfig, got {type(config).__name__}")
        reason = sequential_reason(config)
        if reason is not None:
            raise ValueError(f"configs[{i}]: {reason}; train it with trainer.train, or use run_batch, which falls back")
        out.append(config)
    first = out[0].to_dict()
    for i, config in enumerate(out[1:], start=1):
        values = config.to_dict()
        for name in SHARED_SETTINGS:
            if values[name] != first[name]:
                raise ValueError(f"configs[{i}] has {name}={values[name]!r} but configs[0] has {first[name]!r}; "
                                 f"members of one batch must share {', '.join(SHARED_SETTINGS)} "
                                 f"(group them with batch_group_key)")
    return out


def _load_datasets(configs: list[RunConfig], dataset: Dataset | None) -> list[Dataset]:
    """Each member's data: the given data set, or ``load_dataset`` once per distinct data seed."""
    if dataset is not None:
        if not isinstance(dataset, Dataset):
            raise TypeError(f"dataset must be a vicinal.lab.datasets.Dataset or None, got {type(dataset).__name__}")
        return [dataset] * len(configs)
    cache: dict[int, Dataset] = {}
    for config in configs:
        seed = config.effective_data_seed
        if seed not in cache:
            cache[seed] = load_dataset(config.dataset, seed=seed, **config.dataset_params)
    datasets = [cache[c.effective_data_seed] for c in configs]
    first = datasets[0]
    for config, data in zip(configs, datasets):
        if data.x_train.shape != first.x_train.shape or data.y_train.shape != first.y_train.shape \
                or data.x_test.shape != first.x_test.shape:
            raise ValueError(f"data_seed {config.effective_data_seed} gives training data of shape "
                             f"{tuple(data.x_train.shape)} but data_seed {configs[0].effective_data_seed} gives "
                             f"{tuple(first.x_train.shape)}; members of one batch need equal shapes")
    return datasets


def member_bytes(model: nn.Module, input_shape: Sequence[int], batch_size: int) -> int:
    """Estimated training memory of one member: parameters, gradients, optimiser state, activations.

    Six float32 copies of the parameters (weights, gradient, two optimiser buffers, two temporaries)
    plus four copies of every layer's output for ``batch_size`` samples (forward values kept for the
    backward pass, their gradients, the mixed inputs and slack).
    """
    n_params = sum(p.numel() for p in model.parameters())
    sizes = [math.prod(input_shape)]
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel()))
             for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    return 4 * (6 * n_params + 4 * batch_size * sum(sizes))


def _chunk_size(members: list[_Member], max_members: int | None) -> int:
    if max_members is not None:
        return min(max_members, len(members))
    template = _build(members[0].config, members[0].dataset)
    largest = max(m.batch_size for m in members)
    per_member = member_bytes(template, members[0].dataset.input_shape, largest)
    size = max(1, min(len(members), MEMORY_BUDGET // per_member))
    logger.info("about %.1f MiB per member (batch %d); budget %.0f MiB -> chunks of %d",
                per_member / 2 ** 20, largest, MEMORY_BUDGET / 2 ** 20, size)
    return size


def train_batched(configs: Sequence[dict | RunConfig], *, dataset: Dataset | None = None,
                  max_members: int | None = None, progress: bool = False) -> list[dict[str, Any]]:
    """Train M configs at once as a stacked ensemble; return ``trainer.train``'s metrics for each.

    Member m follows the randomness protocol of :mod:`vicinal.lab.trainer` with its own seed, data,
    hyper-parameters and batch size, so its result equals ``trainer.train(configs[m])`` up to
    floating-point rounding (see the module docstring for what may differ inside one batch). This
    serves the averaged sweeps of Baena et al. 2022 (Fig. 3, 1000 runs per eps) and Greenewald et al.
    2023 (20 trials per cell).

    Parameters
    ----------
    configs : sequence of dict or RunConfig
        Non-empty; methods in :data:`BATCHED_METHODS`, input mixing only, equal
        :data:`SHARED_SETTINGS`.
    dataset : Dataset, optional
        Pre-loaded data used by every member (must be what the configs name); otherwise each
        distinct ``effective_data_seed`` is loaded once.
    max_members : int, optional
        Most members trained together; by default as many as fit :data:`MEMORY_BUDGET` by
        :func:`member_bytes`. The chunk size is logged (logger ``vicinal.lab.ensemble``, INFO) and
        printed with ``progress=True``. Chunking does not change any member's result.
    progress : bool
        A tqdm bar over the epochs of each chunk.

    Returns
    -------
    list of dict
        One metrics dict per config, in order, with the keys of ``trainer.train``.

    Raises
    ------
    ValueError
        Empty ``configs``, a method that is not batched, configs that differ in a shared setting,
        data of different shapes, a bad ``max_members``.
    UnsupportedModelError
        The model has a layer without a stacked form (BatchNorm: PreActResNet18, DenseNetBC).
    """
    return [metrics for _, metrics in fit_batched(configs, dataset=dataset, max_members=max_members,
                                                  progress=progress)]


def fit_batched(configs: Sequence[dict | RunConfig], *, dataset: Dataset | None = None,
                max_members: int | None = None, progress: bool = False) -> list[tuple[nn.Module, dict[str, Any]]]:
    """:func:`train_batched`, also returning each member's trained model (a ``build_model`` network).

    Returns
    -------
    list of (nn.Module, dict)
        Member m's model, holding its final parameters, and its metrics, in the order of ``configs``.
    """
    configs = _as_configs(configs)
    if max_members is not None and (isinstance(max_members, bool) or not isinstance(max_members, int)
                                    or max_members < 1):
        raise ValueError(f"max_members must be a positive int or None, got {max_members!r}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, got {progress!r}")
    datasets = _load_datasets(configs, dataset)
    check_batchable(_build(configs[0], datasets[0]), configs[0].model)
    stats_cache: dict = {}
    members = [_make_member(c, d, stats_cache) for c, d in zip(configs, datasets)]
    # Members with equal steps per epoch and optimiser settings side by side: the optimisers update
    # each such range through slices of the stacks (chunking and order change no member's result).
    order = sorted(range(len(members)), key=lambda i: _update_key(members[i]))
    members = [members[i] for i in order]
    size = _chunk_size(members, max_members)
    chunks = [members[i:i + size] for i in range(0, len(members), size)]
    if progress:
        print(f"train_batched: {len(members)} members in {len(chunks)} chunk(s) of at most {size}", file=sys.stderr)
    trained = [pair for chunk in chunks for pair in _train_chunk(chunk, progress=progress)]
    results: list[Any] = [None] * len(members)
    for position, i in enumerate(order):
        results[i] = trained[position]
    return results


def _update_key(member: _Member) -> tuple:
    """What decides which members a fused optimiser call can update together."""
    c = member.config
    return (member.steps_per_epoch, c.lr, c.schedule, c.step_size, c.gamma, tuple(c.milestones), c.weight_decay,
            c.momentum)


def batch_group_key(config: dict) -> str:
    """``run_sweep``'s ``group_key``: configs with equal keys can share one :func:`train_batched` call.

    The key holds the :data:`SHARED_SETTINGS` and what sets the batch size (``batch_size``; with
    ``kept_pairs`` also the graph settings), so that a chunk holds members of one batch size: a
    member with a larger batch has fewer steps per epoch and sits the remaining steps out, which
    costs nothing but leaves the batch less full. Configs that cannot be batched (see
    :func:`sequential_reason`) get a key starting with ``"sequential:"`` so they never join a batch.
    """
    run = RunConfig.from_dict(config) if isinstance(config, dict) else config
    if not isinstance(run, RunConfig):
        raise TypeError(f"config must be a dict or RunConfig, got {type(config).__name__}")
    values = run.to_dict()
    names = SHARED_SETTINGS + ("batch_size", "kept_pairs")
    if run.kept_pairs and run.method == "local_mixup":
        names += ("graph", "eps", "decay")
    shared = json.dumps({name: values[name] for name in names}, sort_keys=True)
    return ("sequential:" if sequential_reason(run) else "batched:") + shared


def run_batch(configs: list[dict], *, model_dir: str | None = None) -> list[dict[str, Any]]:
    """``run_sweep``'s ``batch_fn``: train configs batched where possible, one at a time otherwise.

    Configs are grouped by :func:`batch_group_key`; each batchable group goes to
    :func:`fit_batched`. Configs that cannot be batched (method, manifold mixing, or a model
    without a stacked form such as the BatchNorm networks) are trained with ``trainer.train``, and
    the fallback is logged as a warning naming the reason. Rows are the same either way. With
    ``model_dir``, every trained model is also saved there as ``trainer.run_and_save`` does (for
    figures); pass it with ``functools.partial``.

    Use as ``run_sweep(configs, batch_fn=run_batch, group_key=batch_group_key, max_batch=100, ...)``.
    """
    if not isinstance(configs, (list, tuple)):
        raise TypeError(f"configs must be a list of config dicts, got {type(configs).__name__}")
    groups: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        groups.setdefault(batch_group_key(config), []).append(i)
    results: list[Any] = [None] * len(configs)
    for key, indices in groups.items():
        group = [configs[i] for i in indices]
        for i, result in zip(indices, _run_group(key, group, model_dir)):
            results[i] = result
    return results


def _run_group(key: str, group: list[dict], model_dir: str | None) -> list[dict[str, Any]]:
    def one_at_a_time(config: dict) -> dict[str, Any]:
        return trainer.train(config) if model_dir is None else trainer.run_and_save(config, model_dir=model_dir)

    if key.startswith("sequential:"):
        reasons: dict[str, list[dict]] = {}
        for config in group:
            reasons.setdefault(sequential_reason(RunConfig.from_dict(config)), []).append(config)
        for reason, configs in reasons.items():
            _report_fallback(reason, configs)
        return [one_at_a_time(config) for config in group]
    try:
        fitted = fit_batched(group)
    except UnsupportedModelError as err:
        _report_fallback(str(err), group)
        return [one_at_a_time(config) for config in group]
    if model_dir is not None:
        for config, (model, _) in zip(group, fitted):
            trainer.save_model(model, config, model_dir)
    return [metrics for _, metrics in fitted]


def _report_fallback(reason: str, configs: list[dict]) -> None:
    """One warning per reason and group: how many configs (which seeds) train one at a time, and why."""
    seeds = ", ".join(str(c.get("seed")) for c in configs)
    logger.warning("training %d config(s) one at a time with trainer.train (seeds %s): %s", len(configs), seeds, reason)
