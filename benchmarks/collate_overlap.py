"""Section 3: mixing in DataLoader workers (``vicinal.MixCollate``) against mixing in the training loop.

A synthetic CIFAR-shaped dataset is served in batches of B; each step trains PreActResNet18 (a
narrow one by default, so the run stays short) on a KMixup(k=32) batch. Configurations:

* ``ERM``: no mixing (the floor);
* ``in-loop, workers=w``: the loader stacks samples (``w`` worker processes, 0 = main process), the
  loop mixes, then steps;
* ``collate, workers=w``: ``MixCollate`` mixes in the workers, the loop only steps.

Time per step is wall-clock (the point is overlap between processes), from the first batch
received to the end of the epoch, divided by the remaining steps; worker start-up is excluded.
"""

from __future__ import annotations

import time

import torch
from torch.utils.data import DataLoader, TensorDataset

import vicinal
from mixing_cost import NUM_CLASSES, cifar_batch
from timing import median
from vicinal.lab.models import PreActResNet18


def _epoch_seconds_per_step(loader: DataLoader, train_step) -> float:
    """Run one epoch; wall seconds per step after the first batch arrived."""
    batches = iter(loader)
    first = next(batches)
    start = time.perf_counter()
    train_step(first)
    steps = 1
    for batch in batches:
        train_step(batch)
        steps += 1
    return (time.perf_counter() - start) / steps


def run_collate_overlap(*, batch_size: int = 128, n_batches: int = 8, k: int = 32, worker_counts=(1, 2),
                        resnet_width: int = 16, rounds: int = 2, seed: int = 0) -> dict:
    """Seconds per training step for each configuration (median over interleaved rounds).

    Parameters
    ----------
    batch_size : int
        Batch size B (needs ``B >= 2k``).
    n_batches : int
        Batches per epoch (>= 2); each round runs one epoch per configuration.
    k : int
        KMixup block size.
    worker_counts : tuple of int
        DataLoader ``num_workers`` values compared (0 is always added for in-loop mixing).
    resnet_width : int
        PreActResNet18 width (64 is ResNet-18; smaller keeps the run short).
    rounds : int
        Interleaved rounds.
    seed : int
        Seed of the data, the model and the mixing.

    Returns
    -------
    dict
        ``ms_per_step`` by configuration and the setup. CPU only: this measures process overlap.
    """
    if n_batches < 2:
        raise ValueError(f"n_batches must be >= 2 (the first batch is not timed), got {n_batches}")
    x, y = cifar_batch(batch_size * n_batches, seed=seed)
    dataset = TensorDataset(x, y)
    torch.manual_seed(seed)
    model = PreActResNet18(NUM_CLASSES, width=resnet_width).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    mixer = vicinal.KMixup(k=k, num_classes=NUM_CLASSES)
    generator = torch.Generator().manual_seed(seed)

    def step_on(batch: vicinal.MixedBatch):
        optimizer.zero_grad(set_to_none=True)
        vicinal.mixup_loss(model(batch.inputs), batch).backward()
        optimizer.step()

    def erm_step(batch):
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(batch[0]), batch[1]).backward()
        optimizer.step()

    def in_loop_step(batch):
        step_on(mixer(batch[0], batch[1], generator=generator))

    configs = {"ERM, workers=0": (0, None, erm_step), "in-loop, workers=0": (0, None, in_loop_step)}
    for workers in worker_counts:
        configs[f"in-loop, workers={workers}"] = (workers, None, in_loop_step)
        configs[f"collate, workers={workers}"] = (workers, vicinal.MixCollate(mixer, seed=seed), step_on)
    seconds = {name: [] for name in configs}
    for _ in range(rounds):
        for name, (workers, collate, train_step) in configs.items():
            loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                                num_workers=workers, **({"collate_fn": collate} if collate else {}))
            seconds[name].append(_epoch_seconds_per_step(loader, train_step))
    return {
        "setup": {"batch_size": batch_size, "n_batches": n_batches, "k": k, "resnet_width": resnet_width,
                  "rounds": rounds, "clock": "wall", "worker_counts": list(worker_counts)},
        "ms_per_step": {name: 1e3 * median(runs) for name, runs in seconds.items()},
    }
