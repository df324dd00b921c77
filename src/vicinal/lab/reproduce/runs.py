"""Running and reading the training runs behind the experiment reproductions.

Each reproduction trains through a resumable result store (:func:`sweep_metrics`), may keep the
trained weights for figures (:func:`load_trained_model`), and reports per-seed values as
mean ± 95% CI (:func:`cell`, :func:`half_widths`).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import torch

from vicinal.alpha import calibrate_alpha

from ..config import RunConfig, stream_seed
from ..datasets import load_dataset
from ..ensemble import batch_group_key, run_batch
from ..models import build_model
from ..store import ResultStore, canonical_json, config_key
from ..sweep import run_sweep
from .base import Context, mean_ci


def sweep_metrics(ctx: Context, configs: list[dict], *, model_dir: Path | None = None,
                  store_path: Path | None = None) -> list[dict]:
    """Run (or resume) ``configs`` through a result store; return their metrics in order.

    Parameters
    ----------
    ctx : Context
        The reproduction's context: store location, number of workers, quick or full.
    configs : list of dict
        :class:`vicinal.lab.config.RunConfig` dicts, each with a ``seed``.
    model_dir : path, optional
        Also save each run's trained weights there (see :func:`load_trained_model`).
    store_path : path, optional
        Result store to use instead of ``ctx.store_path``.

    Returns
    -------
    list of dict
        The stored metrics of each config, in the order of ``configs``, plus ``"run_wall_s"``, the
        wall time the store recorded for the run (its share of the ensemble's time when batched); runs already in the store are not trained again.
    """
    configs = [json.loads(canonical_json(config)) for config in configs]
    store_path = ctx.store_path if store_path is None else Path(store_path)
    # Batched ensembles where the model allows, one at a time otherwise; weights saved when asked for.
    batch_fn = run_batch if model_dir is None else functools.partial(run_batch, model_dir=str(model_dir))
    run_sweep(configs, None, store=store_path, workers=ctx.workers, progress=not ctx.quick,
              batch_fn=batch_fn, group_key=batch_group_key, max_batch=100)
    with ResultStore(store_path) as store:
        # A batched row records its whole ensemble's wall time: each run's share is wall_s / batch_size.
        stored = {row.key: {**row.metrics, "run_wall_s": row.wall_s / row.batch_size} for row in store.rows()}
    return [stored[config_key(config)] for config in configs]


def load_trained_model(config: dict, model_dir: Path) -> tuple[torch.nn.Module, object]:
    """The model a stored run trained and the data it trained on.

    Parameters
    ----------
    config : dict
        The run's configuration, as given to :func:`sweep_metrics`.
    model_dir : path
        Where :func:`sweep_metrics` saved the weights (``<config key>.pt``).

    Returns
    -------
    (torch.nn.Module, Dataset)
        The model in eval mode, and its dataset (same seed and parameters as in training).

    Raises
    ------
    FileNotFoundError
        If no weights were saved for this config (it was run without ``model_dir``).
    """
    config = json.loads(canonical_json(config))
    weights = Path(model_dir) / f"{config_key(config)}.pt"
    if not weights.is_file():
        raise FileNotFoundError(f"no saved weights for this run at {weights}; run it through sweep_metrics with "
                                f"model_dir={str(model_dir)!r} (a store that already holds the run keeps no weights)")
    run = RunConfig.from_dict(config)
    data = load_dataset(run.dataset, seed=run.effective_data_seed, **run.dataset_params)
    model = build_model(run.model, input_shape=data.input_shape, num_outputs=data.num_classes,
                        seed=stream_seed(run.seed, "init"), **run.model_params)
    model.load_state_dict(torch.load(weights))
    return model.eval(), data


def cell(values, scale: float = 100.0, digits: int = 2) -> str:
    """'mean ± half-width' of a list of per-seed values (times ``scale``); just the value for one seed."""
    mean, half = mean_ci(values)
    if len(values) == 1:
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {half * scale:.{digits}f}"


def compute_note(metrics: list[dict]) -> str:
    """One sentence: how many training runs a section rests on and their summed wall time."""
    return (f"{len(metrics)} training runs, {sum(m['run_wall_s'] for m in metrics):.0f} s of summed run time "
            f"(runs trained in a batched ensemble count their share of its time; two processes at a time on a shared "
            f"machine). The Compute line above times only the last invocation, which "
            f"reuses runs already in the result store.")


def half_widths(samples: np.ndarray, scale: float = 100.0) -> np.ndarray | None:
    """95% CI half-widths over the first (seed) axis times ``scale``; None for one seed (no spread estimate)."""
    if samples.shape[0] < 2:
        return None
    flat = samples.reshape(samples.shape[0], -1)
    return scale * np.array([mean_ci(flat[:, i])[1] for i in range(flat.shape[1])]).reshape(samples.shape[1:])


def calibrated_alphas(x_train, ks, alphas, n_trials: int) -> dict:
    """Algorithm 1 of Greenewald et al. 2023 (Sec. 5.1): alpha_k at the xi that alpha gives k = 1.

    Parameters
    ----------
    x_train : tensor or array (n, ...)
        Training inputs the perturbations are measured on.
    ks, alphas : sequences
        Block sizes and k = 1 Beta parameters.
    n_trials : int
        Monte Carlo size of the distance estimates (the paper's N).

    Returns
    -------
    dict
        ``{(k, alpha): AlphaCalibration}``.
    """
    return {(k, alpha): calibrate_alpha(x_train, k=k, alpha=alpha, n_trials=n_trials, seed=0)
            for k in ks for alpha in alphas}
