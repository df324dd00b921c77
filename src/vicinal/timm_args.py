"""timm's ``Mixup(...)`` arguments -> a vicinal :class:`~vicinal.Mixer` with the same distribution.

An integration with no paper of its own (the methods are Zhang et al. 2018 and Yun et al. 2019).
docs/timm.md maps every argument of timm's ``Mixup`` and of torchvision v2's ``MixUp`` / ``CutMix``.
"""

from __future__ import annotations

import numbers
from typing import Any

from ._checks import check_bool, check_choice, check_fraction, check_int
from .mixers import Mixer

TIMM_MODES = ("batch", "pair", "elem")


def _alpha(name: str, value: Any) -> float:
    """timm's alphas: a real >= 0, where 0 switches that method off."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0 (0 turns it off, as in timm), got {value!r}")
    return float(value)


def from_timm(*, mixup_alpha: float = 1.0, cutmix_alpha: float = 0.0, cutmix_minmax: Any = None, prob: float = 1.0,
              switch_prob: float = 0.5, mode: str = "batch", correct_lam: bool = True, label_smoothing: float = 0.1,
              num_classes: int = 1000, multi_label: bool = False) -> Mixer:
    """A vicinal mixer that behaves as ``timm.data.Mixup`` with the same arguments (and timm's defaults).

    Integration, no paper: Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) as timm combines
    them. The returned :class:`~vicinal.Mixer` draws, per batch (``mode="batch"``) or per sample
    (``"pair"``, ``"elem"``): mixing with probability ``prob``; then CutMix with probability
    ``switch_prob`` when both alphas are > 0 (only the positive one otherwise); lambda from
    Beta(alpha, alpha) of the chosen method; CutMix boxes with the area-corrected lambda; targets
    one-hot, smoothed by ``label_smoothing`` (timm's s / C convention), then mixed.

    ``inputs, targets = mixer(x, y, generator=g)`` replaces ``x, y = mixup_fn(x, y)``. Differences,
    all on purpose: partners form a random cycle instead of timm's flip (``B - 1 - i``), so odd
    batches work and no sample is its own partner; the input is not modified in place; randomness
    comes from ``generator`` (timm: numpy's global RNG); in ``"pair"`` mode the two samples of a
    pair do not share their lambda and box (each sample's marginal law is timm's). For what timm
    lacks, build ``Mixer(...)`` with the arguments ``repr(mixer)`` prints plus ``pairing=`` (optimal
    transport) or ``graph=`` (locality weights).

    Raises
    ------
    ValueError
        Unknown ``mode`` (timm silently treats a misspelt one as "batch"); ``cutmix_minmax``
        (boxes of random sides are not implemented: boxes come from lambda); both alphas 0;
        ``label_smoothing`` outside [0, 1); ``prob`` / ``switch_prob`` outside [0, 1];
        ``correct_lam=False`` or ``multi_label=True`` (not implemented).
    """
    check_choice("mode", mode, TIMM_MODES)
    if cutmix_minmax is not None:
        both = f" together with cutmix_alpha={cutmix_alpha!r} (timm then overrides cutmix_alpha with 1.0)" \
            if cutmix_alpha else ""
        raise ValueError(
            f"cutmix_minmax={cutmix_minmax!r}{both} is not supported: vicinal draws each CutMix box from lambda "
            f"(side ratio sqrt(1 - lambda), Yun et al. 2019); pass cutmix_alpha= instead and drop cutmix_minmax"
        )
    mixup_alpha, cutmix_alpha = _alpha("mixup_alpha", mixup_alpha), _alpha("cutmix_alpha", cutmix_alpha)
    if mixup_alpha == 0 and cutmix_alpha == 0:
        raise ValueError("mixup_alpha and cutmix_alpha are both 0, so nothing would be mixed; set one of them > 0 "
                         "(or drop the mixer and use label smoothing in the loss)")
    if not check_bool("correct_lam", correct_lam):
        raise ValueError(f"correct_lam={correct_lam!r} is not supported: vicinal always weights CutMix targets by "
                         f"the exact pasted area (timm's default correct_lam=True)")
    if check_bool("multi_label", multi_label):
        raise ValueError(f"multi_label={multi_label!r} is not supported (smoothing towards 0.5 for multi-label "
                         f"targets); pass dense (B, C) targets with label_smoothing=0 instead")
    num_classes = check_int("num_classes", num_classes, minimum=1)
    check_fraction("label_smoothing", label_smoothing, closed=False)
    check_fraction("prob", prob)
    check_fraction("switch_prob", switch_prob)
    lam_mode = "batch" if mode == "batch" else "sample"
    common = dict(num_classes=num_classes, lam_mode=lam_mode, label_smoothing=label_smoothing, prob=prob)
    if cutmix_alpha == 0:
        return Mixer(alpha=mixup_alpha, **common)
    if mixup_alpha == 0:
        return Mixer(alpha=cutmix_alpha, interpolation="cutmix", **common)
    return Mixer(alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, switch_prob=switch_prob, **common)
