"""A sweep's configs in batches: :func:`batch_group_key` groups them, :func:`run_batch` trains each group.

Not batched (:func:`run_batch` trains them one at a time with ``trainer.train`` and logs why):
``approx_mixup``, manifold mixing (``mix_layers`` other than ``[0]``), the device and loader loops
(``loop`` other than "host"), label smoothing, and models with layers that have no stacked form, BatchNorm above all
(:class:`UnsupportedModelError`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .. import trainer
from ..config import RunConfig
from .layers import UnsupportedModelError
from .train import SHARED_SETTINGS, fit_batched, sequential_reason

logger = logging.getLogger(__package__)  # "vicinal.lab.ensemble", the logger's name before the split


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
