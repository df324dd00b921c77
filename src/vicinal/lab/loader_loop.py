"""Training loop over a DataLoader, for data sets that do not fit in device memory (an integration, no paper).

Tiny ImageNet on a small GPU, or the user's own data: the training tensors stay on the host and a
``torch.utils.data.DataLoader`` with ``workers`` worker processes prepares each batch. A batch is
fetched with one gather (:class:`TensorBatches`), cropped and flipped when augmentation is on
(:func:`vicinal.lab.device_loop.crop_flip`, on the host), then mixed by :class:`vicinal.MixCollate`,
all inside the worker, so mixing follows augmentation as in the device loop. The main process copies
the batch (inputs, soft targets, weights) to the device (from pinned memory, non-blocking, on CUDA),
runs the step under bf16 autocast on CUDA, and reads the mean training loss once per epoch.

Randomness, and what is guaranteed:

* the batches are consecutive slices of one ``randperm`` of the data generator per epoch
  (:class:`EpochBatches`), drawn in the main process exactly as the host trainer draws them;
* the mixing and the crops / flips draw from streams seeded by (run seed, epoch) and, inside a
  worker, the worker's seed (:class:`vicinal.collate.ProcessGenerator`); the DataLoader hands its
  workers seeds from a generator seeded by (run seed, epoch) as well. So the same config gives the
  same numbers for any ``workers`` (each setting of ``workers`` its own numbers: batch ``b`` is
  mixed by worker ``b mod workers``), and an epoch's draws do not depend on the epochs before it: a
  run resumed from a checkpoint ends with the numbers of an uninterrupted one;
* the mixing draws are not the host trainer's (one mixing stream for the whole run), so with a mixer
  the loop is not bitwise equal to the host loop. ERM without augmentation draws nothing but the
  order, and equals the host loop exactly (same parameters, same losses).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import vicinal as v
from vicinal._checks import check_int
from vicinal.collate import ProcessGenerator
from vicinal.seeding import derive_seed

from .device_loop import autocast_context, check_autocast, check_loop_batch_size, crop_flip, loop_device, model_inputs

#: The loss of one collated batch: a :class:`vicinal.MixedBatch`, or ``(inputs, labels)`` without a mixer.
BatchStep = Callable[[Any], torch.Tensor]


class EpochBatches(torch.utils.data.Sampler):
    """Index batches of one epoch: consecutive slices of one ``randperm(n, generator=generator)`` per pass.

    An integration, no paper: the host trainer's batches (one permutation per epoch, the short last
    slice dropped), so both loops see the same batches in the same order from the same generator.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        self.n, self.batch_size, self.generator = n, batch_size, generator

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator)
        for b in range(len(self)):
            yield order[b * self.batch_size:(b + 1) * self.batch_size].tolist()

    def __len__(self) -> int:
        return self.n // self.batch_size


