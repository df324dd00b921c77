"""DataLoader integration: mix inside the loader's worker processes.

With ``DataLoader(..., collate_fn=MixCollate(mixer, seed=0), num_workers=N)`` the pairing (the
optimal-transport matching of k-Mixup in particular) and the interpolation run in the workers and
overlap with the training step in the main process.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import torch
from torch.utils.data import default_collate, get_worker_info

from ._checks import check_int
from .batch import MixedBatch
from .mixers import Mixer

_SEED_MASK = (1 << 63) - 1


class MixCollate:
    """A picklable ``collate_fn`` that stacks samples, then mixes them: returns a :class:`MixedBatch`.

    Applies a mixer of Zhang et al. 2018 / Baena et al. 2022 / Greenewald et al. 2023 per batch.

    Reproducibility: each process draws from its own ``torch.Generator``. In a worker it is seeded
    from ``seed`` and the worker's seed (``get_worker_info().seed``, which the DataLoader derives
    per epoch from its own ``generator=`` or the global seed), so epochs differ and runs with the
    same seeds repeat exactly. In the main process (``num_workers=0``) one generator seeded with
    ``seed`` runs across epochs. ``seed=None`` draws from torch's global RNG in the main process.

    Parameters
    ----------
    mixer : Mixer
        Mixup, LocalMixup, KMixup or any :class:`Mixer`.
    seed : int, optional
        Base seed of the mixing randomness.
    collate_fn : callable
        How to stack a list of samples into ``(inputs, labels)`` (default ``default_collate``).
    """

    def __init__(self, mixer: Mixer, *, seed: int | None = None,
                 collate_fn: Callable[[list], Any] = default_collate):
        if not isinstance(mixer, Mixer):
            raise TypeError(f"mixer must be a vicinal Mixer (Mixup, LocalMixup, KMixup, ...), got {type(mixer).__name__}")
        self.mixer = mixer
        self.seed = None if seed is None else check_int("seed", seed, minimum=0)
        if not callable(collate_fn):
            raise TypeError(f"collate_fn must be a callable that stacks a list of samples, got {type(collate_fn).__name__}")
        self.collate_fn = collate_fn
        self._generator: torch.Generator | None = None
        self._generator_key: tuple | None = None

    def __call__(self, samples: list) -> MixedBatch:
        if len(samples) == 0:
            raise ValueError("MixCollate got an empty list of samples: nothing to mix")
        collated = self.collate_fn(samples)
        if not isinstance(collated, (tuple, list)) or len(collated) != 2:
            raise ValueError("MixCollate expects samples of (input, label); pass collate_fn= to build (inputs, labels)")
        inputs, labels = collated
        return self.mixer(inputs, labels, generator=self._current_generator())

    def _current_generator(self) -> torch.Generator | None:
        worker = get_worker_info()
        if worker is None and self.seed is None:
            return None
        key = (os.getpid(), None if worker is None else worker.seed)
        if key != self._generator_key:
            seed = self.seed or 0
            if worker is not None:  # mix the worker's per-epoch seed with ours
                seed = (seed * 0x9E3779B97F4A7C15 + worker.seed) & _SEED_MASK
            self._generator = torch.Generator().manual_seed(seed)
            self._generator_key = key
        return self._generator

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_generator"] = None  # each process builds its own
        state["_generator_key"] = None
        return state
