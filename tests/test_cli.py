"""The `vicinal` command line and README's examples, run as a user would."""

import pathlib
import re

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import vicinal
from vicinal.lab.cli import main
from vicinal.lab.store import ResultStore, config_key

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ["epochs=1", "dataset_params.n_per_class=40", "model_params.widths=[8]", "batch_size=16", "k=4"]


def test_compare_writes_table_store_and_figure(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--dataset", "spirals", "--seeds", "2", "--workers", "1", "--out", str(out),
                 "--set", *TINY]) == 0
    text = capsys.readouterr().out
    for method in ("erm", "mixup", "local_mixup", "kmixup"):
        assert method in text
    assert "Paired differences against ERM" in text
    assert (out / "table.md").read_text().count("|") > 10
    assert (out / "decision_boundaries.png").stat().st_size > 10_000
    # Re-running skips every finished run.
    assert main(["compare", "--dataset", "spirals", "--seeds", "2", "--workers", "1", "--out", str(out),
                 "--set", *TINY]) == 0
    assert "8 already stored, 0 run" in capsys.readouterr().out


def test_sweep_then_report(tmp_path, capsys):
    sweep = tmp_path / "s.toml"
    sweep.write_text("""
seeds = 2
[base]
dataset = "spirals"
dataset_params = {n_per_class = 40}
model_params = {widths = [8]}
epochs = 1
batch_size = 16
[grid]
method = ["erm", "local_mixup"]
[methods.local_mixup]
eps = [0.5, 2.0]
""")
    store = tmp_path / "r.sqlite"
    assert main(["sweep", str(sweep), "--store", str(store), "--workers", "1"]) == 0
    assert "6 configs: 0 already stored, 6 run, 0 failed" in capsys.readouterr().out
    assert main(["report", str(store), "--by", "method,eps", "--metrics", "test_error", "--format", "markdown",
                 "--plot", "eps", "--out", str(tmp_path / "rep")]) == 0
    text = capsys.readouterr().out
    assert "| local_mixup | 2.0 | 2 |" in text and "| erm | - | 2 |" in text  # ERM has no eps
    assert (tmp_path / "rep" / "report.md").exists()
    assert (tmp_path / "rep" / "test_error_vs_eps.png").stat().st_size > 5_000
    # Two local_mixup runs per seed (two eps) cannot both pair with one ERM run unless eps is named.
    assert main(["report", str(store), "--metrics", "test_error", "--baseline", "method=erm"]) == 2
    assert "add the config key that tells them apart" in capsys.readouterr().err


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["compare", "--dataset", "spirrals", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'spirrals'" in err and "spirals" in err
    assert main(["compare", "--methods", "erm,cutmix", "--out", str(tmp_path)]) == 2
    assert "method must be one of" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.sqlite")]) == 2
    assert "no result store" in capsys.readouterr().err
    assert main(["reproduce", "fig99"]) == 2
    assert "valid names" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("seeds = 2\n[base\n")
    assert main(["sweep", str(bad), "--store", str(tmp_path / "x.sqlite")]) == 2
    assert "line 2" in capsys.readouterr().err


def test_list(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    assert "spirals" in text and "preact_resnet18" in text and "spirals-eps" in text
    # The image benchmarks of the papers (issue 17): every loader and network, with its parameters.
    assert "svhn           root=<required>, standardize=False" in text
    assert "tiny_imagenet  root=<required>, standardize=False" in text
    assert "cifar10_c      root=<required>, clean_root=<required>, corruption=<required>, severity=<required>" in text
    assert "cifar100_c     root=<required>" in text
    assert "resnet34         width=64" in text and "lenet            padding=2" in text
    assert "wide_resnet      depth=28, widen_factor=10, dropout=0.0" in text


def test_help_reads_well(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in ("compare", "sweep", "report", "reproduce", "list"):
        assert command in text


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, re.S)


def test_readme_examples_run():
    """README's three code examples run as written (with a toy model and loader in scope)."""
    blocks = _python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 3
    x, y = torch.randn(64, 20), torch.randint(0, 10, (64,))
    dataset = TensorDataset(x, y)
    model = torch.nn.Linear(20, 10)
    scope = dict(loader=DataLoader(dataset, batch_size=16), dataset=dataset, model=model, DataLoader=DataLoader,
                 optimizer=torch.optim.SGD(model.parameters(), lr=0.1), train_loader=DataLoader(dataset, batch_size=16),
                 x_test=x[:8], y_test=y[:8])
    images = torch.randn(32, 3, 8, 8).to(memory_format=torch.channels_last)
    image_labels = torch.randint(0, 10, (32,), dtype=torch.int32)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 10))
    scope.update(image_loader=DataLoader(TensorDataset(images, image_labels), batch_size=16), cnn=cnn,
                 cnn_optimizer=torch.optim.SGD(cnn.parameters(), lr=0.1),
                 dict_dataset=[{"image": im, "label": int(lab)} for im, lab in zip(images, image_labels)])
    for block in blocks:
        exec(compile(block.replace("num_workers=2", "num_workers=0"), "README", "exec"), scope)


