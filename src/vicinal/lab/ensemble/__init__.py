"""Batched trainer: layers (stacked model), optim (SGD/Adam), members, draws (mixing), step (loss), train (loop), grouping.

Local Mixup (Baena et al. 2022, Fig. 3) averages 1000 trainings per eps and k-Mixup (Greenewald et
al. 2023, Sec. 5) 20 trials per table cell. Small networks (the spirals MLP, random-feature logistic
regression of Carratino et al. 2020, App. B.3, LeNet on 8x8 digits) spend their time in Python and
kernel-launch overhead, so :func:`train_batched` trains M of them as one stacked ensemble: every
parameter gets a leading member axis, layers run as batched matrix products (``torch.baddbmm``) or
grouped convolutions, one backward pass serves all members (their parameters are disjoint, so each
gets exactly its own gradient) and torch's fused SGD / Adam kernels update all members at once.
Member m ends with the parameters and metrics ``trainer.train(config_m)`` gives, up to
floating-point rounding.

- :mod:`.layers`: :class:`StackedModel`, the stacked linear / conv layers, :func:`check_batchable`.
- :mod:`.optim`: :class:`StackedSGD`, :class:`StackedAdam`, per-member learning-rate schedules.
- :mod:`.members`: each run's config, data, model, batch size and random streams.
- :mod:`.draws`: the epoch's uniforms -> lambdas, random orders, partners (the randomness protocol).
- :mod:`.step`: one step of all members: batches, mixing, locality weights, loss.
- :mod:`.train`: :func:`train_batched` / :func:`fit_batched`, chunking, what a batch may hold.
- :mod:`.grouping`: :func:`batch_group_key` and :func:`run_batch` for sweeps, with the fallback to
  one-at-a-time training.
"""

from .grouping import batch_group_key, run_batch
from .layers import StackedModel, UnsupportedModelError, check_batchable
from .optim import StackedAdam, StackedSGD
from .step import EPOCH_COPY_BUDGET
from .train import (BATCHED_METHODS, MEMORY_BUDGET, SHARED_SETTINGS, fit_batched, member_bytes, sequential_reason,
                    train_batched)

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
