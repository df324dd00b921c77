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
from .seeding import derive_seed, distributed_rank, rank_seed


INPUT_KEYS = ("image", "images", "img", "input", "inputs", "x", "pixel_values")
LABEL_KEYS = ("label", "labels", "target", "targets", "y", "class")


def _find_key(batch: dict, candidates: tuple[str, ...], what: str):
    lowered = {str(key).lower(): key for key in batch}
    for name in candidates:
        if name in lowered:
            return batch[lowered[name]]
    raise ValueError(f"MixCollate found no {what} in a batch with keys {sorted(map(str, batch))}: expected one of "
                     f"{', '.join(candidates)}; pass labels_getter=lambda batch: (batch[...], batch[...])")


def default_inputs_and_labels(collated: Any) -> tuple:
    """``(inputs, labels)`` of a collated batch: the first two entries of a tuple / list (``(x, y)`` or
    ``(x, y, index)`` samples), or the input and label entries of a dict (:data:`INPUT_KEYS`, :data:`LABEL_KEYS`)."""
    if isinstance(collated, dict):
        return _find_key(collated, INPUT_KEYS, "inputs"), _find_key(collated, LABEL_KEYS, "labels")
    if isinstance(collated, (tuple, list)) and len(collated) >= 2:
        return collated[0], collated[1]
    raise ValueError(f"MixCollate expects samples of (input, label, ...) or dicts with an input and a label entry, "
                     f"got a collated {type(collated).__name__}; pass labels_getter= or collate_fn=")


class ProcessGenerator:
    """The ``torch.Generator`` of the calling process, built from one base seed (an integration, no paper).

    Each DataLoader worker gets a stream seeded from ``seed`` and its worker seed
    (``get_worker_info().seed``, which the DataLoader derives per epoch from its own ``generator=``
    or the global seed), the main process (``num_workers=0``) one generator seeded with ``seed`` that
    runs on across calls, and under ``torch.distributed`` the rank is folded in as well
    (:func:`vicinal.seeding.rank_seed`). ``seed=None`` returns None in the main process (torch's
    global RNG). Pickling drops the generator: every process builds its own on its first call.
    Used by :class:`MixCollate` and by the lab's DataLoader loop for its crops and flips.
    """

    def __init__(self, seed: int | None):
        self.seed = None if seed is None else check_int("seed", seed, minimum=0)
        self._generator: torch.Generator | None = None
        self._key: tuple | None = None

    def __call__(self) -> torch.Generator | None:
        worker = get_worker_info()
        if worker is None and self.seed is None:
            return None
        rank = distributed_rank()
        key = (os.getpid(), rank, None if worker is None else worker.seed)
        if key != self._key:
            seed = rank_seed(self.seed or 0, rank)
            if worker is not None:  # mix the worker's per-epoch seed with ours
                seed = derive_seed(seed, worker.seed)
            self._generator = torch.Generator().manual_seed(seed)
            self._key = key
        return self._generator

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_generator": None, "_key": None}  # each process builds its own


class MixCollate:
    """A picklable ``collate_fn`` that stacks samples, then mixes them: returns a :class:`MixedBatch`.

    Applies a mixer of Zhang et al. 2018 / Baena et al. 2022 / Greenewald et al. 2023 per batch.

    Reproducibility: each process draws from its own ``torch.Generator`` (:class:`ProcessGenerator`):
    a worker's is seeded from ``seed`` and the worker's per-epoch seed, so epochs differ and runs with
    the same seeds repeat exactly; in the main process (``num_workers=0``) one generator seeded with
    ``seed`` runs across epochs; ``seed=None`` draws from torch's global RNG there. Under
    ``torch.distributed`` the rank is folded in as well: ranks whose loaders hand their workers equal
    seeds still draw different streams.

    Parameters
    ----------
    mixer : Mixer
        Mixup, LocalMixup, KMixup or any :class:`Mixer`.
    seed : int, optional
        Base seed of the mixing randomness.
    collate_fn : callable
        How to stack a list of samples (default ``default_collate``).
    labels_getter : "default" or callable
        How to find ``(inputs, labels)`` in the collated batch (torchvision v2's ``labels_getter``,
        extended to the inputs). "default": a tuple / list gives its first two entries, so
        ``(x, y, index)`` samples work (the other entries are dropped); a dict gives the entries under
        the first key of :data:`INPUT_KEYS` and of :data:`LABEL_KEYS` it holds (case-insensitive). A
        callable maps the collated batch to ``(inputs, labels)``, e.g. ``lambda b: (b["img"], b["cls"])``.
    """

    def __init__(self, mixer: Mixer, *, seed: int | None = None,
                 collate_fn: Callable[[list], Any] = default_collate,
                 labels_getter: str | Callable[[Any], tuple] = "default"):
        if not isinstance(mixer, Mixer):
            raise TypeError(f"mixer must be a vicinal Mixer (Mixup, LocalMixup, KMixup, ...), got {type(mixer).__name__}")
        self.mixer = mixer
        self.seed = None if seed is None else check_int("seed", seed, minimum=0)
        if not callable(collate_fn):
            raise TypeError(f"collate_fn must be a callable that stacks a list of samples, got {type(collate_fn).__name__}")
        self.collate_fn = collate_fn
        if labels_getter != "default" and not callable(labels_getter):
            raise TypeError(f"labels_getter must be 'default' or a callable batch -> (inputs, labels), got {labels_getter!r}")
        self.labels_getter = labels_getter
        self._generator = ProcessGenerator(self.seed)

    def __call__(self, samples: list) -> MixedBatch:
        if len(samples) == 0:
            raise ValueError("MixCollate got an empty list of samples: nothing to mix")
        collated = self.collate_fn(samples)
        if self.labels_getter == "default":
            inputs, labels = default_inputs_and_labels(collated)
        else:
            found = self.labels_getter(collated)
            if not isinstance(found, (tuple, list)) or len(found) != 2:
                raise ValueError(f"labels_getter must return (inputs, labels), got {type(found).__name__}")
            inputs, labels = found
        return self.mixer(inputs, labels, generator=self._generator())
