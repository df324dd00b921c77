"""The members of an ensemble: each run's config, data, model, batch size and random streams.

Member m has its own initial weights (``stream_seed(seed, "init")``), data
(``effective_data_seed``), epoch orders (its ``"data"`` generator) and mixing draws (its ``"mix"``
generator), as ``trainer.train`` gives them to a single run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vicinal.pairing import OptimalTransportPairing, check_block_batch
from vicinal.rescale import fit_stats, modified_data
from vicinal.targets import dense_targets

from .. import trainer
from ..config import RunConfig, stream_seed, make_mixer
from ..datasets import Dataset, load_dataset
from ..models import build_model


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
    if mixer is not None and isinstance(mixer.pairing, OptimalTransportPairing):
        check_block_batch(batch_size, mixer.pairing.k)  # refuse before training, as the first step would
    return _Member(
        config=config, dataset=dataset, stats=stats, batch_size=batch_size,
        steps_per_epoch=dataset.x_train.shape[0] // batch_size,
        mixer=mixer,
        data_generator=torch.Generator().manual_seed(stream_seed(config.seed, "data")),
        mix_generator=torch.Generator().manual_seed(stream_seed(config.seed, "mix")),
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


def _build(config: RunConfig, dataset: Dataset) -> nn.Module:
    """The member's model as ``trainer.train`` builds it (seeded by ``stream_seed(seed, "init")``)."""
    return build_model(config.model, input_shape=dataset.input_shape, num_outputs=_num_outputs(dataset),
                       seed=stream_seed(config.seed, "init"), **config.model_params)


def _num_outputs(dataset: Dataset) -> int:
    if dataset.num_classes is not None:
        return dataset.num_classes
    return 1 if dataset.y_train.ndim == 1 else dataset.y_train.shape[1]


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
