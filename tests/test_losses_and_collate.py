"""Weighted soft-target loss reductions, and mixing inside DataLoader workers."""

import torch
from torch.utils.data import DataLoader, TensorDataset

import vicinal as v


def batch_with_weights(weights, n_classes=3, n=None):
    n = len(weights) if n is None else n
    targets = torch.nn.functional.one_hot(torch.arange(n) % n_classes, n_classes).float()
    return v.MixedBatch(inputs=torch.zeros(n, 1), targets=targets, lam=torch.ones(n),
                        partner=torch.arange(n), weights=None if weights is None else torch.tensor(weights))


def test_soft_cross_entropy_equals_two_term_mixup_loss():
    """Zhang et al.: lam*CE(y_a) + (1-lam)*CE(y_b) == CE against the mixed one-hot target."""
    logits = torch.randn(6, 4)
    ya, yb, lam = torch.randint(0, 4, (6,)), torch.randint(0, 4, (6,)), 0.3
    ce = torch.nn.functional.cross_entropy
    two_terms = lam * ce(logits, ya) + (1 - lam) * ce(logits, yb)
    mixed = lam * torch.nn.functional.one_hot(ya, 4) + (1 - lam) * torch.nn.functional.one_hot(yb, 4)
    torch.testing.assert_close(v.soft_cross_entropy(logits, mixed.float()).mean(), two_terms)


def test_reductions():
    logits = torch.randn(4, 3)
    batch = batch_with_weights([1.0, 0.0, 0.5, 0.25])
    per = v.soft_cross_entropy(logits, batch.targets)
    w = batch.weights
    torch.testing.assert_close(v.mixup_loss(logits, batch), (w * per).sum() / 4)
    torch.testing.assert_close(v.mixup_loss(logits, batch, reduction="normalized"), (w * per).sum() / w.sum())
    torch.testing.assert_close(v.mixup_loss(logits, batch, reduction="sum"), (w * per).sum())
    torch.testing.assert_close(v.mixup_loss(logits, batch, reduction="none"), w * per)
    plain = batch_with_weights(None, n=4)
    torch.testing.assert_close(v.mixup_loss(logits, plain),
                               torch.nn.functional.cross_entropy(logits, torch.arange(4) % 3))


def test_all_zero_weights_give_zero_loss_and_zero_gradient():
    for reduction in ("mean", "normalized", "sum"):
        logits = torch.randn(4, 3, requires_grad=True)
        loss = v.mixup_loss(logits, batch_with_weights([0.0, 0.0, 0.0, 0.0]), reduction=reduction)
        loss.backward()
        assert loss.item() == 0.0
        assert torch.equal(logits.grad, torch.zeros(4, 3))


def test_zero_weight_sample_with_infinite_loss_contributes_nothing():
    logits = torch.tensor([[0.0, 0.0, 0.0], [1e4, -1e4, 0.0]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    per = v.soft_cross_entropy(logits, targets)
    loss = v.reduce_weighted(per, torch.tensor([1.0, 0.0]), "normalized")
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(logits.grad).all())
    torch.testing.assert_close(loss, per[0])


def test_callable_loss():
    logits = torch.randn(4, 3)
    batch = batch_with_weights([1.0, 1.0, 1.0, 1.0])
    l1 = v.mixup_loss(logits, batch, loss=lambda out, t: (out - t).abs().sum(1))
    torch.testing.assert_close(l1, (logits - batch.targets).abs().sum(1).mean())


def _loader(workers, seed, loader_seed, shuffle=True):
    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    y = torch.arange(40) % 4
    ds = TensorDataset(x, y)
    collate = v.MixCollate(v.KMixup(alpha=1.0, k=2, num_classes=4), seed=seed)
    return DataLoader(ds, batch_size=8, shuffle=shuffle, collate_fn=collate, num_workers=workers,
                      generator=torch.Generator().manual_seed(loader_seed), drop_last=True)


def _epochs(loader, n=2):
    return [[(b.inputs.clone(), b.lam.clone(), b.partner.clone()) for b in loader] for _ in range(n)]


def test_collate_in_workers_is_reproducible_and_varies_by_epoch():
    a = _epochs(_loader(2, seed=1, loader_seed=5))
    b = _epochs(_loader(2, seed=1, loader_seed=5))
    for ea, eb in zip(a, b):
        for (xa, la, pa), (xb, lb, pb) in zip(ea, eb):
            assert torch.equal(xa, xb) and torch.equal(la, lb) and torch.equal(pa, pb)
    lams_epoch1 = torch.stack([lam[0] for _, lam, _ in a[0]])
    lams_epoch2 = torch.stack([lam[0] for _, lam, _ in a[1]])
    assert not torch.equal(lams_epoch1, lams_epoch2), "each epoch must draw fresh lambdas"
    for batch in a[0]:
        assert isinstance(batch[0], torch.Tensor) and batch[0].shape == (8, 3)


def test_collate_in_main_process_matches_direct_calls():
    got = list(_loader(0, seed=3, loader_seed=5, shuffle=False))
    g = torch.Generator().manual_seed(3)
    mixer = v.KMixup(alpha=1.0, k=2, num_classes=4)
    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    y = torch.arange(40) % 4
    for i, batch in enumerate(got):
        expected = mixer(x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8], generator=g)
        assert torch.equal(batch.inputs, expected.inputs)
        assert torch.equal(batch.partner, expected.partner)


def test_mixed_batch_to_and_pin_memory_keep_partner_dtype():
    batch = batch_with_weights([1.0, 0.5])
    moved = batch.to(torch.float64)
    assert moved.inputs.dtype == torch.float64 and moved.partner.dtype == torch.long
    assert moved.to("cpu").partner.device.type == "cpu"
