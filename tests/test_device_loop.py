"""The device loop (lab/device_loop.py) on the CPU: the same code runs with --device cuda.

Ground truths: crops and flips checked against every (row offset, column offset, flip) of the
padded input enumerated by brute force; one epoch checked against a plain loop written here over the
same batches with the same mixer draws; the trainer's device loop against its host loop.
"""

import itertools
import warnings

import pytest
import torch
import torch.nn.functional as F

import vicinal as v
from vicinal.lab.config import RunConfig
from vicinal.lab.device_loop import DeviceLoop, crop_flip, mixing_step, model_inputs, resident_images
from vicinal.lab.models import LeNet
from vicinal.lab.trainer import train


def uint8_images(n, seed, shape=(3, 8, 8)):
    return torch.randint(1, 256, (n, *shape), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def candidates(image, pad):
    """Every crop (pad 0 outside) and its mirror, from the definition: (dy, dx, flipped) -> image."""
    _, height, width = image.shape
    padded = torch.zeros(image.shape[0], height + 2 * pad, width + 2 * pad, dtype=image.dtype)
    padded[:, pad:pad + height, pad:pad + width] = image
    for dy, dx, flipped in itertools.product(range(2 * pad + 1), range(2 * pad + 1), (False, True)):
        crop = padded[:, dy:dy + height, dx:dx + width]
        yield (dy, dx, flipped), crop.flip(-1) if flipped else crop


@pytest.mark.parametrize("pad,flip", [(4, True), (2, False), (0, True)])
def test_crop_flip_outputs_are_shifted_flipped_inputs(pad, flip):
    images = uint8_images(64, 0)  # values >= 1, so padding zeros are told apart from pixels
    out = crop_flip(images, pad=pad, flip=flip, generator=torch.Generator().manual_seed(1))
    assert out.dtype == torch.uint8 and out.shape == images.shape
    seen = set()
    for image, result in zip(images, out):
        matches = [key for key, crop in candidates(image, pad) if torch.equal(crop, result)]
        assert matches, "output is no crop/flip of its input"
        seen.add(matches[0])
    assert any(key[2] for key in seen) == flip and any(not key[2] for key in seen)  # flips only when asked
    if pad:
        assert len({key[:2] for key in seen}) > 1  # offsets vary between samples


def test_crop_flip_reproducible_and_covers_every_offset():
    images = uint8_images(3000, 2, shape=(1, 4, 4))
    a = crop_flip(images, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, crop_flip(images, generator=torch.Generator().manual_seed(5)))
    assert not torch.equal(a, crop_flip(images, generator=torch.Generator().manual_seed(6)))
    # Float images take the same gather as uint8 ones.
    floats = crop_flip(images.float(), generator=torch.Generator().manual_seed(5))
    assert torch.equal(floats, a.float())


def test_crop_flip_refuses_bad_input():
    with pytest.raises(ValueError, match="images must be a"):
        crop_flip(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="pad must be"):
        crop_flip(torch.zeros(1, 3, 8, 8), pad=-1)
    with pytest.raises(TypeError, match="flip must be"):
        crop_flip(torch.zeros(1, 3, 8, 8), flip=1)


def test_resident_images_are_uint8_only_when_exact():
    images = uint8_images(5, 3)
    x = images.numpy() / torch.tensor(255, dtype=torch.float32).numpy()  # as the loaders compute it
    x = torch.from_numpy(x)
    assert x.dtype == torch.float32
    resident = resident_images(x, "cpu")
    assert resident.dtype == torch.uint8 and torch.equal(model_inputs(resident), x)  # bitwise the same floats
    standardised = (x - 0.5) / 0.25
    assert resident_images(standardised, "cpu").dtype == torch.float32
    with pytest.raises(TypeError, match="floating tensor"):
        resident_images(images, "cpu")


def plain_epoch(model, optimizer, mixer, x, y, batch_size, data_generator, mix_generator):
    """The DataLoader-style loop written from the definition: randperm, slices, mix, step."""
    order = torch.randperm(x.shape[0], generator=data_generator)
    losses = []
    for b in range(x.shape[0] // batch_size):
        idx = order[b * batch_size:(b + 1) * batch_size]
        xb, yb = x[idx], y[idx]
        if mixer is None:
            loss = F.cross_entropy(model(xb), yb)
        else:
            batch = mixer(xb, yb, generator=mix_generator)
            loss = v.mixup_loss(model(batch.inputs), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def lenet(seed):
    torch.manual_seed(seed)
    return LeNet((3, 8, 8), 4)


MIXERS = {"erm": lambda: None, "mixup": lambda: v.Mixup(num_classes=4), "kmixup": lambda: v.KMixup(k=4, num_classes=4),
          "local_mixup": lambda: v.LocalMixup(graph=v.KNN(n_neighbors=3), num_classes=4),
          "cutmix": lambda: v.CutMix(num_classes=4)}


@pytest.mark.parametrize("name", list(MIXERS))
def test_one_epoch_equals_the_plain_loop_in_float32(name):
    x = uint8_images(48, 7).float() / 255
    y = torch.randint(0, 4, (48,), generator=torch.Generator().manual_seed(8))
    reference, model = lenet(0), lenet(0)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    expected = plain_epoch(reference, ref_opt, MIXERS[name](), x, y, 16, torch.Generator().manual_seed(1),
                           torch.Generator().manual_seed(2))
    model.to(memory_format=torch.channels_last)
    loop = DeviceLoop(mixing_step(model, MIXERS[name]()), x, y, batch_size=16, device="cpu", autocast=False)
    assert loop.images.dtype == torch.uint8 and loop.steps_per_epoch == 3
    loss = loop.epoch(opt, torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))
    assert loss.dtype == torch.float32 and loss.ndim == 0
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_bf16_autocast_on_the_cpu_trains_close_to_float32():
    x = uint8_images(64, 9).float() / 255
    y = torch.randint(0, 4, (64,), generator=torch.Generator().manual_seed(10))
    results = {}
    for autocast in (False, True):
        model = lenet(0)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        loop = DeviceLoop(mixing_step(model, v.Mixup(num_classes=4)), x, y, batch_size=16, autocast=autocast,
                          pad=4, flip=True, augment_generator=torch.Generator().manual_seed(3))
        results[autocast] = (float(loop.epoch(opt, torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))),
                             torch.cat([p.detach().flatten() for p in model.parameters()]))
    (loss32, p32), (loss16, p16) = results[False], results[True]
    assert loss16 == pytest.approx(loss32, rel=0.05) and loss16 != loss32  # bf16 really ran, and stayed close
    assert float((p16 - p32).norm() / p32.norm()) < 0.01


def test_device_loop_refuses_bad_settings():
    x, y = torch.rand(8, 3, 4, 4), torch.zeros(8, dtype=torch.long)
    step = mixing_step(lenet(0), None)
    with pytest.raises(ValueError, match="batch_size must be"):
        DeviceLoop(step, x, y, batch_size=9)
    with pytest.raises(ValueError, match="augment_generator is None"):
        DeviceLoop(step, x, y, batch_size=4, pad=4)
    with pytest.raises(TypeError, match="autocast must be"):
        DeviceLoop(step, x, y, batch_size=4, autocast="yes")


def small_config(**settings):
    base = dict(dataset="digits", model="lenet", method="kmixup", k=4, epochs=1, batch_size=64, lr=0.05,
                eval_every=1, eval_rescaled=False)
    return RunConfig.from_dict({**base, **settings})


def test_trainer_device_loop_equals_host_loop():
    host = train(small_config())
    device = train(small_config(loop="device"))
    assert device["train_loss"] == pytest.approx(host["train_loss"], rel=1e-5)
    assert device["test_nll"] == pytest.approx(host["test_nll"], rel=1e-4)
    augmented = train(small_config(loop="device", crop_flip=True))
    assert augmented["train_loss"] != pytest.approx(host["train_loss"], rel=1e-5)  # the crops reached the step


def test_loop_settings_are_checked_and_keep_old_hashes():
    assert "loop" not in small_config().to_dict()  # runs stored before the setting keep their key
    assert small_config(loop="device").to_dict()["loop"] == "device"
    with pytest.raises(ValueError, match="needs the device or the loader loop"):
        small_config(device="cuda")
    with pytest.raises(ValueError, match="needs the device or the loader loop"):
        small_config(crop_flip=True)
    with pytest.raises(ValueError, match="device must be"):
        small_config(loop="device", device="gpu")
    with pytest.raises(ValueError, match="statistics held on the host"):
        small_config(loop="device", method="modified_data")
    with pytest.raises(ValueError, match="crop_flip crops and flips images"):
        train(RunConfig.from_dict(dict(dataset="moons", loop="device", crop_flip=True, epochs=1)))


def test_cuda_runs_skip_per_step_checks_and_give_the_checked_loss():
    """On CUDA the step reads nothing back (mixer and loss checks off); the loss is the same number."""
    from vicinal.lab.config import RunConfig
    from vicinal.lab.datasets import load_dataset
    from vicinal.lab.trainer import _Step

    data = load_dataset("digits", seed=0)
    model = LeNet((1, 8, 8), 10)
    losses = {}
    for device in ("cpu", "cuda"):
        config = RunConfig(dataset="digits", model="lenet", method="local_mixup", graph="knn", n_neighbors=3,
                           loop="device", device=device)
        step = _Step(config, model, data, None)
        assert step.checks is (device == "cpu") and step.mixer.check_finite is (device == "cpu")
        losses[device] = float(step(data.x_train[:32], data.y_train[:32], torch.Generator().manual_seed(4)))
    assert losses["cuda"] == losses["cpu"] > 0


def test_an_epoch_of_exactly_zero_mixing_loss_warns(monkeypatch):
    """The per-epoch silent-zero guard: every pair weighing 0 gives a loss of exactly 0, which must not pass quietly."""
    from vicinal.lab import trainer

    monkeypatch.setattr(trainer._Step, "mixed_loss", lambda self, outputs, batch: outputs.sum() * 0)
    config = dict(dataset="digits", model="mlp", method="local_mixup", graph="threshold", eps=1e-6, epochs=2,
                  batch_size=256, eval_rescaled=False)
    with pytest.warns(v.NoPairsKeptWarning, match="epoch 1 of a local_mixup run had a mean training loss of exactly 0"):
        trainer.train(config)
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error", v.NoPairsKeptWarning)
        trainer.train({**config, "graph": "knn"})  # pairs kept: no warning
        # Mixup has no graph: an exact 0 there is a rounding of a confident fit, not a dropped pair.
        monkeypatch.setattr(trainer._Step, "mixed_loss", lambda self, outputs, batch: outputs.sum() * 0)
        trainer.train({**config, "method": "mixup"})