def test_readme_local_mixup_example_trains_on_normalised_image_batches():
    """The README's Local Mixup lines, as written, on CIFAR-shaped normalised batches: pairs of distinct
    samples are kept, the loss is positive and nothing warns (an absolute eps = 1.5 kept 0 of 128 pairs)."""
    import warnings
    block = next(b for b in _python_blocks((ROOT / "README.md").read_text()) if "LocalMixup" in b)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(256, 3, 32, 32, generator=g), torch.randint(0, 10, (256,), generator=g)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    scope = dict(loader=DataLoader(TensorDataset(x, y), batch_size=128), model=model,
                 optimizer=torch.optim.SGD(model.parameters(), lr=0.01))
    with warnings.catch_warnings():
        warnings.simplefilter("error", vicinal.NoPairsKeptWarning)
        exec(compile(block, "README", "exec"), scope)
    batch, loss = scope["batch"], scope["loss"]
    distinct = batch.partner != torch.arange(len(batch))
    assert int((batch.weights[distinct] > 0).sum()) >= 10
    assert float(loss) > 0


def test_sweep_batches_by_default_and_matches_one_at_a_time(tmp_path, capsys, monkeypatch):
    """`vicinal sweep` trains batchable configs as ensembles unless --no-batched; the stored rows agree."""
    from vicinal.lab.ensemble import grouping
    calls = []
    real = grouping.fit_batched
    monkeypatch.setattr(grouping, "fit_batched", lambda configs: calls.append(len(configs)) or real(configs))
    args = ["sweep", "--workers", "1", "--set", "seeds=3", "base.dataset=spirals", "base.dataset_params={n_per_class=30}",
            "base.model_params={widths=[8]}", "base.epochs=2", "base.batch_size=12", "base.k=4", "grid.method=mixup,kmixup"]
    rows = {}
    for flag in ([], ["--no-batched"]):
        store = tmp_path / f"r{len(flag)}.sqlite"
        assert main(args + ["--store", str(store)] + flag) == 0
        assert "6 configs: 0 already stored, 6 run, 0 failed" in capsys.readouterr().out
        with ResultStore(store) as opened:
            rows[bool(flag)] = {config_key(r.config): r.metrics for r in opened.rows()}
    assert calls == [6]  # one ensemble of six in the default sweep, none with --no-batched
    assert rows[False].keys() == rows[True].keys()
    for key, metrics in rows[True].items():
        assert rows[False][key]["test_nll"] == pytest.approx(metrics["test_nll"], abs=1e-5)


def test_sweep_with_checkpoints_resumes_a_killed_run(tmp_path, capsys, monkeypatch):
    """A run killed after its first epoch resumes from the checkpoint and ends with the uninterrupted numbers."""
    import vicinal.lab.trainer as trainer_module
    from vicinal.lab.store import ResultStore

    args = ["sweep", "--set", "seeds=1", "base.dataset=spirals", "base.dataset_params={n_per_class=40}",
            "base.model_params={widths=[8]}", "base.epochs=3", "base.batch_size=16", "base.method=mixup"]
    assert main(args + ["--store", str(tmp_path / "plain.sqlite"), "--no-batched"]) == 0
    real_save = trainer_module._save_checkpoint

    def save_then_die(path, config, epoch, *rest):
        real_save(path, config, epoch, *rest)
        if epoch == 1:
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of a run

    monkeypatch.setattr(trainer_module, "_save_checkpoint", save_then_die)
    store, ckpt = tmp_path / "ckpt.sqlite", tmp_path / "ckpt"
    assert main(args + ["--store", str(store), "--checkpoint-dir", str(ckpt)]) == 130
    assert len(list(ckpt.glob("*.pt"))) == 1
    saved_epochs = []

    def record(path, config, epoch, *rest):
        saved_epochs.append(epoch)
        real_save(path, config, epoch, *rest)

    monkeypatch.setattr(trainer_module, "_save_checkpoint", record)
    assert main(args + ["--store", str(store), "--checkpoint-dir", str(ckpt)]) == 0
    assert saved_epochs == [2, 3], "the rerun continues after epoch 1 instead of starting over"
    assert list(ckpt.glob("*.pt")) == []  # removed once the run is stored
    with ResultStore(tmp_path / "plain.sqlite") as a, ResultStore(store) as b:
        (plain,), (resumed,) = a.rows(), b.rows()
    assert resumed.metrics["train_loss"] == plain.metrics["train_loss"]
    assert resumed.metrics["test_nll"] == plain.metrics["test_nll"]
    capsys.readouterr()


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"vicinal {vicinal.__version__}"
