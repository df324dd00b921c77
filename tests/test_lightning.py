"""vicinal inside a real Lightning Trainer on the CPU: precisions, checkpoint resume, logging, bad input."""

from __future__ import annotations

import warnings

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import vicinal as v
from vicinal.lightning import MissingMixingStateWarning, Mixing
from vicinal.seeding import derive_seed

FEATURES, CLASSES, N, BATCH = 6, 3, 48, 16


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, FEATURES, generator=g), torch.randint(0, CLASSES, (N,), generator=g)


def _trainer(tmp_path, **kwargs):
    settings = dict(accelerator="cpu", devices=1, max_epochs=1, logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    settings.update(kwargs)
    return L.Trainer(**settings)


class Classifier(L.LightningModule):
    """A linear classifier; mixes with ``Mixing`` when given a mixer, else expects MixedBatch batches."""

    def __init__(self, mixer=None, seed=0):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Linear(FEATURES, CLASSES)
        self.mixing = None if mixer is None else Mixing(mixer, seed=seed)
        self.seen = []  # (lam, partner, input dtype, partner dtype) of each training batch

    def training_step(self, batch, batch_idx):
        mixed = batch if self.mixing is None else self.mixing(batch, self)
        self.seen.append((mixed.lam.detach().float().clone(), mixed.partner.clone(), mixed.inputs.dtype,
                          mixed.partner.dtype))
        loss = v.mixup_loss(self.net(mixed.inputs), mixed)
        self.last_loss = loss.detach().float()
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "bf16-true", "16-true"])
@pytest.mark.parametrize("where", ["collate", "training_step"])
def test_trains_under_every_cpu_precision(tmp_path, precision, where):
    """MixedBatch survives Lightning's transfer and precision casts (apply_to_collection), partner stays int64."""
    x, y = _data()
    mixer = v.LocalMixup(alpha=1.0, graph=v.KNN(n_neighbors=4), num_classes=CLASSES)
    collate = v.MixCollate(mixer, seed=0) if where == "collate" else None
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, collate_fn=collate)
    model = Classifier(mixer if where == "training_step" else None)
    _trainer(tmp_path, precision=precision).fit(model, loader)
    assert len(model.seen) == N // BATCH
    expected_dtype = {"bf16-true": torch.bfloat16, "16-true": torch.float16}.get(precision, torch.float32)
    for _, partner, input_dtype, partner_dtype in model.seen:
        assert input_dtype == expected_dtype and partner_dtype == torch.int64
        assert partner.min() >= 0 and partner.max() < BATCH
    assert torch.isfinite(model.last_loss)


def test_16_mixed_on_cpu_is_lightnings_bf16_fallback(tmp_path):
    """Lightning refuses fp16 AMP on the CPU by switching to bf16-mixed with a warning (its documented behaviour)."""
    with pytest.warns(UserWarning, match="AMP with fp16 is not supported on CPU"):
        trainer = _trainer(tmp_path, precision="16-mixed")
    assert trainer.precision == "bf16-mixed"


def _fit(tmp_path, epochs, *, resume=None, model=None, seed=3):
    x, y = _data()
    model = model or Classifier(v.KMixup(alpha=1.0, k=4, num_classes=CLASSES), seed=seed)
    trainer = _trainer(tmp_path, max_epochs=epochs, enable_checkpointing=True,
                       callbacks=[L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)])
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=BATCH), ckpt_path=resume)
    return model


def test_stop_and_resume_equals_an_uninterrupted_run_bit_for_bit(tmp_path):
    whole = _fit(tmp_path / "whole", 3)
    _fit(tmp_path / "part", 1)
    resumed = _fit(tmp_path / "part", 3, resume=str(tmp_path / "part" / "last.ckpt"))
    assert resumed.mixing.batches_mixed == whole.mixing.batches_mixed == 3 * (N // BATCH)
    tail = whole.seen[N // BATCH:]  # the batches the resumed run mixed
    assert len(resumed.seen) == len(tail)
    for (lam_a, partner_a, *_), (lam_b, partner_b, *_) in zip(tail, resumed.seen):
        assert torch.equal(lam_a, lam_b) and torch.equal(partner_a, partner_b)
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), name
    # Without the restored counter the resumed run would redraw the first epoch's streams.
    assert not torch.equal(whole.seen[0][0], tail[0][0]) or not torch.equal(whole.seen[0][1], tail[0][1])


def test_checkpoint_without_mixing_state_resumes_with_a_warning(tmp_path):
    plain = Classifier(None)
    plain.training_step = lambda batch, batch_idx: torch.nn.functional.cross_entropy(plain.net(batch[0]), batch[1])
    x, y = _data()
    trainer = _trainer(tmp_path, enable_checkpointing=True,
                       callbacks=[L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)])
    trainer.fit(plain, DataLoader(TensorDataset(x, y), batch_size=BATCH))
    with pytest.warns(MissingMixingStateWarning, match="no mixing state"):
        resumed = _fit(tmp_path, 2, resume=str(tmp_path / "last.ckpt"))
    assert resumed.mixing.batches_mixed == N // BATCH  # one more epoch, streams from batch 0
    assert len(resumed.seen) == N // BATCH


