"""The batched training loop: :func:`train_batched` / :func:`fit_batched` train M configs as one stacked ensemble.

What may differ inside one batch: ``seed``, ``data_seed``, ``method`` (erm, mixup, local_mixup,
kmixup, modified_data), ``alpha``, ``graph``, ``eps``, ``n_neighbors``, ``decay``, ``sampling``,
``k``, ``lam_mode``, ``truncate``, ``reduction``, ``lr``, ``momentum``, ``weight_decay``, the
schedule settings, ``batch_size`` / ``kept_pairs`` and the evaluation settings. What must be equal
(:data:`SHARED_SETTINGS`): data set, model and their parameters, optimizer and number of epochs.
Members with different batch sizes are padded to the largest one; padded samples get loss weight
0, and a member with fewer steps per epoch sits out the last steps: its parameters, optimizer state
and random streams are left exactly as they are. Members are trained in chunks that fit
:data:`MEMORY_BUDGET`; chunking does not change any member's result.
"""

from __future__ import annotations

import logging
import math
import sys
from typing import Any, Sequence

import torch
from torch import nn

import vicinal as v
from vicinal._checks import all_finite

from .. import trainer
from ..config import MIXING_METHODS, RunConfig
from ..corrupted_eval import check_corrupted_files
from ..datasets import Dataset
from .layers import StackedModel, check_batchable
from .members import _build, _load_datasets, _make_member, _Member
from .optim import _make_optimizer, _Schedules
from .step import _Step

logger = logging.getLogger(__package__)  # "vicinal.lab.ensemble", the logger's name before the split

#: Methods :func:`train_batched` trains; any mix of them may share one batch.
BATCHED_METHODS = ("erm", "mixup", "local_mixup", "kmixup", "modified_data")
#: Settings every member of one batch must share (they fix the tensor shapes and the update rule).
SHARED_SETTINGS = ("dataset", "dataset_params", "model", "model_params", "optimizer", "epochs")
#: Default memory budget of one chunk of members, in bytes (see :func:`member_bytes`).
MEMORY_BUDGET = 2 * 1024 ** 3


def sequential_reason(config: RunConfig) -> str | None:
    """Why ``config`` cannot join a batch (method, manifold mixing, device loop, label smoothing), or None."""
    if config.method not in BATCHED_METHODS:
        return f"method {config.method!r} is not batched (batched methods: {', '.join(BATCHED_METHODS)})"
    if config.method in MIXING_METHODS and tuple(config.mix_layers) != (0,):
        return f"manifold mixing (mix_layers={list(config.mix_layers)}) is not batched; only input mixing [0] is"
    if config.loop != "host":
        return f"loop={config.loop!r} trains one run at a time on {config.device} (the trainer's device or loader loop)"
    if config.label_smoothing > 0:
        return (f"label smoothing (label_smoothing={config.label_smoothing:g}) is not batched: the stacked step "
                f"interpolates plain one-hot targets")
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
        check_corrupted_files(config)  # before training, as trainer.train does
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
    diverged: list[int | None] = [None] * len(members)  # first epoch of NaN/Inf loss or predictions (1-based)

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
            if diverged[m] is None and not math.isfinite(history[m]["train_loss"][-1]):
                diverged[m] = epoch + 1  # its own stack slices only: the other members train on unchanged
        _record_test_errors(stacked, members, history, epoch, diverged)
        if progress:
            epochs.set_postfix(loss=f"{float(totals.sum()) / float(steps.sum()):.4f}")

    trained = [stacked.load_member(i, model) for i, model in enumerate(models)]
    rows = 4 * int(step.batch_sizes.max())  # a training batch fits with its gradients: 4x fits without
    test_outputs = _stacked_predict(stacked, torch.stack([m.dataset.x_test for m in members]), rows)
    train_outputs = _stacked_predict(stacked, torch.stack([m.dataset.x_train for m in members]), rows)
    return [(model, _finish(model, member, history[i], test_outputs[i], train_outputs[i], diverged[i]))
            for i, (model, member) in enumerate(zip(trained, members))]


@torch.no_grad()
def _stacked_predict(stacked: StackedModel, x: torch.Tensor, rows: int) -> torch.Tensor:
    """Outputs ``(M, N, ...)`` of member m on ``x[m]`` for inputs ``(M, N, ...)``, ``rows`` samples at a time."""
    return torch.cat([stacked(chunk) for chunk in x.split(rows, dim=1)], dim=1)


@torch.no_grad()
def _record_test_errors(stacked: StackedModel, members: list[_Member], history: list[dict], epoch: int,
                        diverged: list[int | None]) -> None:
    """The test-error curve of ``trainer.train`` (every ``eval_every`` epochs), all members in one forward;
    a member whose predictions are not finite is marked diverged at this epoch, as ``trainer.train`` does."""
    due = [i for i, m in enumerate(members) if m.config.eval_every and m.dataset.num_classes is not None
           and (epoch + 1) % m.config.eval_every == 0 and diverged[i] is None]
    if not due:
        return
    logits = stacked(torch.stack([m.dataset.x_test for m in members]))
    for i in due:
        if not all_finite(logits[i]):
            diverged[i] = epoch + 1
            continue
        history[i]["test_error_curve"].append(
            v.metrics.error_rate(logits[i], members[i].dataset.y_test, from_logits=True))


def _finish(model: nn.Module, member: _Member, history: dict, test_outputs: torch.Tensor,
            train_outputs: torch.Tensor, diverged_at: int | None) -> dict[str, Any]:
    if diverged_at is None and not (all_finite(test_outputs) and (member.dataset.num_classes is None
                                                                  or all_finite(train_outputs))):
        diverged_at = member.config.epochs
    if diverged_at is not None:  # stored as diverged; the healthy members of the ensemble keep their rows
        return trainer.diverged_metrics(member.config, history, diverged_at, member.batch_size,
                                        member.steps_per_epoch)
    model.train()  # trainer.train evaluates a model left in training mode
    results = trainer.evaluate_run(model, member.dataset, member.config, member.stats,
                                   test_outputs=test_outputs, train_outputs=train_outputs)
    results.update(history)
    results.update(batch_size=member.batch_size, steps=member.steps_per_epoch * member.config.epochs)
    return results
