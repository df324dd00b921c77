"""CutMix as an interpolation part (Yun et al. 2019): the target weight is the exact pasted area, with
random, optimal-transport and graph pairing alike, and distances are taken between whole images."""

import pytest
import torch

import vicinal
from vicinal.cutmix import boxes_from_uniforms

C = 4


def _batch(b=12, shape=(3, 9, 11), seed=0):
    g = torch.Generator().manual_seed(seed)
    # Distinct values everywhere, so "pixel came from the partner" is decidable by equality.
    x = torch.randperm(b * torch.Size(shape).numel(), generator=g).reshape(b, *shape).float()
    return x, torch.randint(0, C, (b,), generator=g)


def _pasted(x, batch, i):
    """Ground truth read off the output: the pixels of sample i that are its partner's and not its own."""
    mixed, own, other = batch.inputs[i], x[i], x[batch.partner[i]]
    from_partner = (mixed == other) & (mixed != own)
    assert torch.equal(mixed, torch.where(from_partner, other, own))  # nothing else was changed
    return from_partner


MIXERS = {
    "random": lambda **kw: vicinal.CutMix(alpha=1.0, num_classes=C, **kw),
    "ot": lambda **kw: vicinal.Mixer(pairing=vicinal.OptimalTransportPairing(3), interpolation="cutmix",
                                     num_classes=C, **kw),
    "graph-uniform": lambda **kw: vicinal.LocalMixup(graph=vicinal.Threshold(quantile=0.5), interpolation="cutmix",
                                                     num_classes=C, **kw),
    "graph-weighted": lambda **kw: vicinal.LocalMixup(graph=vicinal.KNN(4), sampling="weighted",
                                                      interpolation="cutmix", num_classes=C, **kw),
}


@pytest.mark.parametrize("lam_mode", ["batch", "sample"])
@pytest.mark.parametrize("name", list(MIXERS))
def test_target_weight_is_the_exact_pasted_area_and_the_box_runs_through_all_channels(name, lam_mode):
    x, y = _batch()
    mixer = MIXERS[name](lam_mode=lam_mode)
    g = torch.Generator().manual_seed(3)
    boxes_seen = set()
    for _ in range(6):
        batch = mixer(x, y, generator=g)
        onehot = torch.nn.functional.one_hot(y, C).float()
        for i in range(x.shape[0]):
            j = int(batch.partner[i])
            expected_targets = batch.lam[i] * onehot[i] + (1 - batch.lam[i]) * onehot[j]
            assert torch.allclose(batch.targets[i], expected_targets, atol=1e-6)
            if j == i:  # a self pair pastes its own pixels: nothing to read off
                assert torch.equal(batch.inputs[i], x[i])
                continue
            pasted = _pasted(x, batch, i)
            assert torch.equal(pasted, pasted[:1].expand_as(pasted))  # same box in every channel
            rows, cols = pasted[0].any(1).nonzero().flatten(), pasted[0].any(0).nonzero().flatten()
            area = int(pasted[0].sum())
            if area:  # a rectangle: its bounding box is full
                assert area == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
                boxes_seen.add((int(rows.min()), int(cols.min()), area))
            assert float(batch.lam[i]) == pytest.approx(1 - area / (9 * 11), abs=1e-7)
        if lam_mode == "batch":
            assert torch.equal(batch.lam, batch.lam[:1].expand_as(batch.lam))
    assert len(boxes_seen) > 3  # boxes move and change size


def test_per_sample_lambda_gives_per_sample_boxes():
    x, y = _batch(b=16)
    batch = vicinal.CutMix(alpha=1.0, num_classes=C, lam_mode="sample")(x, y, generator=torch.Generator().manual_seed(0))
    areas = {int(_pasted(x, batch, i)[0].sum()) for i in range(16)}
    assert len(areas) > 4


def test_boxes_follow_the_rule_of_yun_et_al():
    """Side floor(H sqrt(1 - lam)), centre floor(u H), clipped: checked against a direct loop over examples."""
    for lam, uy, ux, h, w in [(0.5, 0.5, 0.5, 10, 10), (0.0, 0.0, 0.99, 8, 6), (0.9, 0.95, 0.1, 7, 9), (1.0, 0.3, 0.3, 5, 5)]:
        side_h, side_w = int(h * (1 - lam) ** 0.5), int(w * (1 - lam) ** 0.5)
        cy, cx = int(uy * h), int(ux * w)
        expected = [max(cy - side_h // 2, 0), min(cy + (side_h + 1) // 2, h),
                    max(cx - side_w // 2, 0), min(cx + (side_w + 1) // 2, w)]
        box = boxes_from_uniforms(torch.tensor([lam], dtype=torch.float64),
                                  torch.tensor([[uy, ux]], dtype=torch.float64), h, w)
        assert box[0].tolist() == expected


def test_graph_and_transport_see_the_whole_image():
    """Locality weights are the graph on the flattened original images (not the box, not the mixed image);
    OT partners are those of linear k-Mixup under the same generator (the box draws come after)."""
    x, y = _batch(b=12)
    x = x / x.max()
    eps = float(torch.cdist(x.flatten(1), x.flatten(1)).median())
    mixer = vicinal.LocalMixup(graph=vicinal.Threshold(eps=eps), interpolation="cutmix", num_classes=C)
    batch = mixer(x, y, generator=torch.Generator().manual_seed(1))
    distances = torch.cdist(x.flatten(1).double(), x.flatten(1).double())
    expected = (distances[torch.arange(12), batch.partner] <= eps).float()
    assert torch.equal(batch.weights, expected)

    cut = vicinal.Mixer(pairing=vicinal.OptimalTransportPairing(4), interpolation="cutmix", num_classes=C)
    linear = vicinal.KMixup(k=4, num_classes=C)
    a = cut(x, y, generator=torch.Generator().manual_seed(5))
    b = linear(x, y, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.partner, b.partner)


def test_cutmix_without_two_spatial_dimensions_is_refused():
    with pytest.raises(ValueError, match=r"\(H, W\).*shape \(6, 5\)"):
        vicinal.CutMix(num_classes=C)(torch.randn(6, 5), torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match="interpolation must be one of"):
        vicinal.Mixer(interpolation="cut")


def test_inputs_are_not_modified_and_lam_one_pastes_nothing():
    x, y = _batch()
    before = x.clone()
    mixer = vicinal.CutMix(alpha=1.0, num_classes=C, prob=0.0)
    batch = mixer(x, y, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, before) and torch.equal(batch.inputs, x)
    assert torch.equal(batch.lam, torch.ones(12)) and torch.equal(batch.partner, torch.arange(12))
