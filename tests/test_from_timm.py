"""`vicinal.from_timm` against timm's documented Mixup semantics, re-implemented here from the description
(never imported, never vicinal's own code): box area and lambda correction, switch_prob, prob, smoothing."""

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import betaincinv

import vicinal

C, H, W = 5, 8, 10


def _smoothed(y, s):
    """timm's convention: s / C off the label, 1 - s + s / C on it."""
    t = np.full((len(y), C), s / C)
    t[np.arange(len(y)), y] = 1 - s + s / C
    return torch.tensor(t, dtype=torch.float32)


def _beta_quantile(a, u):
    return betaincinv(a, a, u)


def _timm_box(lam, uy, ux):
    """timm / Yun et al.: cut = int(H sqrt(1 - lam)), centre int(u H), [c - cut // 2, c + (cut + 1) // 2) clipped."""
    ch, cw = int(H * np.sqrt(1 - lam)), int(W * np.sqrt(1 - lam))
    cy, cx = int(uy * H), int(ux * W)
    return (np.clip(cy - ch // 2, 0, H), np.clip(cy + (ch + 1) // 2, 0, H),
            np.clip(cx - cw // 2, 0, W), np.clip(cx + (cw + 1) // 2, 0, W))


def test_batch_mode_replays_timm_rules_from_the_documented_uniforms():
    """mode="batch": one gate (prob), one switch (switch_prob), one lambda and one box per batch. The
    uniforms are read from a copy of the generator in the documented order (lambda, B for the random
    cycle, 2 box centres, switch, gate) and timm's rules are applied to them here."""
    mixup_alpha, cutmix_alpha, prob, switch, smooth = 0.8, 1.0, 0.7, 0.4, 0.1
    mixer = vicinal.from_timm(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, prob=prob, switch_prob=switch,
                              label_smoothing=smooth, num_classes=C)
    b = 6
    rng = torch.Generator().manual_seed(0)
    x, y = torch.rand(b, 3, H, W, generator=rng), torch.randint(0, C, (b,), generator=rng)
    g = torch.Generator().manual_seed(11)
    kinds = []
    for _ in range(60):
        replay = torch.Generator().manual_seed(0)
        replay.set_state(g.get_state())
        u = torch.rand(1 + b + 2 + 1 + 1, dtype=torch.float64, generator=replay).numpy()
        batch = mixer(x, y, generator=g)
        order = np.argsort(u[1:1 + b], kind="stable")
        partner = np.empty(b, dtype=int)
        partner[order] = np.roll(order, -1)
        targets = _smoothed(y.numpy(), smooth)
        if not u[-1] < prob:  # not mixed: lambda 1, partner itself, targets only smoothed
            kinds.append("none")
            assert torch.equal(batch.inputs, x) and torch.equal(batch.partner, torch.arange(b))
            assert torch.equal(batch.lam, torch.ones(b)) and torch.allclose(batch.targets, targets)
            continue
        assert batch.partner.tolist() == partner.tolist()
        if u[-2] < switch:
            kinds.append("cutmix")
            yl, yh, xl, xh = _timm_box(_beta_quantile(cutmix_alpha, u[0]), u[b + 1], u[b + 2])
            lam = 1 - (yh - yl) * (xh - xl) / (H * W)
            expected = x.clone()
            expected[:, :, yl:yh, xl:xh] = x[partner][:, :, yl:yh, xl:xh]
            assert torch.equal(batch.inputs, expected)
        else:
            kinds.append("mixup")
            lam = _beta_quantile(mixup_alpha, u[0])
            assert torch.allclose(batch.inputs, lam * x + (1 - lam) * x[partner], atol=1e-6)
        assert torch.allclose(batch.lam, torch.full((b,), float(lam)), atol=1e-7)
        assert torch.allclose(batch.targets, lam * targets + (1 - lam) * targets[partner], atol=1e-6)
    assert {"none", "cutmix", "mixup"} <= set(kinds)


def _timm_elem_lams(n, mixup_alpha, cutmix_alpha, prob, switch, rng):
    """timm's per-element parameters, written from its documentation with numpy: gate, switch, Beta lambda,
    then the corrected CutMix lambda of a box with a uniform centre."""
    use_cutmix = rng.random(n) < switch
    lam0 = np.where(use_cutmix, rng.beta(cutmix_alpha, cutmix_alpha, n), rng.beta(mixup_alpha, mixup_alpha, n))
    lam = lam0.copy()
    for i in np.flatnonzero(use_cutmix):
        yl, yh, xl, xh = _timm_box(lam0[i], rng.random(), rng.random())
        lam[i] = 1 - (yh - yl) * (xh - xl) / (H * W)
    return np.where(rng.random(n) < prob, lam, 1.0)


@pytest.mark.parametrize("mode", ["elem", "pair"])
def test_per_sample_modes_have_timms_distribution_of_lambda(mode):
    """mode="elem" / "pair": every sample draws its own gate, switch, lambda and box. The law of the per-sample
    lambda (atoms at 1 and at box areas included) matches timm's by a two-sample KS test and by the
    frequency of unmixed samples."""
    kwargs = dict(mixup_alpha=0.4, cutmix_alpha=1.0, prob=0.8, switch_prob=0.5)
    mixer = vicinal.from_timm(mode=mode, label_smoothing=0.0, num_classes=C, **kwargs)
    b = 16
    x, y = torch.rand(b, 3, H, W, generator=torch.Generator().manual_seed(0)), torch.arange(b) % C
    g = torch.Generator().manual_seed(2)
    ours = torch.cat([mixer(x, y, generator=g).lam for _ in range(250)]).double().numpy()
    theirs = _timm_elem_lams(ours.size, kwargs["mixup_alpha"], kwargs["cutmix_alpha"], kwargs["prob"],
                             kwargs["switch_prob"], np.random.default_rng(0))
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3
    assert abs((ours == 1).mean() - (theirs == 1).mean()) < 0.03
    assert len(np.unique(ours)) > 100  # per-sample lambdas, not one per batch


def test_label_smoothing_only_and_cutmix_only_map_to_the_presets():
    x, y = torch.rand(4, 3, H, W), torch.tensor([0, 1, 2, 3], dtype=torch.int32)
    plain = vicinal.from_timm(mixup_alpha=1.0, num_classes=C, label_smoothing=0.1)
    reference = vicinal.Mixup(alpha=1.0, num_classes=C, label_smoothing=0.1)
    a, b = (m(x, y, generator=torch.Generator().manual_seed(0)) for m in (plain, reference))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    cut = vicinal.from_timm(mixup_alpha=0.0, cutmix_alpha=1.0, num_classes=C, label_smoothing=0.0)
    a, b = (m(x, y, generator=torch.Generator().manual_seed(0)) for m in (cut, vicinal.CutMix(num_classes=C)))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.lam, b.lam)


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="btach"), r"mode must be one of .*'btach'"),
    (dict(mode="half"), r"mode must be one of .*'half'"),
    (dict(cutmix_minmax=(0.2, 0.8), cutmix_alpha=1.0), r"cutmix_minmax=\(0.2, 0.8\) together with cutmix_alpha=1.0"),
    (dict(cutmix_minmax=(0.2, 0.8)), r"cutmix_minmax=\(0.2, 0.8\) is not supported"),
    (dict(label_smoothing=1.0), r"label_smoothing must lie in \[0, 1\), got 1.0"),
    (dict(label_smoothing=-0.1), r"label_smoothing must lie in \[0, 1\), got -0.1"),
    (dict(prob=1.5), r"prob must lie in \[0, 1\], got 1.5"),
    (dict(switch_prob=-1), r"switch_prob must lie in \[0, 1\], got -1"),
    (dict(mixup_alpha=0.0, cutmix_alpha=0.0), "both 0"),
    (dict(mixup_alpha=-1.0), "mixup_alpha must be a finite number >= 0"),
    (dict(correct_lam=False), "correct_lam=False is not supported"),
    (dict(multi_label=True), "multi_label=True is not supported"),
])
def test_bad_timm_arguments_name_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vicinal.from_timm(num_classes=C, **kwargs)
