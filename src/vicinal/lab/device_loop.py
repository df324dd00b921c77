"""Training loop for data sets that fit in device memory (an integration with no paper).

The whole training set lives on the device (uint8 when the images are exactly ``k / 255``, as the
CIFAR and MNIST loaders give them without ``standardize``: 150 MiB for CIFAR-10 instead of 600).
Each step gathers its batch on the device, crops and flips it there (vectorised, one draw per
sample from a device generator), converts it to float, and calls the step with the model under
bf16 autocast (on by default on CUDA). The mean training loss is accumulated on the device and read
once per epoch, so the loop itself never waits for the device.

The trainer builds the mixer with ``check_finite=False`` on CUDA and the loss skips its value checks
(each a host read per step); the data were checked when loaded, a NaN epoch loss ends the run as
diverged and an epoch loss of exactly 0 warns (``trainer.zero_loss_warning``). Host round trips that
remain, all inside the mixer (``vicinal.Mixer`` draws on a CPU generator):

* every mixer: lambda (1 or B values) and the partner index (B) are drawn on the CPU and copied to
  the device, two small host -> device copies per step; a copy from pageable memory waits for the
  device stream (``torch.cuda.set_sync_debug_mode`` flags it);
* k-Mixup: the (m, k, k) block costs are computed on the device and copied to the host for scipy's
  exact Hungarian solve (``linear_sum_assignment``), which needs the queued step to finish first;
  the partners go back to the device. The Hungarian solve is not batched on the device;
* Local Mixup with weighted sampling: the (B, B) graph weights come to the host for the inverse-CDF
  draw; with uniform sampling only the kept-pair weights are computed, on the device.

``benchmarks/device_loop.py`` measures what these cost per step (the mixing share of an ERM step).
With the batches in the same order and the same mixer draws, the loop gives the trainer's numbers
to float rounding in float32 without augmentation (tests/test_device_loop.py).
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.nn.functional as F

import vicinal as v

Step = Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


def resident_images(x: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``x`` on ``device``: as uint8 when every value is exactly ``k / 255`` (``k`` in 0..255), else as it is.

    An integration step, no paper. uint8 images are turned back into the same float32 values by
    :func:`model_inputs` (``k / 255`` in float32, as the loaders compute them), so nothing changes
    but the memory (4x less).
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating tensor of images, got {type(x).__name__}"
                        + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else ""))
    levels = torch.round(x * 255)
    if bool(((levels >= 0) & (levels <= 255)).all()) and torch.equal(levels.to(torch.uint8).float() / 255, x.float()):
        return levels.to(torch.uint8).to(device)
    return x.to(device)


def model_inputs(images: torch.Tensor, *, channels_last: bool = False) -> torch.Tensor:
    """Float32 model inputs from resident images: uint8 ``k`` -> ``k / 255``; floating images unchanged.

    An integration step, no paper. ``channels_last`` stores 4-D batches in NHWC order (faster
    convolutions on GPUs with tensor cores; the values are the same).
    """
    x = images.float() / 255 if images.dtype == torch.uint8 else images
    if channels_last and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def crop_flip(images: torch.Tensor, *, pad: int = 4, flip: bool = True,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop after zero padding by ``pad`` and random horizontal flip, per sample, in one gather.

    The standard CIFAR augmentation (He et al. 2016; used by all three papers' CIFAR experiments).
    Draws, on ``generator``'s device: ``randint(0, 2 pad + 1, (B, 2))`` for the (row, column) offsets,
    then, when ``flip``, ``rand(B) < 0.5`` for the flips. Output pixel ``(i, j)`` of sample ``b`` is
    padded pixel ``(i + dy_b, j' + dx_b)`` with ``j' = W - 1 - j`` when the sample is flipped, else
    ``j``. Works on any dtype (uint8 included) and device.

    Parameters
    ----------
    images : Tensor (B, C, H, W)
    pad : int
        Zero padding on every side (0: no crop).
    flip : bool
        Flip each sample left-right with probability 1/2.
    generator : torch.Generator, optional
        On the images' device; same seed, same crops and flips.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a (B, C, H, W) tensor, got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise ValueError(f"pad must be an integer >= 0 (pixels of zero padding), got {pad!r}")
    if not isinstance(flip, bool):
        raise TypeError(f"flip must be true or false, got {flip!r}")
    device = images.device
    if generator is not None and generator.device.type != device.type:
        raise ValueError(f"generator is on {generator.device} but images are on {device}; "
                         f"use torch.Generator(device={str(device)!r})")
    batch, _, height, width = images.shape
    offsets = torch.randint(0, 2 * pad + 1, (batch, 2), generator=generator, device=device)
    rows = offsets[:, :1] + torch.arange(height, device=device)  # (B, H) rows of the padded image
    columns = torch.arange(width, device=device).expand(batch, width)
    if flip:
        flipped = torch.rand(batch, generator=generator, device=device) < 0.5
        columns = torch.where(flipped[:, None], columns.flip(1), columns)
    columns = columns + offsets[:, 1:]
    padded = F.pad(images, (pad, pad, pad, pad)) if pad else images
    width_padded = padded.shape[-1]
    flat = (rows[:, :, None] * width_padded + columns[:, None, :]).view(batch, 1, height * width)
    out = padded.flatten(2).gather(2, flat.expand(-1, images.shape[1], -1))
    return out.view_as(images)


def mixing_step(model: Callable[[torch.Tensor], torch.Tensor], mixer: v.Mixer | None) -> Step:
    """The loss of one step: ``mixup_loss`` of the model on the mixed batch, or cross-entropy (ERM) without a mixer.

    Zhang et al. 2018 / Baena et al. 2022 eq. 2 / Greenewald et al. 2023 Sec. 2, whichever ``mixer``
    is (any :class:`vicinal.Mixer`: Mixup, LocalMixup, KMixup, CutMix). ``model`` may be a
    ``torch.compile``-d module. The loss checks the mixed targets and weights when the mixer does
    (``mixer.check_finite``): a mixer built with ``check_finite=False`` gives a step with no host read.
    """
    def step(x: torch.Tensor, y: torch.Tensor, mix_generator: torch.Generator) -> torch.Tensor:
        if mixer is None:
            return F.cross_entropy(model(x), y)
        batch = mixer(x, y, generator=mix_generator)
        return v.mixup_loss(model(batch.inputs), batch, loss="cross_entropy", check_values=mixer.check_finite)
    return step


class DeviceLoop:
    """Epochs of SGD over a training set held on one device (an integration, no paper; see the module doc).

    Parameters
    ----------
    step : callable (x, y, mix_generator) -> loss
        The loss of one batch, e.g. :func:`mixing_step` or the trainer's step.
    x, y : Tensor
        Training images (N, C, H, W) (float; kept as uint8 when they are exactly ``k / 255``) and
        labels (N,). Copied to ``device`` once.
    batch_size : int
        Batches are consecutive slices of each epoch's permutation; the short last one is dropped.
    device : str or torch.device
    pad, flip : int, bool
        Augmentation (:func:`crop_flip`); ``pad = 0, flip = False`` turns it off.
    augment_generator : torch.Generator, optional
        On ``device``; needed when augmentation is on.
    channels_last : bool
        NHWC batches (and the caller should move the model with ``memory_format=torch.channels_last``).
    autocast : bool or None
        bf16 autocast around the step; None: on for CUDA, off elsewhere.
    """

    def __init__(self, step: Step, x: torch.Tensor, y: torch.Tensor, *, batch_size: int,
                 device: torch.device | str = "cpu", pad: int = 0, flip: bool = False,
                 augment_generator: torch.Generator | None = None, channels_last: bool = True,
                 autocast: bool | None = None):
        self.device = loop_device(device)
        check_loop_batch_size(batch_size, x.shape[0])
        if (pad or flip) and augment_generator is None:
            raise ValueError(f"augmentation is on (pad={pad}, flip={flip}) but augment_generator is None; pass "
                             f"torch.Generator(device={str(self.device)!r}).manual_seed(...)")
        self.step, self.batch_size = step, batch_size
        self.pad, self.flip, self.augment_generator = pad, flip, augment_generator
        self.channels_last = channels_last
        self.autocast = check_autocast(autocast, self.device)
        self.images = resident_images(x, self.device)
        self.labels = y.to(self.device)
        self.steps_per_epoch = x.shape[0] // batch_size

    def batches(self, order: torch.Tensor):
        """The model inputs and labels of each step of the epoch whose permutation is ``order``."""
        order = order.to(self.device)  # one copy per epoch when the permutation was drawn on the host
        for b in range(self.steps_per_epoch):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            images = self.images.index_select(0, idx)
            if self.pad or self.flip:
                images = crop_flip(images, pad=self.pad, flip=self.flip, generator=self.augment_generator)
            yield model_inputs(images, channels_last=self.channels_last), self.labels.index_select(0, idx)

    def epoch(self, optimizer: torch.optim.Optimizer, data_generator: torch.Generator,
              mix_generator: torch.Generator) -> torch.Tensor:
        """One epoch: a ``randperm`` of ``data_generator`` (any device), one optimiser step per batch.

        Returns the mean training loss as a 0-d float32 tensor on the device (read it once per epoch).
        """
        order = torch.randperm(self.images.shape[0], generator=data_generator, device=data_generator.device)
        total = torch.zeros((), dtype=torch.float32, device=self.device)
        for x, y in self.batches(order):
            with self.autocast_context():
                loss = self.step(x, y, mix_generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach().float()
        return total / max(self.steps_per_epoch, 1)

    def autocast_context(self):
        """bf16 autocast on the loop's device when on, else a no-op context."""
        return autocast_context(self.device, self.autocast)


def autocast_context(device: torch.device, on: bool):
    """bf16 autocast on ``device`` when ``on``, else a no-op context (an integration, no paper)."""
    if on:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def loop_device(device: torch.device | str) -> torch.device:
    """``device`` as a ``torch.device``, refused when it is CUDA and torch sees none (an integration, no paper)."""
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} but torch sees no CUDA device; use device='cpu'")
    return resolved


def check_loop_batch_size(batch_size: int, n: int) -> int:
    """``batch_size`` of a loop over ``n`` training samples: an integer in [1, n], refused by name otherwise."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be an integer in [1, {n}] (the training set size), got {batch_size!r}")
    return batch_size


def check_autocast(autocast: bool | None, device: torch.device) -> bool:
    """The autocast setting of a loop: None means on for CUDA, off elsewhere; refused by name if not a bool."""
    if autocast is not None and not isinstance(autocast, bool):
        raise TypeError(f"autocast must be true, false or None (on for CUDA), got {autocast!r}")
    return device.type == "cuda" if autocast is None else autocast
