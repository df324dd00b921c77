"""Training with any vicinal mixer inside PyTorch Lightning: checkpointed, per-rank random streams and logging.

An integration with no paper. :class:`Mixing` is a ``torch.nn.Module`` holding a mixer; assigned as an
attribute of a ``LightningModule`` it becomes a submodule, so its random state travels in the module's
``state_dict`` and therefore in every Lightning checkpoint, without a callback::

    class Classifier(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = ...
            self.mixing = vicinal.lightning.Mixing(vicinal.KMixup(alpha=1.0, k=16, num_classes=10), seed=0)

        def training_step(self, batch, batch_idx):
            mixed = self.mixing(batch, self)                    # mixes, logs lambda and the kept-pair share
            return vicinal.mixup_loss(self.net(mixed.inputs), mixed)

Random streams: batch number n on rank r is mixed with a generator seeded by
``derive_seed(rank_seed(seed, r), n)`` (:mod:`vicinal.seeding`), where n counts the batches this module
has mixed. The state is therefore two integers, identical on every rank: the seed and n. A run stopped and
resumed from a checkpoint continues with batch n + 1 and draws exactly what an uninterrupted run draws
(together with the weights and optimizer state Lightning restores, training is bitwise identical on the
CPU, tested); ranks draw different streams, each reproducible, without any communication.

Under DDP each rank mixes its own batch: k-Mixup's optimal-transport matching runs inside blocks of k of the
rank's batch (so k is at most half the per-rank batch), and Local Mixup's locality graph, its kept pairs and
its eq. (2) weights are built from the rank's batch only (the estimator of eq. 2 over that batch, with the
per-rank batch as B). With a global batch of R x B this is what R independent single-process steps on
batches of B would do; cross-rank matching (all-gathering features so partners come from the global batch)
is not implemented.

Lightning itself is not imported here (``module`` is used through ``log`` and ``global_rank`` only), so
:class:`Mixing` also works in a plain torch loop; ``pip install "vicinal[lightning]"`` installs Lightning.
"""

from __future__ import annotations

import warnings

import torch
from torch.nn.modules.module import _EXTRA_STATE_KEY_SUFFIX

from ._checks import check_int
from .batch import MixedBatch
from .mixers import Mixer
from .seeding import derive_seed, distributed_rank, rank_seed

STATE_FORMAT = 1


class MissingMixingStateWarning(UserWarning):
    """A state dict without a :class:`Mixing` state was loaded (integration, no paper): the streams keep their
    current position (batch 0 for a fresh module), so they differ from the run that wrote the checkpoint."""


class Mixing(torch.nn.Module):
    """Mix each training batch with a vicinal mixer, from checkpointed per-rank streams, and log the draws.

    Integration with no paper: applies Mixup (Zhang et al. 2018), Local Mixup (Baena et al. 2022, eq. 2),
    k-Mixup (Greenewald et al. 2023, Sec. 2) or any :class:`vicinal.Mixer` per batch. See the module
    docstring for the streams and for what the methods mean under DDP.

    Parameters
    ----------
    mixer : Mixer
        ``vicinal.Mixup``, ``LocalMixup``, ``KMixup`` or any :class:`vicinal.Mixer`.
    seed : int
        Base seed of the mixing streams (>= 0).
    log : bool
        Log ``{prefix}lam`` (the batch's mean lambda) and, when the mixer has a locality graph,
        ``{prefix}kept_share`` (the fraction of mixed samples with a nonzero locality weight) through
        ``module.log`` at every step.
    prefix : str
        Prefix of the logged names.

    Checkpoints: the state (seed, batches mixed) is this module's extra state, saved with the
    ``LightningModule``. Loading a state dict that lacks it (a checkpoint written before mixing was
    added) warns with :class:`MissingMixingStateWarning` and keeps the current state instead of failing.
    """

    def __init__(self, mixer: Mixer, *, seed: int = 0, log: bool = True, prefix: str = "mixing/"):
        super().__init__()
        if not isinstance(mixer, Mixer):
            raise TypeError(f"mixer must be a vicinal mixer (vicinal.Mixup, LocalMixup, KMixup or Mixer), got "
                            f"{type(mixer).__name__}; wrap your own transform in a training_step instead")
        if not isinstance(log, bool):
            raise TypeError(f"log must be a bool, got {log!r}")
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        self.mixer = mixer
        self.seed = check_int("seed", seed, minimum=0)
        self.batches_mixed = 0
        self.log_draws = log
        self.prefix = prefix
        self._generator = torch.Generator()

    def forward(self, batch, module=None) -> MixedBatch:
        """Mix ``batch = (inputs, labels)`` with the next stream and log its lambda and kept-pair share.

        Parameters
        ----------
        batch : (Tensor, Tensor)
            The batch as the DataLoader yields it (after Lightning's device transfer and precision cast).
        module : LightningModule, optional
            Gives the rank (``global_rank``) and the logger (``log``); without it the rank is
            ``torch.distributed``'s and nothing is logged.

        Returns
        -------
        MixedBatch
        """
        if isinstance(batch, MixedBatch):
            raise TypeError("batch is already a MixedBatch (the DataLoader mixes it with MixCollate): mix either in "
                            "the loader or with Mixing, not both; pass the loader's (inputs, labels) batches here")
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError(f"batch must be a pair (inputs, labels), got {type(batch).__name__}"
                            f"{'' if not isinstance(batch, (tuple, list)) else f' of length {len(batch)}'}; "
                            "unpack a dict batch first: self.mixing((batch['x'], batch['y']), self)")
        if module is not None and not (hasattr(module, "log") and hasattr(module, "global_rank")):
            raise TypeError(f"module must be the LightningModule (self), got {type(module).__name__}")
        rank = distributed_rank() if module is None else int(module.global_rank)
        self._generator.manual_seed(derive_seed(rank_seed(self.seed, rank), self.batches_mixed))
        mixed = self.mixer(batch[0], batch[1], generator=self._generator)
        self.batches_mixed += 1
        if module is not None and self.log_draws:
            self._log(module, mixed)
        return mixed

    def _log(self, module, mixed: MixedBatch) -> None:
        size = len(mixed)
        module.log(self.prefix + "lam", mixed.lam.detach().float().mean(), on_step=True, on_epoch=False,
                   batch_size=size)
        if self.mixer.graph is not None:
            kept = (mixed.weights.detach() != 0).float().mean()
            module.log(self.prefix + "kept_share", kept, on_step=True, on_epoch=False, batch_size=size)

    def get_extra_state(self) -> dict:
        return {"format": STATE_FORMAT, "seed": self.seed, "batches_mixed": self.batches_mixed}

    def set_extra_state(self, state) -> None:
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"not a vicinal Mixing state (expected a dict with format={STATE_FORMAT}), got {state!r}")
        self.seed = check_int("seed", state["seed"], minimum=0)
        self.batches_mixed = check_int("batches_mixed", state["batches_mixed"], minimum=0)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        if prefix + _EXTRA_STATE_KEY_SUFFIX not in state_dict:
            warnings.warn(f"the loaded state dict has no mixing state ({prefix}{_EXTRA_STATE_KEY_SUFFIX}): it was "
                          "saved without vicinal.lightning.Mixing; mixing continues from batch "
                          f"{self.batches_mixed} of seed {self.seed}, so the lambdas and partners differ from "
                          "the run that wrote the checkpoint", MissingMixingStateWarning, stacklevel=2)
            return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        return f"{self.mixer!r}, seed={self.seed}, batches_mixed={self.batches_mixed}"
