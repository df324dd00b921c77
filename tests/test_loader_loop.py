"""The DataLoader loop (lab/loader_loop.py, RunConfig loop="loader") and compile_model, on the CPU.

Ground truths: the DataLoader's batches (in the training process and in two workers) rebuilt from
the documented seeding with plain calls (randperm, crop_flip, the mixer on its seeded generator);
one epoch against a loop written here over those batches; ERM against the host loop (same order,
no draws: exactly equal); a resumed run against an uninterrupted one.
"""

import pytest
import torch

import vicinal as v
import vicinal.lab.trainer as trainer_module
from vicinal.lab.config import RunConfig
from vicinal.lab.device_loop import crop_flip
from vicinal.lab.ensemble import run_batch
from vicinal.lab.ensemble.train import sequential_reason
from vicinal.lab.loader_loop import EpochBatches, HostBatch, LoaderLoop, collated_step
from vicinal.lab.models import LeNet
from vicinal.lab.trainer import train
from vicinal.seeding import derive_seed

SPIRALS = dict(dataset="spirals", dataset_params={"n_per_class": 60}, model="mlp", model_params={"widths": [16, 16]},
               optimizer="adam", lr=0.01, epochs=2, batch_size=16, k=4, eval_rescaled=False)
DIGITS = dict(dataset="digits", dataset_params={"test_fraction": 0.9}, model="lenet", method="local_mixup",
              graph="knn", n_neighbors=4, epochs=2, batch_size=32, lr=0.05, crop_flip=True, loop="loader",
              eval_rescaled=False)


def images(n=48, seed=7):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8).float() / 255
    return x, torch.randint(0, 4, (n,), generator=g)


