"""The names of the metrics a finished run stores, known from its config before it trains.

A recipe column (or histogram) reads one stored metric of every run of its table; a name the runs do
not store (a typo, or a setting such as ``noise_stds`` / ``eval_rescaled`` / ``eval_corrupted`` left
out) is then found before days of training, not after them. Integration step, no paper: the names
mirror :func:`vicinal.lab.trainer.train` / ``evaluate_run`` (tests/test_run_metrics.py compares them
with what a trained run stores).
"""

from __future__ import annotations

from .config import RunConfig
from .corrupted_eval import CORRUPTED_METRICS
from .datasets.cifar_corrupted import SEVERITIES
from .evaluate import CLASSIFICATION_METRICS


def run_metric_names(config: RunConfig, *, classification: bool) -> frozenset[str]:
    """Every metric name a run of ``config`` that did not diverge stores (its per-epoch lists included).

    Parameters
    ----------
    config : RunConfig
        The run.
    classification : bool
        Whether its dataset has class labels (``Dataset.num_classes`` is not None); a regression run
        stores ``test_mse`` and none of the classification metrics.
    """
    names = {"train_loss", "test_error_curve", "batch_size", "steps"}
    if not classification:
        return frozenset(names | {"test_mse"})
    names |= {f"test_{m}" for m in CLASSIFICATION_METRICS} | {"train_error"}
    if config.eval_rescaled:
        names |= {f"rescaled_test_{m}" for m in CLASSIFICATION_METRICS}
    names |= {f"noise_error@{std:g}" for std in config.noise_stds}
    names |= {f"fgsm_error@{eps:g}" for eps in config.fgsm_eps}
    if config.eval_corrupted:
        for prefix in ("", "rescaled_") if config.eval_rescaled else ("",):
            for metric in CORRUPTED_METRICS:
                names.add(f"{prefix}corrupted_test_{metric}")
                names |= {f"{prefix}corrupted_test_{metric}@s{s}" for s in SEVERITIES}
    return frozenset(names)