def test_logs_the_batch_lambda_and_kept_share(tmp_path):
    x, y = _data()
    graph = v.Threshold(eps=2.5)
    model = Classifier(v.LocalMixup(alpha=1.0, graph=graph, num_classes=CLASSES), seed=5)
    trainer = _trainer(tmp_path, logger=L.pytorch.loggers.CSVLogger(tmp_path), log_every_n_steps=1)
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=BATCH))
    logged = trainer.logged_metrics
    lam, partner, *_ = model.seen[-1]
    assert float(logged["mixing/lam"]) == pytest.approx(float(lam.mean()))
    # Ground truth from the definition: share of samples whose partner lies within eps (self pairs always kept).
    last_x = x[-BATCH:]
    distances = (last_x - last_x[partner]).norm(dim=1)
    assert float(logged["mixing/kept_share"]) == pytest.approx(float((distances <= 2.5).float().mean()))
    assert "mixing/kept_share" not in _fit_logged(tmp_path / "k", v.KMixup(alpha=1.0, k=2, num_classes=CLASSES))


def _fit_logged(tmp_path, mixer):
    x, y = _data()
    trainer = _trainer(tmp_path, logger=L.pytorch.loggers.CSVLogger(tmp_path), log_every_n_steps=1)
    trainer.fit(Classifier(mixer), DataLoader(TensorDataset(x, y), batch_size=BATCH))
    return trainer.logged_metrics


class _Rank:
    """Stands for a LightningModule on rank ``global_rank`` (Mixing uses only these two attributes)."""

    def __init__(self, rank):
        self.global_rank = rank

    def log(self, *args, **kwargs):
        pass


def test_ranks_draw_different_reproducible_streams():
    x, y = _data()
    mixer = v.Mixup(alpha=1.0, num_classes=CLASSES)

    def draws(rank):
        mixing = Mixing(mixer, seed=11)
        return [mixing((x, y), _Rank(rank)) for _ in range(3)]

    rank0, rank1, again = draws(0), draws(1), draws(1)
    for a, b, c in zip(rank0, rank1, again):
        assert not torch.equal(a.lam, b.lam)
        assert torch.equal(b.lam, c.lam) and torch.equal(b.partner, c.partner) and torch.equal(b.inputs, c.inputs)
    # Batch n of rank r is the mixer on a generator seeded derive_seed(rank_seed(seed, r), n).
    expected = mixer(x, y, generator=torch.Generator().manual_seed(derive_seed(derive_seed(11, 1), 2)))
    assert torch.equal(rank1[2].inputs, expected.inputs)


def test_bad_input_is_refused_clearly():
    with pytest.raises(TypeError, match="vicinal mixer"):
        Mixing(lambda x, y: (x, y))
    with pytest.raises(ValueError, match="seed"):
        Mixing(v.Mixup(num_classes=3), seed=-1)
    mixing = Mixing(v.Mixup(num_classes=3))
    x, y = _data()
    with pytest.raises(TypeError, match="pair"):
        mixing({"x": x, "y": y})
    with pytest.raises(TypeError, match="already a MixedBatch"):
        mixing(mixing((x, y)))
    with pytest.raises(TypeError, match="LightningModule"):
        mixing((x, y), object())
    with pytest.raises(ValueError, match="Mixing state"):
        mixing.set_extra_state({"seed": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = Mixing(v.Mixup(num_classes=3), seed=9)
        restored.load_state_dict(mixing.state_dict())  # a complete state loads silently
    assert restored.seed == 0


def test_readme_lightning_example_adds_three_lines_and_checkpoints_the_streams(tmp_path, monkeypatch):
    """README's Lightning block runs as written; its checkpoint holds the mixing state of every batch mixed."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "vicinal.lightning" in b]
    assert [line for line in block.splitlines() if re.search(r"# \(\d\)", line)] == \
        [line for line in block.splitlines() if "mixing" in line or "mixup_loss" in line]  # the marked lines
    assert len(re.findall(r"# \(\d\)", block)) == 3
    x, y = _data()
    monkeypatch.chdir(tmp_path)
    loader = DataLoader(TensorDataset(torch.randn(64, 20), torch.randint(0, 10, (64,))), batch_size=16)
    exec(compile(block, "README", "exec"), {"loader": loader})
    (checkpoint,) = (tmp_path / "results" / "lightning").rglob("*.ckpt")
    state = torch.load(checkpoint, weights_only=False)["state_dict"]["mixing._extra_state"]
    assert state == {"format": 1, "seed": 0, "batches_mixed": 4}


def test_overhead_benchmark_runs(tmp_path):
    """benchmarks/lightning_overhead.py runs end to end on tiny settings (no timing asserted)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import lightning_overhead

    result = lightning_overhead.main(["--rounds", "1", "--steps", "5", "--calls", "3", "--root", str(tmp_path)])
    assert set(result["ms_per_step"]) == {"erm"} | {f"{mode}/{name}" for name in lightning_overhead.MIXERS
                                                    for mode in ("hand", "mixing", "nolog")}
    assert all(value > 0 for value in result["ms_per_step"].values())