def expected_batches(x, y, mixer, *, batch_size, data_seed, mix_seed, augment_seed, epoch, worker_seeds):
    """Epoch ``epoch``'s batches from the module's seeding protocol, with plain calls.

    ``worker_seeds``: None for ``workers=0`` (one stream per epoch in the training process), else the
    DataLoader's worker seeds (batch b goes to worker b mod workers, each worker's stream runs on).
    """
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(data_seed))
    keys = [None] if worker_seeds is None else worker_seeds

    def stream(seed, key):
        return torch.Generator().manual_seed(seed if key is None else derive_seed(seed, key))

    mixing = [stream(derive_seed(mix_seed, epoch, 0), key) for key in keys]
    crops = [stream(derive_seed(augment_seed, epoch), key) for key in keys]
    for b in range(x.shape[0] // batch_size):
        idx = order[b * batch_size:(b + 1) * batch_size]
        w = b % len(keys)
        yield mixer(crop_flip(x[idx], generator=crops[w]), y[idx], generator=mixing[w])


def assert_same_batch(got, expected):
    for name in ("inputs", "targets", "lam", "partner", "weights"):
        a, b = getattr(got, name), getattr(expected, name)
        assert (a is None and b is None) or torch.equal(a, b), name


@pytest.mark.parametrize("workers", [0, 2])
def test_batches_follow_the_seeding_protocol(workers):
    x, y = images()
    mixer = v.LocalMixup(graph=v.KNN(n_neighbors=3), num_classes=4)
    loop = LoaderLoop(collated_step(torch.nn.Identity()), x, y, batch_size=16, mixer=mixer, mix_seed=11,
                      workers=workers, pad=4, flip=True, augment_seed=12)
    loader = loop.loader(torch.Generator().manual_seed(5), epoch=3)
    worker_seeds = None
    if workers:  # the DataLoader's own draw: one int64 from its generator, + worker id
        base = int(torch.empty((), dtype=torch.int64).random_(generator=torch.Generator().manual_seed(
            derive_seed(11, 3, 1))))
        worker_seeds = [base + w for w in range(workers)]
    got = list(loader)
    expected = list(expected_batches(x, y, mixer, batch_size=16, data_seed=5, mix_seed=11, augment_seed=12, epoch=3,
                                     worker_seeds=worker_seeds))
    assert len(got) == len(expected) == 3
    for a, b in zip(got, expected):
        assert_same_batch(a, b)
    if workers:  # two workers' streams, so batches 0 and 1 differ in their lambdas
        assert not torch.equal(got[0].lam, got[1].lam)


def test_one_epoch_equals_a_loop_over_the_same_batches():
    x, y = images()
    mixer = v.KMixup(k=4, num_classes=4)
    torch.manual_seed(0)
    reference = LeNet((3, 8, 8), 4)
    torch.manual_seed(0)
    model = LeNet((3, 8, 8), 4)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for batch in expected_batches(x, y, mixer, batch_size=16, data_seed=1, mix_seed=2, augment_seed=3, epoch=0,
                                  worker_seeds=None):
        loss = v.mixup_loss(reference(batch.inputs), batch)
        ref_opt.zero_grad()
        loss.backward()
        ref_opt.step()
        losses.append(loss.item())
    loop = LoaderLoop(collated_step(model), x, y, batch_size=16, mixer=mixer, mix_seed=2, pad=4, flip=True,
                      augment_seed=3)
    loss = loop.epoch(opt, torch.Generator().manual_seed(1), 0)
    assert loss.dtype == torch.float64 and loss.ndim == 0
    assert float(loss) == sum(losses) / len(losses)
    for p, q in zip(model.parameters(), reference.parameters()):
        assert torch.equal(p, q)


def test_epoch_batches_are_the_host_loops_slices():
    batches = list(EpochBatches(10, 3, torch.Generator().manual_seed(4)))
    order = torch.randperm(10, generator=torch.Generator().manual_seed(4))
    assert batches == [order[0:3].tolist(), order[3:6].tolist(), order[6:9].tolist()]  # short last one dropped


def test_erm_without_augmentation_equals_the_host_loop():
    host, host_model = train(dict(SPIRALS, method="erm"), return_model=True)
    loader, loader_model = train(dict(SPIRALS, method="erm", loop="loader"), return_model=True)
    assert loader["train_loss"] == host["train_loss"] and loader["test_nll"] == host["test_nll"]
    for p, q in zip(loader_model.parameters(), host_model.parameters()):
        assert torch.equal(p, q)
    mixed = train(dict(SPIRALS, method="mixup", loop="loader"))
    assert mixed == train(dict(SPIRALS, method="mixup", loop="loader"))  # same seed, same numbers
    assert mixed["train_loss"] != train(dict(SPIRALS, method="mixup"))["train_loss"]  # per-epoch streams


class Interrupt(Exception):
    pass


def interrupted_then_resumed(config, path, monkeypatch):
    """Train ``config`` with a checkpoint, stop after epoch 1 (as a killed sweep would), then resume."""
    real_save = trainer_module._save_checkpoint

    def save_then_stop(checkpoint, config_, epoch, *rest):
        real_save(checkpoint, config_, epoch, *rest)
        if epoch == 1:
            raise Interrupt

    monkeypatch.setattr(trainer_module, "_save_checkpoint", save_then_stop)
    with pytest.raises(Interrupt):
        train(config, checkpoint=path)
    monkeypatch.setattr(trainer_module, "_save_checkpoint", real_save)
    state = torch.load(path, weights_only=False)
    assert state["epoch"] == 1
    return train(config, checkpoint=path), state


def test_resumed_run_equals_uninterrupted_run(tmp_path, monkeypatch):
    full = train(DIGITS)
    resumed, _ = interrupted_then_resumed(DIGITS, tmp_path / "run.pt", monkeypatch)
    assert resumed == full
    assert full["train_loss"][0] != train(dict(DIGITS, seed=1, epochs=1))["train_loss"][0]


def test_two_workers_same_seed_same_numbers():
    config = dict(DIGITS, method="kmixup", epochs=1, workers=2)
    first = train(config)
    assert train(config) == first
    assert first["train_loss"] != train(dict(config, workers=0))["train_loss"]  # batch b mixed by worker b mod 2


def test_compile_model_wraps_the_step_and_checkpoints_keep_plain_keys(tmp_path, monkeypatch):
    real_compile, compiled = torch.compile, []

    def recording_compile(model, **options):  # dynamo with the eager backend: no C compiler, seconds
        compiled.append(model)
        return real_compile(model, backend="eager", **options)

    monkeypatch.setattr(torch, "compile", recording_compile)
    config = dict(SPIRALS, method="mixup", loop="loader", compile_model=True)
    full, model = train(config, return_model=True)
    assert compiled == [model]  # the trainer's own module, which it returns and saves
    resumed, state = interrupted_then_resumed(config, tmp_path / "run.pt", monkeypatch)
    assert list(state["model"]) == list(model.state_dict())  # no "_orig_mod." prefix
    assert resumed == full
    plain = train(dict(config, compile_model=False))
    assert plain["train_loss"] == pytest.approx(full["train_loss"], rel=1e-6)
    device = dict(config, loop="device", epochs=1)
    compiled.clear()
    assert train(device)["train_loss"] == pytest.approx(train(dict(device, compile_model=False))["train_loss"], rel=1e-6)
    assert len(compiled) == 1  # the device loop's step runs compiled as well


def test_loop_settings_are_checked_and_keep_old_hashes():
    values = RunConfig.from_dict(dict(SPIRALS)).to_dict()
    assert "workers" not in values and "compile_model" not in values  # stored runs keep their keys
    loader = RunConfig.from_dict(dict(SPIRALS, loop="loader", workers=2, compile_model=True)).to_dict()
    assert (loader["loop"], loader["workers"], loader["compile_model"]) == ("loader", 2, True)
    with pytest.raises(ValueError, match="compile_model=true needs the device or the loader loop"):
        RunConfig.from_dict(dict(SPIRALS, compile_model=True))
    with pytest.raises(ValueError, match="set loop='loader' as well"):
        RunConfig.from_dict(dict(SPIRALS, loop="device", workers=2))
    with pytest.raises(ValueError, match="workers must be"):
        RunConfig.from_dict(dict(SPIRALS, loop="loader", workers=-1))
    with pytest.raises(ValueError, match="the loader loop runs erm, mixup"):
        RunConfig.from_dict(dict(SPIRALS, loop="loader", method="approx_mixup"))
    with pytest.raises(ValueError, match="mixes hidden features"):
        RunConfig.from_dict(dict(SPIRALS, loop="loader", method="mixup", mix_layers=[1]))
    with pytest.raises(ValueError, match="crop_flip crops and flips images"):
        train(dict(SPIRALS, loop="loader", crop_flip=True))


def test_loader_loop_refuses_bad_settings():
    x, y = images(8)
    step = collated_step(torch.nn.Identity())
    with pytest.raises(ValueError, match="batch_size must be"):
        LoaderLoop(step, x, y, batch_size=9)
    with pytest.raises(ValueError, match="seed is None"):
        LoaderLoop(step, x, y, batch_size=4, flip=True)
    with pytest.raises(TypeError, match="mixer must be"):
        LoaderLoop(step, x, y, batch_size=4, mixer="mixup")
    with pytest.raises(ValueError, match="workers must be"):
        LoaderLoop(step, x, y, batch_size=4, workers=-1)
    with pytest.raises(TypeError, match="flip must be"):
        HostBatch(flip=1, seed=0)
    with pytest.raises(ValueError, match="epoch must be"):
        LoaderLoop(step, x, y, batch_size=4).loader(torch.Generator(), -1)


def test_sweeps_train_loader_configs_one_at_a_time():
    config = dict(SPIRALS, method="mixup", loop="loader", epochs=1)
    assert "one run at a time" in sequential_reason(RunConfig.from_dict(config))
    assert run_batch([config]) == [train(config)]