class TensorBatches(torch.utils.data.Dataset):
    """Training tensors indexed by a whole batch of indices: one gather per batch, not one call per sample.

    An integration, no paper. ``dataset[indices]`` is ``(x[indices], y[indices])``.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __getitem__(self, indices):
        return self.x[indices], self.y[indices]

    def __len__(self) -> int:
        return self.x.shape[0]


class HostBatch:
    """A DataLoader ``collate_fn`` for :class:`TensorBatches`: crop + flip, then the model's memory format.

    An integration step (the augmentation is He et al. 2016's, :func:`crop_flip`). The crops and flips
    draw from this process's stream (:class:`vicinal.collate.ProcessGenerator` of ``seed``), so each
    worker draws its own. Picklable; used alone (ERM) or as :class:`vicinal.MixCollate`'s ``collate_fn``.
    """

    def __init__(self, *, pad: int = 0, flip: bool = False, seed: int | None = None, channels_last: bool = False):
        pad = check_int("pad", pad, minimum=0)
        if not isinstance(flip, bool):
            raise TypeError(f"flip must be true or false, got {flip!r}")
        if (pad or flip) and seed is None:
            raise ValueError(f"augmentation is on (pad={pad}, flip={flip}) but seed is None; pass the seed of the "
                             f"crop and flip draws")
        self.pad, self.flip, self.channels_last = pad, flip, channels_last
        self._generator = ProcessGenerator(seed)

    def __call__(self, batch: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        if self.pad or self.flip:
            x = crop_flip(x, pad=self.pad, flip=self.flip, generator=self._generator())
        return model_inputs(x, channels_last=self.channels_last), y


def collated_step(model: Callable[[torch.Tensor], torch.Tensor]) -> BatchStep:
    """The loss of one collated batch: ``mixup_loss`` on a :class:`vicinal.MixedBatch`, cross-entropy on ``(x, y)``.

    Zhang et al. 2018 / Baena et al. 2022 eq. 2 / Greenewald et al. 2023 Sec. 2, whichever mixer made
    the batch (the DataLoader counterpart of :func:`vicinal.lab.device_loop.mixing_step`).
    """
    def step(batch) -> torch.Tensor:
        if isinstance(batch, v.MixedBatch):
            return v.mixup_loss(model(batch.inputs), batch, loss="cross_entropy")
        x, y = batch
        return F.cross_entropy(model(x), y)
    return step


class LoaderLoop:
    """Epochs of SGD over batches a DataLoader prepares on the host (an integration, no paper; see the module doc).

    Parameters
    ----------
    step : callable batch -> loss
        The loss of one collated batch on the device, e.g. :func:`collated_step` or the trainer's.
    x, y : Tensor
        Training inputs (N, ...) and labels / targets (N, ...), kept on the host.
    batch_size : int
        Batches are consecutive slices of each epoch's permutation; the short last one is dropped.
    mixer : vicinal.Mixer, optional
        Mixes each batch in the DataLoader (:class:`vicinal.MixCollate`); None: plain batches (ERM).
    mix_seed : int
        Base seed of the mixing streams and of the DataLoader's worker seeds (per epoch).
    device : str or torch.device
    workers : int
        DataLoader worker processes (0: batches are prepared in the training process).
    pad, flip : int, bool
        Augmentation (:func:`crop_flip`) of (N, C, H, W) images on the host; ``pad = 0, flip = False`` turns it off.
    augment_seed : int, optional
        Base seed of the crop and flip streams (per epoch); needed when augmentation is on.
    channels_last : bool
        NHWC batches (the caller moves the model with ``memory_format=torch.channels_last``).
    autocast : bool or None
        bf16 autocast around the step; None: on for CUDA, off elsewhere.
    """

    def __init__(self, step: BatchStep, x: torch.Tensor, y: torch.Tensor, *, batch_size: int,
                 mixer: v.Mixer | None = None, mix_seed: int = 0, device: torch.device | str = "cpu", workers: int = 0,
                 pad: int = 0, flip: bool = False, augment_seed: int | None = None, channels_last: bool = False,
                 autocast: bool | None = None):
        self.device = loop_device(device)
        self.batch_size = check_loop_batch_size(batch_size, x.shape[0])
        if mixer is not None and not isinstance(mixer, v.Mixer):
            raise TypeError(f"mixer must be a vicinal Mixer (Mixup, LocalMixup, KMixup, ...) or None, got "
                            f"{type(mixer).__name__}")
        self.step, self.mixer = step, mixer
        self.mix_seed = check_int("mix_seed", mix_seed, minimum=0)
        self.workers = check_int("workers", workers, minimum=0)
        HostBatch(pad=pad, flip=flip, seed=augment_seed, channels_last=channels_last)  # checks the settings
        self.pad, self.flip, self.augment_seed, self.channels_last = pad, flip, augment_seed, channels_last
        self.autocast = check_autocast(autocast, self.device)
        self.data = TensorBatches(x, y)
        self.steps_per_epoch = x.shape[0] // batch_size

    def loader(self, data_generator: torch.Generator, epoch: int) -> DataLoader:
        """The DataLoader of epoch ``epoch`` (0-based): its streams are seeded by ``epoch``, its order by ``data_generator``."""
        epoch = check_int("epoch", epoch, minimum=0)
        # Fresh streams per epoch: a resumed run draws what the uninterrupted one did.
        augment_seed = None if self.augment_seed is None else derive_seed(self.augment_seed, epoch)
        host_batch = HostBatch(pad=self.pad, flip=self.flip, seed=augment_seed, channels_last=self.channels_last)
        collate = host_batch if self.mixer is None else v.MixCollate(
            self.mixer, seed=derive_seed(self.mix_seed, epoch, 0), collate_fn=host_batch)
        worker_seeds = torch.Generator().manual_seed(derive_seed(self.mix_seed, epoch, 1))
        return DataLoader(self.data, sampler=EpochBatches(len(self.data), self.batch_size, data_generator),
                          batch_size=None, collate_fn=collate, num_workers=self.workers,
                          pin_memory=self.device.type == "cuda", generator=worker_seeds)

    def epoch(self, optimizer: torch.optim.Optimizer, data_generator: torch.Generator, epoch: int) -> torch.Tensor:
        """Epoch ``epoch`` (0-based; it seeds the streams): one optimiser step per batch of the DataLoader.

        Returns the mean training loss as a 0-d float64 tensor on the device (read it once per epoch);
        float64 so that the sum matches the host trainer's sum of Python floats.
        """
        non_blocking = self.device.type == "cuda"  # the batches come from pinned memory there
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        for batch in self.loader(data_generator, epoch):
            if isinstance(batch, v.MixedBatch):
                batch = batch.to(self.device, non_blocking=non_blocking)
            else:
                batch = tuple(t.to(self.device, non_blocking=non_blocking) for t in batch)
            with autocast_context(self.device, self.autocast):
                loss = self.step(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach().double()
        return total / max(self.steps_per_epoch, 1)
