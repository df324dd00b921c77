"""Test metrics on CIFAR-10-C / CIFAR-100-C of a model trained on clean CIFAR (Carratino et al. 2020, Fig. 5-6).

The benchmark of Hendrycks & Dietterich 2019 corrupts the clean test images with 19 corruptions at 5
severities: 95 test sets. Carratino et al. 2020 report, for Mixup and rescaled Mixup (eq. 22), the
accuracy, cross-entropy and ECE averaged over the 95 sets (Fig. 5) and, per severity, over the 19
corruptions (Fig. 6). A run with ``eval_corrupted`` set stores both; the sets are read one at a time.
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from vicinal._checks import all_finite

from .config import RunConfig
from .datasets.cifar_corrupted import CORRUPTIONS, SEVERITIES, corrupted_test_sets, require_corrupted_files
from .evaluate import classification_metrics, predict

#: The metrics averaged over the corrupted sets (the three of Fig. 5 and 6; accuracy = 1 - error).
CORRUPTED_METRICS = ("error", "nll", "ece")


def check_corrupted_files(config: RunConfig) -> None:
    """Refuse a run whose ``eval_corrupted`` directory lacks a file, before it trains (integration step, no paper).

    Raises FileNotFoundError naming the missing files and where to download them; nothing when
    ``eval_corrupted`` is empty.
    """
    if config.eval_corrupted:
        require_corrupted_files(config.dataset, config.eval_corrupted)


def corrupted_metrics(predictors: Mapping[str, nn.Module], *, dataset: str, root: Any, clean_root: Any,
                      standardize: bool, n_bins: int, batch_size: int = 2048) -> dict[str, float]:
    """Error, NLL and ECE on CIFAR-10-C / 100-C, over all 95 sets and per severity (Carratino et al. 2020, Fig. 5-6).

    For each predictor and each of the 19 corruptions x 5 severities of Hendrycks & Dietterich
    2019 (:func:`~vicinal.lab.datasets.cifar_corrupted.corrupted_test_sets`, preprocessed as the
    clean test split), the metrics of :func:`~vicinal.lab.evaluate.classification_metrics`. Each set
    is evaluated by every predictor before the next is read, in eval mode, in chunks of
    ``batch_size`` on the device of the predictor's parameters.

    Parameters
    ----------
    predictors : mapping of str to nn.Module
        Key prefix -> model, e.g. ``{"": model, "rescaled_": RescaledPredictor(model, ...)}``.
    dataset : {"cifar10", "cifar100"}
        The clean set the models were trained on.
    root : str or Path
        Directory holding CIFAR-10-C / CIFAR-100-C as distributed.
    clean_root : str or Path
        The clean set's directory, for its train statistics when ``standardize``.
    standardize : bool
        Whether the models were trained on standardised inputs.
    n_bins : int
        ECE bins.
    batch_size : int
        Images per forward pass.

    Returns
    -------
    dict
        For each prefix p and metric m in :data:`CORRUPTED_METRICS`: ``p + "corrupted_test_" + m``, the
        mean over the 95 sets (Fig. 5), and ``p + "corrupted_test_" + m + "@s1"`` .. ``"@s5"``, the mean
        over the 19 corruptions at that severity (Fig. 6). Every set has the same size, so the first is
        also the mean of the five others.

    Raises
    ------
    ValueError
        A predictor's outputs on a set are not finite (the set is named): a NaN is never averaged in.
    """
    per_severity = {(prefix, metric, s): [] for prefix in predictors for metric in CORRUPTED_METRICS for s in SEVERITIES}
    for corruption, severity, x, y in corrupted_test_sets(dataset, root, clean_root=clean_root, standardize=standardize):
        for prefix, predictor in predictors.items():
            outputs = predict(predictor, x, batch_size=batch_size)  # on the predictor's device, back as float32
            if not all_finite(outputs):
                raise ValueError(f"the {prefix or 'plain '}model's outputs on {corruption} at severity {severity} are "
                                 f"not finite; no corrupted-set metrics can be averaged for it")
            values = classification_metrics(outputs, y, n_bins=n_bins, prefix="")
            for metric in CORRUPTED_METRICS:
                per_severity[prefix, metric, severity].append(values[metric])
    results = {}
    for prefix in predictors:
        for metric in CORRUPTED_METRICS:
            by_severity = [per_severity[prefix, metric, s] for s in SEVERITIES]
            results[f"{prefix}corrupted_test_{metric}"] = sum(map(sum, by_severity)) / (len(CORRUPTIONS) * len(SEVERITIES))
            for s, values in zip(SEVERITIES, by_severity):
                results[f"{prefix}corrupted_test_{metric}@s{s}"] = sum(values) / len(values)
    return results


def run_corrupted_metrics(model: nn.Module, config: RunConfig, rescaled: nn.Module | None = None) -> dict[str, float]:
    """:func:`corrupted_metrics` of a trained run, plain and (when given) rescaled by eq. 22 (Carratino et al. 2020, Fig. 5-6).

    Evaluated where the model is: the trainer leaves a device-loop run's model on its GPU for evaluation
    (95 x 10,000 images), and ``evaluate_run`` puts the rescaled predictor beside it.
    """
    predictors = {"": model} if rescaled is None else {"": model, "rescaled_": rescaled}
    return corrupted_metrics(predictors, dataset=config.dataset, root=config.eval_corrupted,
                             clean_root=config.dataset_params["root"],
                             standardize=config.dataset_params.get("standardize", False), n_bins=config.n_bins)
