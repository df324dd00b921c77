"""Section 1: per-batch mixing time of every preset against the Fig. 5 baseline and a ResNet-18 step.

On one CIFAR-shaped batch (synthetic, B x 3 x 32 x 32, values in [-1, 1], 10 classes) each mixer,
the Fig. 5 pseudocode (:mod:`fig5_baseline`) and one ERM training step of PreActResNet18
(forward, backward, SGD step) are timed in interleaved rounds (:mod:`timing`).
"""

from __future__ import annotations

import numpy as np
import torch

import vicinal
from fig5_baseline import fig5_kmixup
from timing import default_clock, median, paired_ratio, time_interleaved
from vicinal.lab.models import PreActResNet18
from vicinal.pairing import _costs_to_next_block, _rows, _solve_assignments

NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)
TARGET_K = 32


def cifar_batch(batch_size: int, *, seed: int = 0, device: torch.device | str = "cpu"):
    """A synthetic CIFAR-shaped batch ``(x, y)``: inputs uniform in [-1, 1], labels in [0, 10)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((batch_size,) + IMAGE_SHAPE, generator=g) * 2 - 1
    y = torch.randint(0, NUM_CLASSES, (batch_size,), generator=g)
    return x.to(device), y.to(device)


def presets(ks: tuple[int, ...], *, eps: float, n_neighbors: int = 8, decay: float = 5e-4) -> dict[str, vicinal.Mixer]:
    """Mixup, the six Local Mixup variants (three graphs x two samplings) and KMixup for each k.

    Parameters
    ----------
    ks : tuple of int
        Block sizes of the KMixup presets.
    eps : float
        Threshold of the ``Threshold`` graph (the benchmark uses the batch's median pair distance).
    n_neighbors : int
        Size of the kNN graph.
    decay : float
        Rate of the exponential graph (the Local Mixup authors' value for inputs in [-1, 1]).
    """
    graphs = {"threshold": vicinal.Threshold(eps), "knn": vicinal.KNN(n_neighbors),
              "exponential": vicinal.Exponential(decay)}
    mixers: dict[str, vicinal.Mixer] = {"Mixup": vicinal.Mixup(num_classes=NUM_CLASSES)}
    for sampling in ("uniform", "weighted"):
        for graph_name, graph in graphs.items():
            mixers[f"LocalMixup({graph_name}, {sampling})"] = vicinal.LocalMixup(
                graph=graph, sampling=sampling, num_classes=NUM_CLASSES)
    for k in ks:
        mixers[f"KMixup(k={k})"] = vicinal.KMixup(k=k, num_classes=NUM_CLASSES)
    mixers.update(cutmix_presets())
    return mixers


#: timm's ImageNet recipe (DeiT / ResNet strikes back): Mixup 0.8, CutMix 1.0, switch 0.5, smoothing 0.1.
TIMM_RECIPE = dict(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=NUM_CLASSES)


def cutmix_presets() -> dict[str, vicinal.Mixer]:
    """CutMix per batch and per sample, and timm's recipe through ``from_timm`` in "batch" and "elem" modes."""
    return {"CutMix": vicinal.CutMix(num_classes=NUM_CLASSES),
            "CutMix(lam_mode=sample)": vicinal.CutMix(num_classes=NUM_CLASSES, lam_mode="sample"),
            "from_timm(recipe)": vicinal.from_timm(**TIMM_RECIPE),
            "from_timm(recipe, mode=elem)": vicinal.from_timm(mode="elem", **TIMM_RECIPE)}


def resnet_step_fn(x: torch.Tensor, y: torch.Tensor, *, width: int = 64, seed: int = 0):
    """A zero-argument ERM step of PreActResNet18 on ``(x, y)``: forward, cross-entropy, backward, SGD.

    ``width = 64`` is the standard ResNet-18 (11.2 M parameters); smaller widths give a small network
    for quick runs. SGD as in Greenewald et al. 2023, Sec. 5.2 (lr 0.1, momentum 0.9, weight decay 1e-4).
    """
    torch.manual_seed(seed)
    model = PreActResNet18(NUM_CLASSES, width=width).to(x.device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

    def step():
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step


def run_mixing_cost(*, batch_size: int = 128, ks: tuple[int, ...] = (2, 4, 8, 16, 32, 64), rounds: int = 30,
                    resnet_width: int = 64, resnet_repeats: int = 3, device: str = "cpu", seed: int = 0) -> dict:
    """Time every preset, the Fig. 5 baseline (k = 32) and the ResNet step; return one record.

    Parameters
    ----------
    batch_size : int
        Batch size B (the paper's CIFAR runs use 128).
    ks : tuple of int
        KMixup block sizes; each needs ``2k <= batch_size``. ``TARGET_K`` (32) is always added.
    rounds : int
        Interleaved timing rounds of the mixers.
    resnet_width : int
        Width of PreActResNet18 (64: ResNet-18); 0 skips the training step.
    resnet_repeats : int
        Timed ResNet steps, spread over the rounds.
    device : {"cpu", "cuda"}
        Where the batch, the mixers' work and the model live. The Fig. 5 baseline copies to the
        CPU for scipy, as the figure's code must.
    seed : int
        Seed of the batch, the model and the mixing generator.

    Returns
    -------
    dict
        ``median_ms`` per clock ("wall", "cpu") and case; ``ratios`` (medians of per-round ratios on
        the CPU clock on the CPU, the wall clock on CUDA); ``share_of_resnet_step`` of each preset;
        ``targets`` met or not; the setup.
    """
    ks = tuple(sorted(set(ks) | {TARGET_K}))
    if 2 * max(ks) > batch_size:
        raise ValueError(f"KMixup(k={max(ks)}) needs a batch of at least {2 * max(ks)}, got batch_size={batch_size}")
    x, y = cifar_batch(batch_size, seed=seed, device=device)
    x2, y2 = cifar_batch(batch_size, seed=seed + 1, device=device)
    onehot1 = torch.nn.functional.one_hot(y, NUM_CLASSES).float()
    onehot2 = torch.nn.functional.one_hot(y2, NUM_CLASSES).float()
    eps = float(vicinal.pairwise_distances(x).median())
    mixers = presets(ks, eps=eps)
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)

    cases = {name: (lambda m=mixer: m(x, y, generator=generator)) for name, mixer in mixers.items()}
    kmixup = mixers[f"KMixup(k={TARGET_K})"]
    cases[f"KMixup(k={TARGET_K}, two batches)"] = lambda: kmixup(x, y, generator=generator, partner_batch=(x2, y2))
    cases[f"Fig5 baseline(k={TARGET_K})"] = lambda: fig5_kmixup(
        x.cpu(), onehot1.cpu(), x2.cpu(), onehot2.cpu(), TARGET_K, 1.0, rng)
    repeats = {}
    if resnet_width:
        cases["ResNet step"] = resnet_step_fn(x, y, width=resnet_width, seed=seed)
        repeats["ResNet step"] = resnet_repeats
    both = time_interleaved(cases, rounds=rounds, warmup=1, device=device, repeats=repeats)
    clock = default_clock(device)
    seconds = both[clock]
    ms = {c: {name: 1e3 * median(runs) for name, runs in both[c].items()} for c in both}
    k_name, base_name = f"KMixup(k={TARGET_K})", f"Fig5 baseline(k={TARGET_K})"
    ratios = {
        f"{k_name} / {base_name}": paired_ratio(seconds[k_name], seconds[base_name]),
        f"KMixup(k={TARGET_K}, two batches) / {base_name}": paired_ratio(
            seconds[f"KMixup(k={TARGET_K}, two batches)"], seconds[base_name]),
        f"{k_name} / Mixup": paired_ratio(seconds[k_name], seconds["Mixup"]),
    }
    ratios.update({f"{name} / Mixup": paired_ratio(seconds[name], seconds["Mixup"]) for name in cutmix_presets()})
    step_share = {}
    if resnet_width:
        step = median(seconds["ResNet step"])
        step_share = {name: median(seconds[name]) / step for name in mixers}
    targets = {
        "KMixup(32) >= 3x faster than Fig. 5": ratios[f"{k_name} / {base_name}"] <= 1 / 3,
        "KMixup(32) <= 1.5x Mixup": ratios[f"{k_name} / Mixup"] <= 1.5,
    }
    if step_share:
        targets["every preset <= 2% of the ResNet step"] = max(step_share.values()) <= 0.02
    return {
        "setup": {"batch_size": batch_size, "input_shape": list(IMAGE_SHAPE), "num_classes": NUM_CLASSES,
                  "device": device, "clock": clock, "rounds": rounds, "resnet_width": resnet_width,
                  "resnet_repeats": resnet_repeats if resnet_width else 0, "threshold_eps": eps,
                  "knn_n_neighbors": 8, "exponential_decay": 5e-4, "alpha": 1.0},
        "median_ms": ms,
        "ratios": ratios,
        "share_of_resnet_step": step_share,
        "targets": targets,
    }


def profile_kmixup(*, batch_size: int = 128, k: int = TARGET_K, rounds: int = 30, device: str = "cpu",
                   seed: int = 0) -> dict:
    """Where the time of ``KMixup(k)`` beyond ``Mixup`` goes: its pairing step by step.

    Times, interleaved, the two whole calls, the whole pairing, and its parts: gathering the
    blocks, the (m, k, k) squared-distance blocks, their batched product alone (the arithmetic
    floor: ``B k d`` multiply-adds) and the Hungarian solves. Uses vicinal's private helpers.

    Returns
    -------
    dict
        ``median_ms`` per clock and part, and ``parts_over_mixup``: each part's median over Mixup's.
    """
    x, y = cifar_batch(batch_size, seed=seed, device=device)
    n_blocks = batch_size // k
    order = torch.randperm(batch_size, generator=torch.Generator().manual_seed(seed))[: n_blocks * k]
    blocks = _rows(x.reshape(batch_size, -1), order.view(n_blocks, k))
    following = blocks.roll(-1, 0).transpose(-1, -2)
    costs = _costs_to_next_block(blocks)
    mixup, kmixup = vicinal.Mixup(num_classes=NUM_CLASSES), vicinal.KMixup(k=k, num_classes=NUM_CLASSES)
    generator = torch.Generator().manual_seed(seed)
    cases = {
        "Mixup call": lambda: mixup(x, y, generator=generator),
        f"KMixup(k={k}) call": lambda: kmixup(x, y, generator=generator),
        "OT pairing": lambda: kmixup.pairing(x, generator=generator),
        "gather blocks": lambda: _rows(x.reshape(batch_size, -1), order.view(n_blocks, k)),
        "squared-distance blocks": lambda: _costs_to_next_block(blocks),
        "batched product alone": lambda: blocks @ following,
        "Hungarian solves": lambda: _solve_assignments(costs),
    }
    both = time_interleaved(cases, rounds=rounds, warmup=2, device=device)
    clock = default_clock(device)
    ms = {c: {name: 1e3 * median(runs) for name, runs in both[c].items()} for c in both}
    return {"setup": {"batch_size": batch_size, "k": k, "rounds": rounds, "clock": clock},
            "median_ms": ms,
            "parts_over_mixup": {name: ms[clock][name] / ms[clock]["Mixup call"] for name in cases}}
